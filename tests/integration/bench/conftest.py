"""The harness lives in `bench/` at the repository root, outside the installed package: make it
importable for the tests that call it in this process."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
