"""``ablation`` wiring: every row x start fine-tune node, then the table (JSON, markdown, plot).

Not in ``__default__`` (72 tiny-preset fine-tunes take about an hour on 2 cores): ``kedro run --pipeline
ablation`` or ``dvc repro ablation``. The registered ``ablation`` pipeline ends with the report, which shows
the table when ``ablation_table`` exists.
"""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.pipelines.ablation.nodes import finetune_from_start, summarise
from xfm_pipeline.tasks.registry import get_pipeline

# start -> catalog checkpoint: the initial model, the vision warm-up (standing in for X-FM's BEiT-v2 + RoBERTa
# start), X-FM pretraining and the box stage
STARTS = {
    "init": "init_checkpoint",
    "pretrain_vision": "pretrain_vision_checkpoint",
    "pretrain": "pretrain_checkpoint",
    "pretrain_bbox": "pretrain_bbox_checkpoint",
}
# row (a registered fine-tune pipeline) -> seeds it runs: vision-language rows are noisy, 3 seeds each
ROWS = {
    "finetune_vqa": 3,
    "finetune_nlvr": 3,
    "finetune_retrieval_coco": 3,
    "finetune_grounding": 3,
    "finetune_captioning": 3,
    "finetune_imagenet": 1,
    "finetune_glue_sst2": 1,
    "finetune_glue_mnli": 1,
}


def run_dataset(row: str, start: str) -> str:
    """The (memory) dataset holding the runs of ``row`` from ``start``."""
    return f"{row}_from_{start}"


def _run_node(row: str, start: str, checkpoint: str, seeds: int) -> Node:
    _, spec = get_pipeline(row)
    layers = {f"params_{i}": f"params:{block}" for i, block in enumerate(spec.param_layers())}
    return Node(
        update_wrapper(partial(finetune_from_start, row=row, start=start, seeds=seeds), finetune_from_start),
        inputs={"init": checkpoint, "image_root": "params:image_root", "ablation": "params:ablation", **layers, **dict(spec.data)},
        outputs=run_dataset(row, start),
        name=run_dataset(row, start),
        tags=["ablation"],
    )


def create_pipeline(rows: dict[str, int] | None = None, starts: dict[str, str] | None = None) -> Pipeline:
    """The ablation runs of ``rows`` x ``starts`` (default: :data:`ROWS` x :data:`STARTS`) and their table.

    Nodes are ``ablation.<row>_from_<start>`` and ``ablation.summarise`` / ``ablation.render``; the outputs
    are ``ablation_table`` (JSON), ``ablation_markdown`` and ``ablation_plot``.
    """
    from xfm_pipeline.pipelines.ablation.render import render

    rows = ROWS if rows is None else rows
    starts = STARTS if starts is None else starts
    pairs = [(row, start) for row in rows for start in starts]
    nodes = [_run_node(row, start, starts[start], rows[row]) for row, start in pairs]
    nodes.append(
        Node(
            summarise,
            inputs={run_dataset(r, s): run_dataset(r, s) for r, s in pairs},
            outputs="ablation_table",
            name="summarise",
            tags=["ablation"],
        )
    )
    nodes.append(Node(render, inputs="ablation_table", outputs=["ablation_markdown", "ablation_plot"], name="render", tags=["ablation"]))
    data = {dataset for row in rows for dataset in get_pipeline(row)[1].data.values()}
    layers = {f"params:{block}" for row in rows for block in get_pipeline(row)[1].param_layers()}
    return Pipeline(
        nodes,
        namespace="ablation",
        inputs={*(starts[s] for s in starts), *data},
        outputs={"ablation_table", "ablation_markdown", "ablation_plot"},
        parameters={"params:image_root", "params:ablation", *layers},
    )
