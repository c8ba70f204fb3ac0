"""The paper's configuration, ``conf/paper`` (``kedro run --env paper``): it loads over ``conf/base`` with the
project's config loader settings, every parameter block passes the project's own validators, every catalog
entry instantiates and stays under a root declared in ``conf/paper/globals.yml``, the steps are the paper's
epochs over the released training-set sizes, and (system tier) model_init, pretrain and finetune_vqa run end
to end in the environment, pointed back at a generated shapes world with steps and batches shrunk."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from xfm_pipeline.config import from_dict
from xfm_pipeline.jobs.finetune import FinetuneParams, resolve_params
from xfm_pipeline.tasks.registry import PIPELINES, get_pipeline

REPO = Path(__file__).resolve().parents[2]
ENV = "paper"
STAGES = ("pretrain", "pretrain_vision", "pretrain_bbox")

# Released training-set sizes (records per epoch) and the paper's epochs and per-GPU batches (docs/xfm.md
# #pretraining and #downstream-tasks; the official configs/xfm-*/ files). Global batch = per GPU x GPUs: 32 GPUs
# for pretraining, 8 for the vision-language and ImageNet fine-tuning, 1 for GLUE (the assumptions of conf/paper).
PRETRAIN = {"epochs": 100, "records": 5_114_489, "per_gpu": 96, "gpus": 32}
BOX_DOMAIN = {"epochs": 2, "records": 318_547, "per_gpu": 64, "gpus": 8}  # pairs per GPU (Grounding_bbox_pretrain_O1.yaml)
IMAGENET_TRAIN = 1_281_167
FINETUNE = {  # pipeline: (epochs, training records, per-GPU batch, GPUs)
    "finetune_retrieval_coco": (20, 566_747, 32, 8),
    "finetune_retrieval_flickr": (20, 145_000, 32, 8),
    "finetune_nlvr": (15, 86_373, 8, 8),
    "finetune_grounding": (15, 120_624, 20, 8),
    "finetune_vqa": (10, 443_757, 24, 8),
    "finetune_captioning": (5, 566_747, 32, 8),
    "finetune_glue_cola": (20, 8_551, 32, 1),
    "finetune_glue_sst2": (3, 67_349, 32, 1),
    "finetune_glue_mrpc": (20, 3_668, 32, 1),
    "finetune_glue_qqp": (5, 363_846, 32, 1),
    "finetune_glue_stsb": (20, 5_749, 32, 1),
    "finetune_glue_mnli": (5, 392_702, 32, 1),
    "finetune_glue_qnli": (3, 104_743, 32, 1),
    "finetune_glue_rte": (20, 2_490, 16, 1),
    "finetune_imagenet": (100, IMAGENET_TRAIN, 128, 8),
    "linear_probe_imagenet": (100, IMAGENET_TRAIN, 256, 8),
}
# The paper's per-task settings: (image size, peak lr) (docs/xfm.md#downstream-tasks).
SETTINGS = {
    "finetune_retrieval_coco": (384, 3e-5),
    "finetune_retrieval_flickr": (384, 1e-5),
    "eval_retrieval_zeroshot": (224, None),
    "finetune_nlvr": (384, 1e-5),
    "finetune_grounding": (384, 2e-5),
    "finetune_vqa": (480, 2e-5),
    "finetune_captioning": (384, 1e-5),
    "finetune_imagenet": (224, 4e-5),
    "linear_probe_imagenet": (224, 4e-5),
}


# --------------------------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def loader():
    from kedro.config import OmegaConfigLoader

    from xfm_pipeline.settings import CONFIG_LOADER_ARGS

    return OmegaConfigLoader(str(REPO / "conf"), env=ENV, **CONFIG_LOADER_ARGS)


@pytest.fixture(scope="module")
def parameters(loader) -> dict[str, Any]:
    return loader["parameters"]


@pytest.fixture(scope="module")
def catalog_config(loader) -> dict[str, Any]:
    return loader["catalog"]


@pytest.fixture(scope="module")
def roots(loader) -> dict[str, str]:
    """Every directory conf/paper/globals.yml declares: the per-source roots, the retrieval image roots, the
    pretraining image root and where the pretraining shards go."""
    g = loader["globals"]
    retrieval = {f"retrieval.{k}": v["images"] for k, v in g["retrieval"].items()}
    return {**g["roots"], **retrieval, "pretrain_images": g["pretrain_images"], "pretrain_shards": g["pretrain_shards"]}


def strings(tree: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (dotted key, string value) of a nested config."""
    if isinstance(tree, dict):
        return [item for key, value in tree.items() for item in strings(value, f"{path}.{key}" if path else str(key))]
    if isinstance(tree, list):
        return [item for i, value in enumerate(tree) for item in strings(value, f"{path}[{i}]")]
    return [(path, tree)] if isinstance(tree, str) else []


