"""data_ingestion pipeline wiring."""

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.data.formats.pretrain import PRETRAIN_STREAMS
from xfm_pipeline.pipelines.data_ingestion.nodes import (
    describe_shapes_world,
    export_captioning,
    export_glue,
    export_grounding,
    export_imagenet,
    export_images,
    export_nlvr,
    export_pretraining_corpora,
    export_retrieval,
    export_vqa,
    generate_shapes_world,
)


def _raw(task: str, *splits: str) -> list[str]:
    return [f"{task}_{split}_json_raw" for split in splits]


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """params:data_ingestion -> shapes_world (memory) -> every raw-layer catalog entry + shapes_world_metadata."""
    return Pipeline(
        [
            Node(generate_shapes_world, "params:data_ingestion", "shapes_world", name="generate_shapes_world"),
            Node(export_images, "shapes_world", "shapes_world_images", name="export_images"),
            Node(export_imagenet, "shapes_world", "imagenet_raw", name="export_imagenet"),
            Node(
                export_pretraining_corpora,
                "shapes_world",
                {corpus: f"pretrain_{corpus}_jsonl_raw" for corpus in PRETRAIN_STREAMS},
                name="export_pretraining_corpora",
            ),
            Node(export_retrieval, "shapes_world", _raw("retrieval", "train", "val", "test"), name="export_retrieval"),
            Node(export_vqa, "shapes_world", _raw("vqa", "train", "val", "test", "answer_list"), name="export_vqa"),
            Node(export_nlvr, "shapes_world", _raw("nlvr", "train", "dev", "test"), name="export_nlvr"),
            Node(export_grounding, "shapes_world", "grounding_json_raw", name="export_grounding"),
            Node(
                export_captioning,
                "shapes_world",
                _raw("captioning", "train", "val", "test", "val_gt", "test_gt"),
                name="export_captioning",
            ),
            Node(export_glue, "shapes_world", "glue_raw", name="export_glue"),
            Node(describe_shapes_world, "shapes_world", "shapes_world_metadata", name="describe_shapes_world"),
        ]
    )
