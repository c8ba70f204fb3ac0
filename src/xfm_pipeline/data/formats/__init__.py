"""Readers of the published on-disk formats (docs/data_formats.md), returning typed records.

Each module reads one family of files, both from what the Kedro catalog loads (``parse_*``) and from files
on disk (``read_*``), and raises :class:`RecordError` naming file, record and problem.
"""

from xfm_pipeline.data.formats.captioning import (
    CaptionEvalRecord,
    CaptionReferences,
    CaptionTrainRecord,
    parse_caption_eval,
    parse_caption_train,
    parse_coco_caption_gt,
    read_caption_eval,
    read_caption_train,
    read_coco_caption_gt,
)
from xfm_pipeline.data.formats.common import RecordError
from xfm_pipeline.data.formats.glue import (
    GLUE_TASKS,
    GlueExample,
    GlueTaskSpec,
    glue_task,
    parse_glue_partitions,
    parse_glue_tsv,
    read_glue_dir,
    read_glue_tsv,
)
from xfm_pipeline.data.formats.grounding import GROUNDING_SPLITS, GroundingRecord, parse_grounding, read_grounding
from xfm_pipeline.data.formats.imagefolder import ImageFolderIndex, image_folder_from_keys, read_image_folder
from xfm_pipeline.data.formats.nlvr import NLVRRecord, parse_nlvr, read_nlvr
from xfm_pipeline.data.formats.pretrain import (
    CORPUS_PARSERS,
    ImageOnlyRecord,
    ImageTextRecord,
    RegionElem,
    RegionTextRecord,
    TextOnlyRecord,
    iter_corpus,
    parse_corpus,
    read_corpus,
)
from xfm_pipeline.data.formats.refer import UnsafePickleError, import_refer, load_plain_pickle
from xfm_pipeline.data.formats.retrieval import (
    RetrievalEvalRecord,
    RetrievalTrainRecord,
    parse_retrieval_eval,
    parse_retrieval_train,
    read_retrieval_eval,
    read_retrieval_train,
)
from xfm_pipeline.data.formats.vqa import (
    VQARecord,
    answer_weights,
    parse_answer_list,
    parse_vqa,
    read_answer_list,
    read_vqa,
)

__all__ = [
    "CORPUS_PARSERS",
    "GLUE_TASKS",
    "GROUNDING_SPLITS",
    "CaptionEvalRecord",
    "CaptionReferences",
    "CaptionTrainRecord",
    "GlueExample",
    "GlueTaskSpec",
    "GroundingRecord",
    "ImageFolderIndex",
    "ImageOnlyRecord",
    "ImageTextRecord",
    "NLVRRecord",
    "RecordError",
    "RegionElem",
    "RegionTextRecord",
    "RetrievalEvalRecord",
    "RetrievalTrainRecord",
    "TextOnlyRecord",
    "UnsafePickleError",
    "VQARecord",
    "answer_weights",
    "glue_task",
    "image_folder_from_keys",
    "import_refer",
    "iter_corpus",
    "load_plain_pickle",
    "parse_answer_list",
    "parse_caption_eval",
    "parse_caption_train",
    "parse_coco_caption_gt",
    "parse_corpus",
    "parse_glue_partitions",
    "parse_glue_tsv",
    "parse_grounding",
    "parse_nlvr",
    "parse_retrieval_eval",
    "parse_retrieval_train",
    "parse_vqa",
    "read_answer_list",
    "read_caption_eval",
    "read_caption_train",
    "read_coco_caption_gt",
    "read_corpus",
    "read_glue_dir",
    "read_glue_tsv",
    "read_grounding",
    "read_image_folder",
    "read_nlvr",
    "read_retrieval_eval",
    "read_retrieval_train",
    "read_vqa",
]