def under(path: str, root: str) -> bool:
    """``path`` is ``root`` or inside it, with no ``..`` step (pure path logic: the placeholders do not exist)."""
    p, r = PurePosixPath(path), PurePosixPath(root)
    return ".." not in p.parts and (p == r or r in p.parents)


def declared_root(path: str, roots: dict[str, str]) -> str | None:
    """The name of the deepest declared root holding ``path``, or None."""
    holding = [name for name, root in roots.items() if under(path, root)]
    return max(holding, key=lambda name: len(roots[name]), default=None)


def test_the_environment_resolves_every_placeholder(loader, parameters, catalog_config):
    g = loader["globals"]
    for key, value in strings(parameters) + strings(catalog_config) + strings(g):
        assert "${" not in value, f"{key} = {value!r}: an interpolation was left unresolved"
    assert all(under(root, g["data_root"]) for root in g["roots"].values())
    assert parameters["image_root"] == g["roots"]["coco"] != "data/01_raw/shapes_world/images"


def test_model_init_is_base_with_beit_v2_and_roberta(loader, parameters):
    from xfm_pipeline.model import build_config
    from xfm_pipeline.pipelines.model_init.nodes import ModelInitParams

    p = from_dict(ModelInitParams, parameters["model_init"], path="model_init")
    weights = loader["globals"]["weights"]
    assert (p.preset, p.vision_checkpoint, p.official_checkpoint, p.tokenizer) == ("base", weights["beit_v2"], None, None)
    config = build_config(p.preset, p.overrides)
    assert config.text.pretrained == weights["roberta_base"] and config.text.hf_config is None  # the directory's architecture and tokenizer
    assert (config.vision.image_size, config.vision.width, config.vision.depth, config.fusion.num_layers) == (224, 768, 12, 12)


@pytest.mark.parametrize("stage", STAGES)
def test_every_pretraining_stage_validates(parameters, stage):
    from xfm_pipeline.jobs.pretrain import PretrainParams
    from xfm_pipeline.objectives.pretrain import ObjectiveWeights, XFMPretrainObjective
    from xfm_pipeline.pipelines.pretrain.nodes import ShardParams
    from xfm_pipeline.training.launch import DistributedConfig
    from xfm_pipeline.training.loop import LoopConfig
    from xfm_pipeline.training.streams import StreamLayout

    p = from_dict(PretrainParams, parameters[stage], path=stage)
    loop = from_dict(LoopConfig, p.loop, path=f"{stage}.loop")
    dist = from_dict(DistributedConfig, p.distributed, path=f"{stage}.distributed")
    shards = from_dict(ShardParams, parameters["pretrain_shards"], path="pretrain_shards")
    objective = XFMPretrainObjective(ObjectiveWeights(**p.objectives), p.detach_text_for_fusion, p.frozen_text_cache, p.box_head)
    if stage == "pretrain_vision":  # no warm-up in the paper: the stage passes its input through
        assert loop.max_steps == 0
        return
    assert loop.mixed_precision == "bf16" and loop.betas == [0.9, 0.98] and p.box_head == "cls"
    assert all(scale == 1.0 for scale in loop.lr_scales.values()), "the paper freezes nothing"
    expected = {"pretrain": ("image_text", "region_text", "image_only", "text_only"), "pretrain_bbox": ("region_text",)}[stage]
    assert objective.active_streams == expected
    for name in expected:  # the lanes split over every rank and DataLoader worker, each lane with a shard of its own
        sp = p.streams()[name]
        StreamLayout(sp.lanes, sp.batch_size, sp.shuffle_buffer, 0).lanes_of(dist.world_size - 1, dist.world_size, p.num_workers - 1, p.num_workers)
        assert shards.min_shards >= sp.lanes, f"{stage}.{name}: {sp.lanes} lanes, at least {shards.min_shards} shards"


