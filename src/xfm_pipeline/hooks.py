"""Project hooks."""

from __future__ import annotations

import os

from kedro.framework.hooks import hook_impl

# Nothing may download at run time; no telemetry leaves the machine.
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
}


class OfflineEnvironmentHook:
    """Sets the offline and no-telemetry environment before any node runs (values already set win)."""

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ARG002 - hook signature
        for key, value in OFFLINE_ENVIRONMENT.items():
            os.environ.setdefault(key, value)
