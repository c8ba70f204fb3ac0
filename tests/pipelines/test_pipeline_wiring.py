"""Which checkpoint each training pipeline starts from (the Kedro edges, and DVC's matching dependencies)."""

from pathlib import Path

import yaml

from xfm_pipeline.pipeline_registry import register_pipelines
from xfm_pipeline.tasks.registry import PIPELINES

REPO = Path(__file__).resolve().parents[2]


def test_the_box_stage_follows_pretraining_and_starts_grounding():
    pipelines = register_pipelines()
    assert pipelines["pretrain_bbox"].inputs() >= {"pretrain_checkpoint", "params:pretrain_bbox"}
    assert "pretrain_bbox_checkpoint" in pipelines["pretrain_bbox"].outputs()
    starts = {name: {"pretrain_checkpoint", "pretrain_bbox_checkpoint"} & pipelines[name].inputs() for name in PIPELINES}
    assert starts.pop("finetune_grounding") == {"pretrain_bbox_checkpoint"}
    assert all(found == {"pretrain_checkpoint"} for found in starts.values()), starts  # NLVR2 too, as in the paper
    order = [n.name for n in pipelines["__default__"].nodes]
    assert order.index("pretrain_xfm") < order.index("pretrain_bbox_domain") < order.index("finetune_grounding.finetune")


def test_dvc_stages_depend_on_the_checkpoint_their_pipeline_starts_from():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert set(PIPELINES) <= set(stages)
    for name, (_, pipe) in PIPELINES.items():
        init = f"data/06_models/{pipe.init.removesuffix('_checkpoint')}"
        assert init in stages[name]["deps"], name
        assert [d for d in stages[name]["deps"] if d.startswith("data/06_models/")] == [init], name
    assert "data/06_models/pretrain" in stages["pretrain_bbox"]["deps"]
    assert "data/06_models/pretrain_bbox" in stages["pretrain_bbox"]["outs"]