def test_pretraining_batches_and_schedule_are_the_papers(parameters):
    p, world = parameters["pretrain"], PRETRAIN["gpus"]
    batch = {name: p[name]["batch_size"] for name in ("image_text", "image_only", "text_only")}
    assert batch == {"image_text": 96 * world, "image_only": 96 * world, "text_only": 256 * world}
    assert p["region_text"]["batch_size"] * p["region_text"]["texts_per_image"] == 96 * world  # (text, region) pairs
    assert p["distributed"]["nproc_per_node"] * p["distributed"]["nnodes"] == world
    per_epoch = math.ceil(PRETRAIN["records"] / (PRETRAIN["per_gpu"] * world))
    loop = p["loop"]
    assert (loop["max_steps"], loop["checkpoint_every"]) == (PRETRAIN["epochs"] * per_epoch, 5 * per_epoch) == (166_500, 8_325)
    assert (loop["lr"], loop["warmup"], loop["weight_decay"], loop["lr_mult"], loop["grad_clip"]) == (1e-4, 2500, 0.01, 2.0, 1.0)
    assert p["text_only"]["max_tokens"] == 128 and p["image_text"]["max_tokens"] == 30
    assert "fusion_encoder.lm_head." not in loop["new_param_prefixes"]  # trained from scratch at the base lr (docs/xfm.md#optimizer)
    assert p["warmup"] is None  # every objective from the first step (base's box-only warm-up phase is the demo's)

    box = parameters["pretrain_bbox"]
    pairs = box["region_text"]["batch_size"] * box["region_text"]["texts_per_image"]
    assert pairs == BOX_DOMAIN["per_gpu"] * BOX_DOMAIN["gpus"]
    assert box["loop"]["max_steps"] == BOX_DOMAIN["epochs"] * math.ceil(BOX_DOMAIN["records"] / pairs) == 1_246
    assert box["loop"]["lr"] == 3e-5


def test_every_finetune_pipeline_validates_and_no_block_is_orphaned(parameters, roots):
    for name, (spec, pipe) in PIPELINES.items():
        params = resolve_params(name, spec.task, [parameters[block] for block in pipe.param_layers()])
        assert isinstance(params, FinetuneParams), name
        assert params.loop.mixed_precision == "bf16" and params.loop.seed == 42, name
        assert all(scale == 1.0 for scale in params.loop.lr_scales.values()), f"{name}: the paper freezes nothing"
        image_root = params.image_root or parameters["image_root"]
        assert declared_root(image_root, roots), f"{name}: image root {image_root} is not a declared root"
    used = {block for _, pipe in PIPELINES.values() for block in pipe.param_layers()}
    assert {k for k in parameters if k.startswith(("finetune_", "eval_", "linear_probe_"))} == used


@pytest.mark.parametrize("name", sorted(FINETUNE))
def test_steps_are_the_papers_epochs_over_the_training_set(parameters, name):
    spec, pipe = get_pipeline(name)
    params = resolve_params(name, spec.task, [parameters[block] for block in pipe.param_layers()])
    epochs, records, per_gpu, gpus = FINETUNE[name]
    if "imagenet" in name:  # the held-out selection slice leaves (1 - val_fraction) of train
        records = round(records * (1 - params.options["val_fraction"]))
    assert params.batch_size == per_gpu * gpus
    assert params.distributed.nproc_per_node * params.distributed.nnodes == gpus
    per_epoch = math.ceil(records / params.batch_size)
    assert (params.loop.max_steps, params.loop.eval_every, params.loop.checkpoint_every) == (epochs * per_epoch, per_epoch, per_epoch)


