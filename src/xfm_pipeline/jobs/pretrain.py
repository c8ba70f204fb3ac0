"""The X-FM pretraining job: four data streams, the per-stream objective, the generic training loop."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xfm_pipeline.config import from_dict, to_dict
from xfm_pipeline.data.formats.pretrain import PRETRAIN_STREAMS
from xfm_pipeline.jobs.resume import DEFAULT_KEEP_RUNS, prune_runs, run_directory

log = logging.getLogger(__name__)

STREAMS = PRETRAIN_STREAMS  # image_text, region_text, image_only, text_only


@dataclass
class StreamParams:
    """One pretraining stream."""

    batch_size: int = 8  # GLOBAL batch (images for region_text) per micro-step, split over ranks
    weight: float = 1.0  # multiplies the stream's summed loss
    max_words: int = 30  # caption truncation (pre_caption)
    max_tokens: int = 30  # token length incl. specials
    mask_prob: float = 0.5  # MLM masking rate
    max_masks: int = 15  # at most this many masked tokens
    texts_per_image: int = 2  # region_text: texts drawn per image (all of them in ITC)
    fusion_texts_per_image: int | None = None  # region_text: of those, the first n also in ITM, IMLM and BBP (None = all)
    augment: bool = True  # region_text: box-keeping crop, flip, colour RandAugment (X-FM); false = whole images as they are
    image_root: str | None = None  # root of this stream's `image` paths (None: params:image_root)


@dataclass
class PretrainParams:
    """``params:pretrain`` (validated at the node boundary; unknown keys rejected)."""

    image_text: StreamParams | None = None  # ITC, ITM, IMLM, MIM
    region_text: StreamParams | None = None  # ITC, ITM, IMLM, BBP
    image_only: StreamParams | None = None  # MIM
    text_only: StreamParams | None = None  # text MLM
    objectives: dict[str, float] = field(default_factory=dict)  # ObjectiveWeights overrides (0 = off)
    detach_text_for_fusion: bool = True  # the paper's stop-gradient into the text encoder
    box_head: str = "cls"  # BBP head: "cls" (X-FM's bbox_head) | "pointer" (bbox_pointer + loss_pointer)
    frozen_text_cache: int = 0  # distinct texts whose states a FROZEN text encoder keeps per process (0 = none)
    loop: dict[str, Any] = field(default_factory=dict)  # training.loop.LoopConfig fields
    num_workers: int = 0  # DataLoader workers per rank
    output_dir: str = "data/06_models/pretrain_run"  # run-<key>/ checkpoints: same params+inputs resume
    keep_runs: int = DEFAULT_KEEP_RUNS  # run-<key>/ directories kept after a run (the oldest are deleted; 0 = keep all)
    distributed: dict[str, Any] = field(default_factory=dict)  # training.launch.DistributedConfig fields

    def streams(self) -> dict[str, StreamParams]:
        """Configured streams in schedule order."""
        return {name: getattr(self, name) for name in STREAMS if getattr(self, name) is not None}


# Parameters that did not come from a pretrained checkpoint get lr x lr_mult (docs/xfm.md#optimizer).
NEW_PARAM_PREFIXES = ["vision_proj.", "text_proj.", "temp", "itm_head.", "bbox_head.", "bbox_pointer.", "fusion_encoder.lm_head.", "mim_head."]


def run_pretraining(config: dict[str, Any]) -> dict[str, Any]:
    """Job entry point (every rank). ``config`` keys: params, init_dir, records_dir, image_root, run_id and
    optionally stage (the checkpoint's stage tag; default "pretrain").

    Returns (rank 0): final checkpoint directory, step, history, resumed_from.
    """
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained, write_pretrained
    from xfm_pipeline.objectives.pretrain import ObjectiveWeights, XFMPretrainObjective
    from xfm_pipeline.tracking import MlflowStepLogger
    from xfm_pipeline.training.loop import LoopConfig, make_accelerator, train

    params = from_dict(PretrainParams, config["params"], path="pretrain")
    loop_config = from_dict(LoopConfig, params.loop, path="pretrain.loop")
    if not loop_config.new_param_prefixes:
        loop_config.new_param_prefixes = list(NEW_PARAM_PREFIXES)
    accelerator = make_accelerator(loop_config.mixed_precision)
    model = load_pretrained(config["init_dir"]).train()
    tokenizer = load_checkpoint_tokenizer(config["init_dir"])
    objective = XFMPretrainObjective(ObjectiveWeights(**params.objectives), params.detach_text_for_fusion, params.frozen_text_cache, params.box_head)
    records = {name: _read_records(Path(config["records_dir"]) / f"{name}.jsonl", name) for name in params.streams()}
    streams = {
        name: _build_stream(name, sp, records[name], model, tokenizer, params, sp.image_root or config["image_root"], loop_config.seed, accelerator, i)
        for i, (name, sp) in enumerate(params.streams().items())
        if name in objective.active_streams
    }

    def metadata(directory: Path, trained) -> None:
        write_pretrained(trained, directory, tokenizer=tokenizer, extra={"stage": config.get("stage", "pretrain")})

    on_log = MlflowStepLogger(config.get("run_id")) if accelerator.is_main_process else None
    inputs = [Path(config["init_dir"]) / "model.safetensors", *(Path(config["records_dir"]) / f"{n}.jsonl" for n in streams)]
    key_params = {k: v for k, v in config["params"].items() if k not in ("distributed", "output_dir", "num_workers", "keep_runs")}
    run_dir = run_directory(params.output_dir, key_params, inputs)
    result = train(model, objective, streams, loop_config, run_dir, accelerator, write_metadata=metadata, on_log=on_log)
    if accelerator.is_main_process:
        prune_runs(run_dir, params.keep_runs)
    return {"final_checkpoint": result.final_checkpoint, "step": result.step, "history": result.history, "resumed_from": result.resumed_from}


def _read_records(path: Path, stream: str) -> list:
    from xfm_pipeline.data.formats.pretrain import parse_corpus

    objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return parse_corpus(objects, stream, source=str(path))


def _build_stream(name, sp: StreamParams, records, model, tokenizer, params: PretrainParams, image_root, seed, accelerator, offset):
    import torch

    from xfm_pipeline.data import pretrain_datasets as pd
    from xfm_pipeline.data.masking import BlockMaskGenerator, TextMasker, scaled_mask_sizes
    from xfm_pipeline.data.transforms import eval_transform, pretrain_transform, randaugment_color_transform
    from xfm_pipeline.training.loop import Stream
    from xfm_pipeline.training.sampling import StreamSampler

    if name != "region_text" and not sp.augment:
        raise ValueError(f"pretrain.{name}.augment: only region_text can switch its augmentation off")
    vision = model.config.vision
    text = pd.TextSettings(max_words=sp.max_words, max_tokens=sp.max_tokens, apply_pre_caption=name != "text_only")
    text_masker = TextMasker(tokenizer, mask_prob=sp.mask_prob, max_masks=sp.max_masks)
    num_masked, min_block = scaled_mask_sizes(vision.num_patches)  # 75 of 196, blocks >= 16, scaled
    patch_masker = BlockMaskGenerator(vision.grid_size, num_masked, min_num_patches=min_block)
    if name == "image_text":
        dataset = pd.ImageTextDataset(records, image_root, pretrain_transform(vision.image_size), tokenizer, text_masker, patch_masker, text)
    elif name == "region_text":
        colour = randaugment_color_transform() if sp.augment else eval_transform(vision.image_size)
        dataset = pd.RegionTextDataset(
            records,
            image_root,
            vision.image_size,
            vision.patch_size,
            colour,
            tokenizer,
            text_masker,
            text,
            texts_per_image=sp.texts_per_image,
            fusion_texts_per_image=sp.fusion_texts_per_image,
            augment=sp.augment,
        )
    elif name == "image_only":
        dataset = pd.ImageOnlyDataset(records, image_root, pretrain_transform(vision.image_size), patch_masker)
    else:
        dataset = pd.TextOnlyDataset(records, tokenizer, text_masker, text)
    sampler = StreamSampler(len(dataset), sp.batch_size, seed=seed * 31 + offset, rank=accelerator.process_index, world_size=accelerator.num_processes)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=pd.collate(name), num_workers=params.num_workers, persistent_workers=params.num_workers > 0
    )
    samples = sp.batch_size * (sp.texts_per_image if name == "region_text" else 1)
    return Stream(loader, sampler, weight=sp.weight, samples_per_batch=samples)


def loss_summary(history: list[dict[str, float]], window: int = 50) -> dict[str, dict[str, float]]:
    """First and last ``window``-step means of every loss in a step-wise history (needs log_every=1)."""
    keys = sorted({k for h in history for k in h if "loss" in k})
    out = {}
    for key in keys:
        values = [h[key] for h in history if key in h and math.isfinite(h[key])]
        if values:
            out[key] = {"first": sum(values[:window]) / len(values[:window]), "last": sum(values[-window:]) / len(values[-window:])}
    return out


def describe(params: PretrainParams) -> dict[str, Any]:
    """The resolved parameters as a plain dict (for job files and MLflow)."""
    return to_dict(params)
