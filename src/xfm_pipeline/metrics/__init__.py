"""Evaluation metrics as pure functions on plain Python values and NumPy arrays (no Kedro, MLflow or torch).

Scales: retrieval recalls are percentages (as X-FM's ``itm_eval`` reports them); every other accuracy,
GLUE score and caption score is a fraction as its reference implementation returns it (multiply by 100
for the paper's tables). SciPy, scikit-learn and pycocoevalcap are imported only when a function needs them.
"""

from xfm_pipeline.metrics.baselines import (
    answer_prior,
    answer_prior_accuracy,
    majority_accuracy,
    most_frequent,
    question_prior_accuracy,
    statement_prior_accuracy,
)
from xfm_pipeline.metrics.captioning import (
    CAPTION_METRICS,
    caption_metrics,
    java_available,
    ptb_tokenize,
    simple_tokenize,
)
from xfm_pipeline.metrics.classification import accuracy, topk_accuracy
from xfm_pipeline.metrics.glue import GLUE_MAIN_METRIC, GLUE_TASKS, glue_main_metric, glue_metrics, glue_summary
from xfm_pipeline.metrics.grounding import (
    box_iou_xywh,
    cxcywh_norm_to_xywh,
    grounding_accuracy,
    grounding_accuracy_by_split,
)
from xfm_pipeline.metrics.retrieval import RETRIEVAL_KS, retrieval_ranks, retrieval_recall
from xfm_pipeline.metrics.vqa import normalize_answer, vqa_accuracy, vqa_accuracy_breakdown, vqa_question_accuracy

__all__ = [
    "CAPTION_METRICS",
    "GLUE_MAIN_METRIC",
    "GLUE_TASKS",
    "RETRIEVAL_KS",
    "accuracy",
    "answer_prior",
    "answer_prior_accuracy",
    "question_prior_accuracy",
    "box_iou_xywh",
    "caption_metrics",
    "cxcywh_norm_to_xywh",
    "glue_main_metric",
    "glue_metrics",
    "glue_summary",
    "grounding_accuracy",
    "grounding_accuracy_by_split",
    "java_available",
    "majority_accuracy",
    "most_frequent",
    "normalize_answer",
    "ptb_tokenize",
    "retrieval_ranks",
    "retrieval_recall",
    "simple_tokenize",
    "statement_prior_accuracy",
    "topk_accuracy",
    "vqa_accuracy",
    "vqa_accuracy_breakdown",
    "vqa_question_accuracy",
]
