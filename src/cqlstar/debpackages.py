"""Debian packages unpacked into the cache, for developer tooling and tests (not the service).

`unpacked(name, packages)` fetches the packages with `apt-get download` (Debian's own mirrors, the
machine's package lists) and unpacks them with `dpkg-deb -x` into
``~/.cache/cqlstar/<name>/root`` once; later calls return that folder at once. Nothing is installed
system-wide: no root is needed beyond refreshing the package lists (`.ci/run` does it), and no
package script starts a system service. `cqlstar.localredis` gets Redis this way, the Prometheus
scrape test its Prometheus server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cqlstar.localnode import cache_root


class PackagesUnavailable(RuntimeError):
    """apt-get or dpkg-deb is missing, or the packages could not be fetched."""


def can_fetch() -> bool:
    return shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None


def unpacked(name: str, packages: tuple[str, ...]) -> Path:
    """The root folder the packages are unpacked under (``usr/bin/...`` inside it)."""
    home = cache_root() / name
    root = home / "root"
    marker = home / ".complete"
    if marker.exists():
        return root
    if not can_fetch():
        raise PackagesUnavailable("apt-get and dpkg-deb are needed to fetch Debian packages")
    print(
        f"[debian] fetching {', '.join(packages)} into {home} (once)", file=sys.stderr, flush=True
    )
    with tempfile.TemporaryDirectory() as download:
        fetched = subprocess.run(
            ["apt-get", "download", *packages],
            cwd=download,
            capture_output=True,
            text=True,
            check=False,
        )
        if fetched.returncode != 0:
            raise PackagesUnavailable(
                f"apt-get download {' '.join(packages)} failed:\n{fetched.stderr.strip()}\n"
                "What to do: refresh the package lists once (`apt-get update`, as root; `.ci/run` "
                "does it)."
            )
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for package in sorted(Path(download).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(package), str(root)], check=True)
    marker.touch()
    return root
