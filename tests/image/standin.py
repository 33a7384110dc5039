"""The stand-in base image: Debian bookworm with Debian's Python 3.11, built without a registry.

The project's Dockerfile starts from `python:3.11-slim-bookworm`, which only an image registry
serves. These machines reach Debian's packages but no registry, so the test builds a base of the
same Debian release instead and passes it as the Dockerfile's `PYTHON_IMAGE` build argument:

1. `debootstrap --variant=minbase bookworm` from the machine's own Debian mirror, packed into a
   tarball cached under `~/.cache/cqlstar/image/` (about 25 s once; reused until deleted);
2. `podman import` of that tarball as `MINBASE_IMAGE` (once per podman store);
3. `standin/Containerfile` on top: Debian's `python3`, `pip` and `ca-certificates`, as
   `STANDIN_IMAGE` (podman's layer cache makes this a no-op once built).

`python -m image.standin` (from `tests/`, as `just test-image` runs it) prints the image it made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cqlstar.localnode import cache_root
from image.podman import HERE, Podman, build

RELEASE = "bookworm"
MINBASE_IMAGE = f"localhost/cqlstar-standin-minbase:{RELEASE}"
STANDIN_IMAGE = f"localhost/cqlstar-standin-python:3.11-{RELEASE}"
FALLBACK_MIRROR = "http://deb.debian.org/debian"


def cache_dir() -> Path:
    return cache_root() / "image"


def tarball_path() -> Path:
    return cache_dir() / f"debian-{RELEASE}-minbase.tar.gz"


def debian_mirror() -> str:
    """The mirror this machine's apt uses for the release itself (not -updates or -security)."""
    try:
        proc = subprocess.run(
            ["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return FALLBACK_MIRROR
    for line in proc.stdout.splitlines():
        uri, _, release = line.strip().partition(" ")
        if release == RELEASE and uri.startswith(("http://", "https://")):
            return uri.rstrip("/")
    return FALLBACK_MIRROR


def _debootstrap(rootfs: Path, mirror: str) -> None:
    proc = subprocess.run(
        ["debootstrap", "--variant=minbase", RELEASE, str(rootfs), mirror],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        log = rootfs / "debootstrap" / "debootstrap.log"
        detail = log.read_text(errors="replace")[-3000:] if log.exists() else proc.stderr[-3000:]
        raise RuntimeError(f"debootstrap failed ({proc.returncode}) from {mirror}:\n{detail}")


def build_minbase_tarball() -> Path:
    """The cached minbase tarball, made first if missing. Written aside, then renamed into place,
    so an interrupted run never leaves a truncated tarball that later runs would trust."""
    target = tarball_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    rootfs = target.parent / f"{RELEASE}-rootfs.partial"
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(rootfs, ignore_errors=True)
    try:
        mirror = debian_mirror()
        print(f"[image] debootstrap --variant=minbase {RELEASE} from {mirror}", file=sys.stderr)
        started = time.monotonic()
        _debootstrap(rootfs, mirror)
        # Downloaded packages and package lists: half the size, and stale by the time they are
        # used (the Containerfile runs `apt-get update` itself).
        for leftovers in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
            for entry in leftovers.glob("*"):
                if entry.is_file():
                    entry.unlink()
        # --numeric-owner: the image's files keep Debian's ids, whatever this host names them.
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-czf", str(partial), "."],
            timeout=600,
            check=True,
        )
        partial.replace(target)
        print(f"[image] {target} made in {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return target


def ensure_standin(podman: Podman) -> str:
    """The stand-in base image's name, after making whatever part of it is missing."""
    if not podman.image_exists(MINBASE_IMAGE):
        tarball = build_minbase_tarball()
        print(f"[image] podman import {tarball} as {MINBASE_IMAGE}", file=sys.stderr)
        podman.run("import", str(tarball), MINBASE_IMAGE, timeout=300)
    build(
        podman,
        tag=STANDIN_IMAGE,
        context=HERE / "standin",
        containerfile=HERE / "standin" / "Containerfile",
        build_args={"MINBASE": MINBASE_IMAGE},
        timeout=600,
    )
    return STANDIN_IMAGE


def main() -> None:
    if base := os.environ.get("CQLSTAR_IMAGE_BASE"):
        print(f"[image] CQLSTAR_IMAGE_BASE={base}: no stand-in needed", file=sys.stderr)
        return
    started = time.monotonic()
    image = ensure_standin(Podman())
    print(
        f"[image] stand-in base {image} ready in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
