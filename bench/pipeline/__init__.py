"""`just bench`: the pipeline that measures the service, its ceilings and its memory in one run.

`python -m bench.pipeline` (`run.py`) provisions the dataset, runs the phases of `phases.py` in
order, each in its own module and returning `Findings`, and writes the report (`report.py`, msgspec
Structs) as JSON, Markdown (`markdown.py`) and a PNG (`plot.py`).
"""
