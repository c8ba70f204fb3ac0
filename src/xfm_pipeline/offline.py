"""The offline, no-telemetry environment every entry point runs under (defined here once).

Nothing may download at run time and no telemetry leaves the machine. The Kedro hook, the benchmarks and the
tests apply :data:`OFFLINE_ENVIRONMENT`; the Makefile exports the same variables for the shell (a test
checks that they agree).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OFFLINE_ENVIRONMENT: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
}


def use_offline_environment(environ: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set every :data:`OFFLINE_ENVIRONMENT` variable in ``environ`` (default ``os.environ``) that is not set
    yet (values already set win); returns ``environ``."""
    environ = os.environ if environ is None else environ
    for key, value in OFFLINE_ENVIRONMENT.items():
        environ.setdefault(key, value)
    return environ