def test_per_task_settings_are_the_papers(parameters):
    resolved = {name: resolve_params(name, spec.task, [parameters[b] for b in pipe.param_layers()]) for name, (spec, pipe) in PIPELINES.items()}
    for name, (size, lr) in SETTINGS.items():
        assert resolved[name].image_size == size, name
        assert lr is None or resolved[name].loop.lr == lr, name
    assert resolved["eval_retrieval_zeroshot"].loop.max_steps == 0
    retrieval = resolved["finetune_retrieval_coco"].options
    assert (retrieval["k_test"], retrieval["score"]) == (256, "itm")  # ITC top-256 re-ranked by the ITM logit alone
    assert resolved["finetune_vqa"].options["k_test"] == 128
    assert resolved["finetune_grounding"].options["box_head"] == "cls"
    captioning = resolved["finetune_captioning"].options
    assert (captioning["beam_size"], captioning["max_len"], captioning["min_len"]) == (3, 20, 5)
    glue = [resolved[n] for n in resolved if n.startswith("finetune_glue_")]
    assert {(g.max_tokens, tuple(g.loop.betas), g.loop.eps, g.loop.weight_decay, g.loop.warmup) for g in glue} == {(128, (0.9, 0.999), 1e-6, 0.0, 0.0)}
    imagenet = resolved["finetune_imagenet"]
    assert (imagenet.options["head"], imagenet.options["mixup"], imagenet.options["cutmix"], imagenet.options["augment"]) == ("mlp", 0.8, 1.0, "imagenet")
    assert imagenet.loop.warmup == 10 * imagenet.loop.eval_every  # 10 warm-up epochs


def test_data_validation_and_ingestion_validate(parameters, catalog_config, roots):
    from kedro.io import DataCatalog

    from xfm_pipeline.data.validation import ValidationParams
    from xfm_pipeline.data.validation.registry import DATASETS, IMAGE_ROOT_TASKS
    from xfm_pipeline.datasets.catalog_paths import dataset_path
    from xfm_pipeline.pipelines.data_ingestion.nodes import DataIngestionParams

    assert from_dict(DataIngestionParams, parameters["data_ingestion"], path="data_ingestion").source == "real"
    p = from_dict(ValidationParams, parameters["data_validation"], path="data_validation")
    catalog = DataCatalog.from_config(catalog_config)
    for name, spec in DATASETS.items():
        path = str(dataset_path(catalog, spec.catalog_entry))
        assert p.source_of(name) == path, f"data_validation.sources.{name} names another file than the catalog"
        if spec.task in IMAGE_ROOT_TASKS:
            assert declared_root(str(p.image_root_of(name)), roots), name
    assert p.image_root_of("imagenet") == Path(roots["imagenet"]) and p.imagenet_suffix == catalog_config["imagenet_raw"]["filename_suffix"]


def test_every_catalog_entry_instantiates_under_a_declared_root(catalog_config, roots):
    from kedro.io import DataCatalog

    from xfm_pipeline.datasets.catalog_paths import dataset_path

    catalog = DataCatalog.from_config(catalog_config)
    explicit = [name for name in catalog_config if "{" not in name]
    paper_entries = set()
    for file in (REPO / "conf" / ENV).glob("catalog*.yml"):
        paper_entries |= {k for k in yaml.safe_load(file.read_text()) if not k.startswith("_")}
    for name in explicit:
        catalog.get(name)  # instantiates (raises on a bad type or argument)
        path = dataset_path(catalog, name)
        if path is None:
            continue
        if path.is_absolute():
            assert declared_root(str(path), roots), f"{name}: {path} is under no root of conf/{ENV}/globals.yml"
        else:
            assert path.parts[0] == "data" and ".." not in path.parts, f"{name}: {path} leaves the project's data/"
    raw = {name for name in paper_entries if name.endswith("_raw") or name == "shapes_world_images"}
    assert raw and all(PurePosixPath(str(dataset_path(catalog, name))).is_absolute() for name in raw)
    for stream in ("image_text", "region_text", "image_only", "text_only"):  # a pattern: resolved per stream
        assert declared_root(str(dataset_path(catalog, f"pretrain_{stream}_shards")), roots) == "pretrain_shards"


