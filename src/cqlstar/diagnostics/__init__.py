"""Diagnostics routes: timing reads, slow requests under a budget, and the async layer's lifetime
guarantees checked on the live service (`/performance/*`, `/slow_query`, `/long_running_query`,
`/context_manager_safety/*`).

`DIAGNOSTICS_CONTROLLERS` go into the app's route handlers and `prepare_diagnostics` into the
connection's `on_connect` hooks.
"""

from cqlstar.diagnostics.performance import PerformanceController
from cqlstar.diagnostics.safety import ContextManagerSafetyController
from cqlstar.diagnostics.scratch import prepare_diagnostics
from cqlstar.diagnostics.slow import SlowQueryController

DIAGNOSTICS_CONTROLLERS = (
    PerformanceController,
    SlowQueryController,
    ContextManagerSafetyController,
)

__all__ = ["DIAGNOSTICS_CONTROLLERS", "prepare_diagnostics"]
