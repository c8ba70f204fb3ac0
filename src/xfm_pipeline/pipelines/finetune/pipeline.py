"""The fine-tune template: ``finetune_<task>`` = one namespaced node reading the task's validated splits."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline, pipeline

from xfm_pipeline.pipelines.finetune.nodes import finetune

GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")

# pipeline name -> (registered task, {data key: catalog dataset})
FINETUNE_PIPELINES: dict[str, tuple[str, dict[str, str]]] = {
    "finetune_vqa": ("vqa", {s: f"vqa_{s}_json_validated" for s in ("train", "val", "test", "answer_list")}),
    "finetune_nlvr": ("nlvr", {"train": "nlvr_train_json_validated", "val": "nlvr_dev_json_validated", "test": "nlvr_test_json_validated"}),
    "finetune_retrieval_coco": ("retrieval", {s: f"retrieval_{s}_json_validated" for s in ("train", "val", "test")}),
    "finetune_retrieval_flickr": ("retrieval", {s: f"retrieval_{s}_json_validated" for s in ("train", "val", "test")}),
    "eval_retrieval_zeroshot": ("retrieval", {s: f"retrieval_{s}_json_validated" for s in ("val", "test")}),
    "finetune_grounding": ("grounding", {"refs": "grounding_json_validated"}),
    "finetune_captioning": ("captioning", {**{s: f"captioning_{s}_json_validated" for s in ("train", "val", "test")}, "val_gt": "captioning_val_gt_json_validated", "test_gt": "captioning_test_gt_json_validated"}),
    **{f"finetune_glue_{t}": (f"glue_{t}", {"glue": "glue_validated"}) for t in GLUE_TASKS},
    "finetune_imagenet": ("imagenet", {"manifest": "imagenet_json_validated"}),
    "linear_probe_imagenet": ("imagenet_linear_probe", {"manifest": "imagenet_json_validated"}),
}


# The starting checkpoint of each pipeline: the pretraining checkpoint, except where the task starts
# from the region-data box stage (X-FM runs bbox domain pretraining before grounding; NLVR2 needs its
# fusion encoder to localise phrases, which the short pretraining does not teach).
INIT_CHECKPOINTS: dict[str, str] = {"finetune_grounding": "pretrain_bbox_checkpoint", "finetune_nlvr": "pretrain_bbox_checkpoint"}


def create_finetune_pipeline(name: str, task: str, data: dict[str, str]) -> Pipeline:
    """``name`` namespace: init checkpoint (``INIT_CHECKPOINTS``, else the pretraining checkpoint) + data
    -> task checkpoint, metrics, predictions, history."""
    template = Pipeline(
        [
            Node(
                finetune,
                inputs={"init": "init", "params": "params:finetune", "image_root": "params:image_root", **{key: key for key in data}},
                outputs=["task_checkpoint", "metrics", "predictions", "history"],
                name="finetune",
                tags=["mlflow", "finetune"],
            )
        ]
    )
    return pipeline(
        template,
        namespace=name,
        inputs={"init": INIT_CHECKPOINTS.get(name, "pretrain_checkpoint"), **data},
        parameters={"params:finetune": f"params:{name}", "params:image_root": "params:image_root"},
    )


def create_pipelines() -> dict[str, Pipeline]:
    """Every fine-tune/eval pipeline by name."""
    return {name: create_finetune_pipeline(name, task, data) for name, (task, data) in FINETUNE_PIPELINES.items()}
