"""X-FM base published results (shared/paper_results.md; arXiv 2301.05065 Tables 1, 2, 3, 5, 7).

Keyed by pipeline and by our metric names; values are the paper's 4M / 1.3B figures. The demo world
is not comparable to them: the table shows them for orientation when the pipelines run on real data.
"""

from __future__ import annotations

# pipeline -> metric (as in data/08_reporting/metrics/<pipeline>.json) -> (X-FM 4M, X-FM 1.3B, what)
PAPER_RESULTS: dict[str, dict[str, tuple[float, float, str]]] = {
    "finetune_vqa": {"test/vqa_acc": (79.1, 80.5, "VQAv2 test-dev")},
    "finetune_nlvr": {"val/nlvr_acc": (86.3, 87.6, "NLVR2 dev"), "test/nlvr_acc": (86.5, 88.4, "NLVR2 test-P")},
    "finetune_grounding": {
        "val/grounding_acc": (84.8, 86.1, "RefCOCO+ val"),
        "testA/grounding_acc": (89.7, 90.4, "RefCOCO+ testA"),
        "testB/grounding_acc": (79.1, 79.8, "RefCOCO+ testB"),
    },
    "finetune_retrieval_coco": {
        "test/txt_r1": (81.8, 84.2, "COCO 5K TR@1"),
        "test/txt_r5": (96.0, 96.4, "COCO 5K TR@5"),
        "test/txt_r10": (98.3, 98.4, "COCO 5K TR@10"),
        "test/img_r1": (64.7, 67.0, "COCO 5K IR@1"),
        "test/img_r5": (86.1, 87.2, "COCO 5K IR@5"),
        "test/img_r10": (91.6, 92.4, "COCO 5K IR@10"),
    },
    "finetune_retrieval_flickr": {
        "test/txt_r1": (97.4, 98.1, "Flickr30K TR@1"),
        "test/txt_r5": (100.0, 100.0, "Flickr30K TR@5"),
        "test/txt_r10": (100.0, 100.0, "Flickr30K TR@10"),
        "test/img_r1": (88.6, 89.9, "Flickr30K IR@1"),
        "test/img_r5": (97.9, 98.6, "Flickr30K IR@5"),
        "test/img_r10": (98.9, 99.4, "Flickr30K IR@10"),
    },
    "eval_retrieval_zeroshot": {
        "test/txt_r1": (73.8, 77.6, "COCO 5K zero-shot TR@1"),
        "test/img_r1": (59.4, 61.1, "COCO 5K zero-shot IR@1"),
    },
    "finetune_glue_mnli": {"val/accuracy": (87.7, 87.7, "MNLI-m acc")},
    "finetune_glue_cola": {"val/matthews_correlation": (65.3, 65.7, "CoLA MCC")},
    "finetune_glue_mrpc": {"val/acc_and_f1": (91.7, 91.2, "MRPC avg(acc, F1)")},
    "finetune_glue_qqp": {"val/accuracy": (91.8, 91.7, "QQP acc")},
    "finetune_glue_sst2": {"val/accuracy": (95.0, 94.6, "SST-2 acc")},
    "finetune_glue_qnli": {"val/accuracy": (92.9, 92.8, "QNLI acc")},
    "finetune_glue_rte": {"val/accuracy": (83.8, 82.7, "RTE acc")},
    "finetune_glue_stsb": {"val/pearson": (90.8, 90.7, "STS-B Pearson")},
    "finetune_imagenet": {"test/top1": (85.3, 85.5, "ImageNet-1k fine-tune top-1")},
    "linear_probe_imagenet": {"test/top1": (81.0, 81.2, "ImageNet-1k linear eval top-1")},
}
