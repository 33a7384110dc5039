"""The run's files: `report.json`, `report.md` and `report.png` in `BENCH_OUTPUT`.

The PNG is drawn by `bench.pipeline.plot` with matplotlib from the written JSON; when matplotlib is
not installed in the project's environment, it is run through `uv run --with matplotlib` so nothing
global changes.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec

from bench.harness.config import ROOT
from bench.pipeline.markdown import render_markdown
from bench.pipeline.report import Report, encode

PLOT = "bench.pipeline.plot"


def clear_output(output: Path) -> None:
    """What a previous run left, so a failed phase cannot pass an old figure off as new."""
    for name in ("report.json", "report.md", "report.png"):
        (output / name).unlink(missing_ok=True)
    for name in ("work", "logs"):
        shutil.rmtree(output / name, ignore_errors=True)


def write_report(report: Report, output: Path) -> Report:
    """Write the three files; what could not be drawn goes into the notes, written again."""
    _write_text(report, output)
    if drawing_notes := render_png(output / "report.json", output / "report.png"):
        report = msgspec.structs.replace(report, notes=(*report.notes, *drawing_notes))
        _write_text(report, output)
    return report


def _write_text(report: Report, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_bytes(encode(report))
    (output / "report.md").write_text(render_markdown(report))


def render_png(report_json: Path, png: Path) -> list[str]:
    """Notes about anything that kept the PNG from being drawn (none when it was)."""
    command = [sys.executable, "-m", PLOT, str(report_json), str(png)]
    if importlib.util.find_spec("matplotlib") is None:
        uv = shutil.which("uv")
        if uv is None:
            return ["report.png not drawn: matplotlib is not installed and uv is not on PATH"]
        command = [uv, "run", "--frozen", "--with", "matplotlib", "python", *command[1:]]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return [f"report.png not drawn: {completed.stderr.strip()[-500:]}"]
    return []
