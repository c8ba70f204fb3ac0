"""Kedro project settings."""

from xfm_pipeline.hooks import MlflowHook, NodeZeroOutputsHook, OfflineEnvironmentHook

HOOKS = (OfflineEnvironmentHook(), NodeZeroOutputsHook(), MlflowHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # `--params a.b=1` must not drop sibling keys when conf/local has parameters files.
    "merge_strategy": {"parameters": "soft"},
}
