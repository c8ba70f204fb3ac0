"""A hand-made ablation table (the ``ablation_table`` layout) with known means, deviations and gains."""

TABLE = {
    "tasks": [
        {
            "pipeline": "finetune_vqa",
            "task": "vqa",
            "metric": "test/vqa_acc",
            "higher_is_better": True,
            "starts": {
                "init": {"values": [39.0, 40.0, 41.0], "seeds": [0, 1, 2], "mean": 40.0, "std": 1.0},
                "pretrain_vision": {"values": [42.5, 43.0, 43.5], "seeds": [0, 1, 2], "mean": 43.0, "std": 0.5},
                "pretrain": {"values": [44.0, 45.0, 46.0], "seeds": [0, 1, 2], "mean": 45.0, "std": 1.0},
                "pretrain_bbox": {"values": [44.0, 44.0, 44.0], "seeds": [0, 1, 2], "mean": 44.0, "std": 0.0},
            },
            "gain_over_init": 5.0,
            "gain_over_warmup": 2.0,
        },
        {
            "pipeline": "finetune_glue_sst2",
            "task": "glue_sst2",
            "metric": "val/accuracy",
            "higher_is_better": True,
            "starts": {
                "pretrain": {"values": [90.5], "seeds": [0], "mean": 90.5, "std": 0.0},
                "init": {"values": [80.0], "seeds": [0], "mean": 80.0, "std": 0.0},
            },
            "gain_over_init": 10.5,
            "gain_over_warmup": None,
        },
    ],
    "budget": "each row's own fine-tune parameters",
    "seeds": [0, 1, 2],
}
