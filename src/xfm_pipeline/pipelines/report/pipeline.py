"""report pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.pipelines.finetune.pipeline import FINETUNE_PIPELINES
from xfm_pipeline.pipelines.report.nodes import build_results_table


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """metrics of every pipeline -> results.md + results.json."""
    return Pipeline(
        [
            Node(
                build_results_table,
                inputs={"pretrain": "pretrain_metrics", **{name: f"{name}.metrics" for name in FINETUNE_PIPELINES}},
                outputs=["results_table", "results_json"],
                name="build_results_table",
            )
        ]
    )
