"""pretrain and pretrain_vision pipeline wiring: one node each, the same job with its own parameters."""

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.pipelines.pretrain.nodes import pretrain, pretrain_vision

CORPORA = ("image_text", "region_text", "image_only", "text_only")


def _corpora() -> dict[str, str]:
    return {corpus: f"pretrain_{corpus}_jsonl_validated" for corpus in CORPORA}


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """Vision warm-up checkpoint + validated corpora -> pretrained checkpoint, metrics, loss history."""
    return Pipeline(
        [
            Node(
                pretrain,
                inputs={"init": "pretrain_vision_checkpoint", "params": "params:pretrain", "image_root": "params:image_root", **_corpora()},
                outputs=["pretrain_checkpoint", "pretrain_metrics", "pretrain_history"],
                name="pretrain_xfm",
                tags=["mlflow"],
            )
        ]
    )


def create_vision_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """init checkpoint + validated corpora -> vision warm-up checkpoint, metrics, loss history.

    The stand-in for X-FM's pretrained BEiT-v2 vision encoder, which no offline machine can download:
    region-text contrastive learning against the frozen pretrained text encoder (``params:pretrain_vision``).
    """
    return Pipeline(
        [
            Node(
                pretrain_vision,
                inputs={"init": "init_checkpoint", "params": "params:pretrain_vision", "image_root": "params:image_root", **_corpora()},
                outputs=["pretrain_vision_checkpoint", "pretrain_vision_metrics", "pretrain_vision_history"],
                name="pretrain_vision_encoder",
                tags=["mlflow"],
            )
        ]
    )
