"""pretrain_vision, pretrain and pretrain_bbox pipeline wiring: one node each, the same job with its own parameters."""

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.jobs.pretrain import STREAMS
from xfm_pipeline.pipelines.pretrain.nodes import pretrain, pretrain_bbox, pretrain_vision


def _stage(func, init: str, stage: str, node_name: str) -> Pipeline:
    """One pretraining node: ``init`` checkpoint (path) + ``params:<stage>`` + the validated corpora (one per
    stream) + the node's MLflow run id -> ``<stage>_checkpoint``, ``<stage>_metrics``, ``<stage>_history``."""
    corpora = {corpus: f"pretrain_{corpus}_jsonl_validated" for corpus in STREAMS}
    inputs = {"init": init, "params": f"params:{stage}", "image_root": "params:image_root", "run_id": "mlflow_run_id", **corpora}
    outputs = [f"{stage}_checkpoint", f"{stage}_metrics", f"{stage}_history"]
    return Pipeline([Node(func, inputs=inputs, outputs=outputs, name=node_name, tags=["mlflow"])])


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """Vision warm-up checkpoint + validated corpora -> pretrained checkpoint, metrics, loss history."""
    return _stage(pretrain, "pretrain_vision_checkpoint", "pretrain", "pretrain_xfm")


def create_vision_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """init checkpoint + validated corpora -> vision warm-up checkpoint, metrics, loss history.

    The stand-in for X-FM's pretrained BEiT-v2 vision encoder, which no offline machine can download:
    region-text ITC against the frozen pretrained text encoder (``params:pretrain_vision``).
    """
    return _stage(pretrain_vision, "init_checkpoint", "pretrain_vision", "pretrain_vision_encoder")


def create_bbox_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """Pretrained checkpoint + validated corpora -> box-pretrained checkpoint, metrics, loss history.

    X-FM's region-data bbox domain pretraining (``params:pretrain_bbox``); grounding and NLVR2 start
    from its checkpoint.
    """
    return _stage(pretrain_bbox, "pretrain_checkpoint", "pretrain_bbox", "pretrain_bbox_domain")
