"""`python -m bench.probes.span_cost`: each configuration traces as it says, and all are reported."""

from __future__ import annotations

import pytest
from bench.probes import span_cost


def test_every_configuration_runs_and_traces_as_intended(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # run_configuration raises when a child did not record or export as its configuration says.
    span_cost.main(["--requests", "200"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["off", "default", "exported_10pct", "exported"]
    assert all("µs of event-loop CPU per request" in line for line in lines)


def test_a_configuration_that_does_not_trace_as_named_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "exported" run with the SDK disabled: the child reports no spans, and the tool says so.
    monkeypatch.setitem(span_cost.CONFIGURATIONS, "exported", {"OTEL_SDK_DISABLED": "true"})
    with pytest.raises(RuntimeError, match="did not trace as intended"):
        span_cost.run_configuration("exported", 100)
