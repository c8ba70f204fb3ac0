"""pretrain_shards, pretrain_vision, pretrain and pretrain_bbox pipeline wiring: one sharding node per corpus;
one training node per stage, the same job with its own parameters."""

from functools import partial

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.jobs.pretrain import STREAMS
from xfm_pipeline.pipelines.pretrain.nodes import pretrain, pretrain_bbox, pretrain_vision, write_pretrain_shards


def _for_corpus(corpus: str):
    """``write_pretrain_shards`` with its corpus bound, named after it in logs (a picklable partial)."""
    bound = partial(write_pretrain_shards, corpus)
    bound.__name__ = bound.__qualname__ = f"write_pretrain_shards_{corpus}"
    bound.__module__, bound.__doc__ = write_pretrain_shards.__module__, write_pretrain_shards.__doc__
    return bound


def create_shards_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """Validated corpora -> ``pretrain_<corpus>_shards`` (WebDataset tar shards + index), one node per corpus."""
    return Pipeline(
        [
            Node(
                _for_corpus(corpus),
                inputs={"validated": f"pretrain_{corpus}_jsonl_validated", "params": "params:pretrain_shards", "validation": "params:data_validation"},
                outputs=f"pretrain_{corpus}_shards",
                name=f"shard_pretrain_{corpus}",
                tags=["pretrain_shards"],
            )
            for corpus in STREAMS
        ]
    )


def _stage(func, init: str, stage: str, node_name: str) -> Pipeline:
    """One pretraining node: ``init`` checkpoint (path) + ``params:<stage>`` + the sharded corpora (one per
    stream) + the node's MLflow run id -> ``<stage>_checkpoint``, ``<stage>_metrics``, ``<stage>_history``."""
    corpora = {corpus: f"pretrain_{corpus}_shards" for corpus in STREAMS}
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
