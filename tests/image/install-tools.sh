#!/usr/bin/env bash
# What `just test-image` runs with, from Debian's packages: podman (with runc, the runtime that works
# on hybrid cgroups; crun does not) and debootstrap (for the stand-in base image). Installs only what
# is missing, so a warm machine spends nothing here and a fresh one runs `apt-get update` once.
set -euo pipefail

packages=(podman runc debootstrap)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "test-image: install ${missing[*]} first (as root: apt-get install ${packages[*]})" >&2
    exit 1
fi
echo "[image] installing ${missing[*]}" >&2
# Without recommends: podman's (buildah, fuse-overlayfs, slirp4netns...) serve rootless use and
# container networks, neither of which the test uses; crun is never pulled in because runc is named.
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
}
# .ci/run has just refreshed the package lists; a machine whose lists are missing or stale gets
# one `apt-get update`, then the install again.
install || { apt-get update -qq && install; }
