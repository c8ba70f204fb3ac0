"""pretrain pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.pipelines.pretrain.nodes import pretrain

CORPORA = ("image_text", "region_text", "image_only", "text_only")


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """init checkpoint + validated corpora -> pretrained checkpoint, metrics, loss history."""
    return Pipeline(
        [
            Node(
                pretrain,
                inputs={
                    "init": "init_checkpoint",
                    "params": "params:pretrain",
                    "image_root": "params:image_root",
                    **{corpus: f"pretrain_{corpus}_jsonl_validated" for corpus in CORPORA},
                },
                outputs=["pretrain_checkpoint", "pretrain_metrics", "pretrain_history"],
                name="pretrain_xfm",
                tags=["mlflow"],
            )
        ]
    )