def test_pretraining_sources_lie_under_the_pretraining_image_root(roots):
    for source in ("coco", "visual_genome", "sbu", "cc3m", "imagenet"):
        assert under(roots[source], roots["pretrain_images"]), source


def test_the_chain_skips_the_warm_up_and_keeps_the_box_domain_stage(catalog_config, parameters):
    """pretrain reads pretrain_vision_checkpoint, which is model_init's directory; grounding starts from the
    box domain pretraining, every other task from pretraining."""
    assert catalog_config["pretrain_vision_checkpoint"]["path"] == catalog_config["init_checkpoint"]["path"]
    assert parameters["pretrain_vision"]["loop"]["max_steps"] == 0
    assert get_pipeline("finetune_grounding")[1].init == "pretrain_bbox_checkpoint"
    assert get_pipeline("finetune_nlvr")[1].init == "pretrain_checkpoint"
    assert catalog_config["pretrain_bbox_checkpoint"]["path"] != catalog_config["pretrain_checkpoint"]["path"]


# ------------------------------------------------------------------------------------------- mechanics

# What the mechanics run shrinks (every other setting is the paper environment's): batches, lanes and shards,
# steps, warm-up, the world (1 CPU process, fp32, no DataLoader workers), VQA's 480 px to 240 px (a resized grid
# still) and RoBERTa-base to a 2-layer, 96-wide RoBERTa (the base preset takes the directory's architecture).
PRETRAIN_SHRUNK = {
    **{stream: {"batch_size": 2, "lanes": 2} for stream in ("image_text", "region_text", "image_only", "text_only")},
    "loop": {"max_steps": 1, "warmup": 0.0, "checkpoint_every": 1, "log_every": 1, "mixed_precision": "no"},
    "num_workers": 0,
    "distributed": {"nproc_per_node": 1, "nnodes": 1, "rdzv_endpoint": "127.0.0.1:29500"},
}
VQA_SHRUNK = {
    "image_size": 240,
    "batch_size": 2,
    "eval_batch_size": 8,
    "num_workers": 0,
    "distributed": {"nproc_per_node": 1},
    "loop": {"max_steps": 1, "eval_every": 1, "checkpoint_every": 1, "log_every": 1, "mixed_precision": "no"},
}
SMALL_ROBERTA = {"hidden_size": 96, "num_hidden_layers": 2, "num_attention_heads": 12, "intermediate_size": 384}


def point_globals_at(project: Path, world: Path, weights: dict[str, str]) -> None:
    """Rewrite the project's ``conf/paper/globals.yml``: every image root at the shapes world's images (the
    annotation roots at its folders, the shards under it) and the initial weights at ``weights``; the rest of
    conf/paper as it is."""
    path = project / "conf" / ENV / "globals.yml"
    g = yaml.safe_load(path.read_text())
    images = str(world / "images")
    g["data_root"] = str(world)
    g["roots"] = {name: images for name in g["roots"]} | {
        "imagenet": str(world / "imagenet"),
        "glue": str(world / "glue"),
        "pretrain_corpora": str(world / "pretrain"),
    }
    g["pretrain_images"] = images
    g["weights"] = weights
    path.write_text(yaml.safe_dump(g, sort_keys=False))


def run_in_env(project: Path, names: list[str], runtime_params: dict[str, Any]) -> None:
    """Run ``names`` one after the other in the paper environment of ``project`` with ``--params``."""
    from kedro.framework.project import configure_project
    from kedro.framework.session import KedroSession
    from kedro_project import inside

    with inside(project):
        configure_project("xfm_pipeline")
        for name in names:
            with KedroSession.create(project_path=project, env=ENV, runtime_params=runtime_params) as session:
                session.run(pipeline_names=[name])


