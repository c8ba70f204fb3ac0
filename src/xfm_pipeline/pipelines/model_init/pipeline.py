"""model_init pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.pipelines.model_init.nodes import initialise_model


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """params:model_init -> init_checkpoint (directory) + model_summary (JSON)."""
    return Pipeline(
        [
            Node(
                initialise_model,
                inputs="params:model_init",
                outputs=["init_checkpoint", "model_summary"],
                name="initialise_model",
            )
        ]
    )
