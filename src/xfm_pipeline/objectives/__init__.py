"""X-FM pretraining objectives as pure functions of tensors (no Kedro/MLflow imports).

One module per loss (``itc``, ``itm``, ``mlm``, ``mim``, ``bbox``), one cross-process gather helper
(``distributed``) and the per-stream composite ``XFMPretrainObjective`` (``pretrain``).
"""

from xfm_pipeline.objectives.bbox import bbox_loss, box_cxcywh_to_xyxy, generalized_box_iou, pointer_loss
from xfm_pipeline.objectives.distributed import gather_features, rank_and_world
from xfm_pipeline.objectives.itc import itc_loss, itc_targets
from xfm_pipeline.objectives.itm import NO_NEGATIVE, ITMOutput, itm_loss, sample_hard_negatives
from xfm_pipeline.objectives.mim import mim_loss, mim_pixel_loss, patch_similarity, patchify
from xfm_pipeline.objectives.mlm import fusion_mlm_loss, gather_positions, mlm_loss, text_mlm_loss
from xfm_pipeline.objectives.pretrain import STREAM_OBJECTIVES, ObjectiveWeights, XFMPretrainObjective

__all__ = [
    "NO_NEGATIVE",
    "STREAM_OBJECTIVES",
    "ITMOutput",
    "ObjectiveWeights",
    "XFMPretrainObjective",
    "bbox_loss",
    "box_cxcywh_to_xyxy",
    "fusion_mlm_loss",
    "gather_features",
    "gather_positions",
    "generalized_box_iou",
    "itc_loss",
    "itc_targets",
    "itm_loss",
    "mim_loss",
    "mim_pixel_loss",
    "patch_similarity",
    "patchify",
    "pointer_loss",
    "mlm_loss",
    "rank_and_world",
    "sample_hard_negatives",
    "text_mlm_loss",
]