@pytest.mark.system  # BEiT-B/16 + a 12-layer fusion encoder through four Kedro sessions (~2 min on 2 idle cores)
@pytest.mark.timeout(600)  # room for a machine shared with other jobs
def test_paper_environment_runs_pretraining_and_vqa_on_the_shapes_world(tmp_path):
    from kedro_project import make_demo_world
    from pretrained_files import write_beit_v2, write_roberta_dir

    start = time.perf_counter()
    demo = make_demo_world(tmp_path / "project")  # base env: the shapes world generated and validated
    weights = {
        "beit_v2": str(write_beit_v2(tmp_path / "weights" / "beitv2_base_patch16_224_pt1k.pth", fmt="original", image_size=224)),
        "roberta_base": str(write_roberta_dir(tmp_path / "weights" / "roberta-base", **SMALL_ROBERTA)),
    }
    point_globals_at(demo.root, demo.root / "data" / "01_raw" / "shapes_world", weights)
    shrunk = {"pretrain_shards": {"min_shards": 4}, "pretrain": PRETRAIN_SHRUNK, "finetune_vqa": VQA_SHRUNK}
    run_in_env(demo.root, ["pretrain_shards", "model_init", "pretrain", "finetune_vqa"], shrunk)

    data = demo.root / "data"
    shards = Path(yaml.safe_load((demo.root / "conf" / ENV / "globals.yml").read_text())["data_root"]) / "pretrain_shards"
    assert sorted(p.name for p in shards.iterdir()) == ["image_only", "image_text", "region_text", "text_only"]  # under globals
    summary = json.loads((data / "08_reporting" / "model_init.json").read_text())
    assert summary["preset"] == "base" and summary["config"]["text"]["pretrained"] == weights["roberta_base"]
    vision, text = summary["vision_import"], summary["text_import"]
    assert len(vision["loaded"]) == 4 + 12 * 16 and not vision["missing"] and not vision["unexpected"]  # tokens, patch embedding, 12 blocks
    assert text["loaded"] and not text["missing"] and not text["unexpected"] and summary["official_import"] is None
    assert not (data / "06_models" / "pretrain_vision").exists()  # pretrain started from init: no warm-up stage

    pretrain = json.loads((data / "08_reporting" / "pretrain_metrics.json").read_text())
    losses = {
        "image_text": ("itc", "itm", "mlm", "mim"),
        "region_text": ("itc", "itm", "mlm", "bbox", "giou"),
        "image_only": ("mim",),
        "text_only": ("text_mlm",),
    }
    assert pretrain["step"] == 1 and set(pretrain["losses"]) >= {f"{s}/loss_{o}" for s, names in losses.items() for o in names}  # all four streams
    assert json.loads((data / "06_models" / "pretrain" / "config.json").read_text())["extra"]["stage"] == "pretrain"
    # pretraining started from the BEiT-v2 weights (init, through the catalog alias): one step of lr 1e-4 moved them little
    import torch
    from safetensors.torch import load_file

    beit = torch.load(weights["beit_v2"], weights_only=True)["model"]["patch_embed.proj.weight"]
    pretrained = load_file(data / "06_models" / "pretrain" / "model.safetensors")["vision_encoder.patch_embed.proj.weight"]
    assert torch.allclose(pretrained, beit, atol=1e-3) and beit.abs().mean() > 1e-2

    metrics = json.loads((data / "08_reporting" / "metrics" / "finetune_vqa.json").read_text())
    assert 0.0 <= metrics["val/vqa_acc"] <= 100.0 and 0.0 <= metrics["test/vqa_acc"] <= 100.0
    predictions = json.loads((data / "07_model_output" / "finetune_vqa" / "predictions.json").read_text())
    assert len(predictions["test"]) == len(demo.records("vqa/test.json"))
    trained = json.loads((data / "06_models" / "finetune_vqa" / "config.json").read_text())["params"]
    # the paper's settings reached the job, only the shrunk ones changed
    assert (trained["loop"]["lr"], trained["loop"]["betas"], trained["options"]["k_test"], trained["max_tokens"]) == (2e-5, [0.9, 0.98], 128, 40)
    assert (trained["image_size"], trained["loop"]["max_steps"]) == (240, 1)
    print(f"paper-environment mechanics run: {time.perf_counter() - start:.0f} s")
