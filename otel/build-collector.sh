#!/usr/bin/env bash
# Build the cqlstar OpenTelemetry Collector distribution with ocb.
#
# Usage: otel/build-collector.sh      (prints the binary path on stdout)
#
# The binary lands in ${XDG_CACHE_HOME:-$HOME/.cache}/cqlstar/otelcol/<version>/
# and the script returns immediately when it is already there and was built
# from the current manifest (no Go toolchain needed for that), so tests can
# call it on every run. A cold build
# compiles a few hundred modules and takes minutes on a small machine; all
# progress goes to stderr so stdout stays a single, parseable path.
#
# Environment:
#   OTELCOL_BUILD_JOBS   parallel compile jobs (default: number of CPUs, max 2,
#                        to keep memory and load sane on CI-sized machines)
#   OTELCOL_FORCE_BUILD  set to 1 to rebuild even if the binary exists
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/builder-config.yaml"

log() { printf 'build-collector: %s\n' "$*" >&2; }

# dist.version is the single source of truth for the release; the builder
# itself must come from that same release so its templates match the modules.
version="$(awk '/^dist:/{d=1;next} d&&/^[^ #]/{d=0} d&&$1=="version:"{print $2;exit}' "$manifest" | tr -d '"'"'")"
[[ -n "$version" ]] || { log "cannot read dist.version from $manifest"; exit 1; }

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/cqlstar/otelcol/$version"
binary="$cache_root/otelcol-cqlstar"
stamp="$cache_root/manifest.sha256"
manifest_sum="$(sha256sum "$manifest" | cut -d' ' -f1)"

is_current() {
  [[ -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$manifest_sum" ]]
}

if [[ "${OTELCOL_FORCE_BUILD:-0}" != 1 ]] && is_current; then
  printf '%s\n' "$binary"
  exit 0
fi

# Exit status 127 tells callers (tests/otelcol.py) "cannot build here", as
# opposed to a build that failed.
command -v go >/dev/null 2>&1 || { log "go toolchain not found in PATH"; exit 127; }

mkdir -p "$cache_root"
# Serialise concurrent callers (e.g. parallel test workers): the second one
# waits for the first build and then takes the fast path above.
exec 9>"$cache_root/.lock"
flock 9
if [[ "${OTELCOL_FORCE_BUILD:-0}" != 1 ]] && is_current; then
  printf '%s\n' "$binary"
  exit 0
fi

started=$SECONDS
jobs="${OTELCOL_BUILD_JOBS:-$(( $(nproc 2>/dev/null || echo 2) < 2 ? 1 : 2 ))}"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=$jobs"
export CGO_ENABLED=0

ocb="$cache_root/bin/builder"
if [[ ! -x "$ocb" ]]; then
  log "installing ocb $version"
  GOBIN="$cache_root/bin" go install "go.opentelemetry.io/collector/cmd/builder@v$version"
fi

# Generated sources live next to the binary, never in the repository. ocb
# has no non-deprecated CLI flag for the output path, so inject it into a
# private copy of the manifest.
src="$cache_root/src"
rm -rf "$src"
build_manifest="$cache_root/builder-config.yaml"
sed "s|^dist:[[:space:]]*$|dist:\n  output_path: $src|" "$manifest" >"$build_manifest"

log "building otelcol-cqlstar $version (jobs=$jobs); this takes a while when cold"
"$ocb" --config "$build_manifest" >&2

# Swap the binary in atomically so an interrupted build never leaves a
# truncated executable that the fast path would trust.
install -m 0755 "$src/otelcol-cqlstar" "$binary.tmp"
mv -f "$binary.tmp" "$binary"
printf '%s\n' "$manifest_sum" >"$stamp"
log "built in $(( SECONDS - started ))s"

printf '%s\n' "$binary"
