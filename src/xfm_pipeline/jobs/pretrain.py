"""The X-FM pretraining job: four data streams, the per-stream objective, the generic training loop.

Every stream reads its sources through :mod:`xfm_pipeline.training.streams` (lanes over shards, a shuffle
buffer, mixing by weight, exact resume). A source is a WebDataset shard directory (read as a stream) or a
JSON-lines file of records held in memory (a small corpus); which one is decided by what the catalog
entry the pipeline reads holds (docs/real_datasets.md), never by a flag of the job.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xfm_pipeline.config import from_dict, merge, to_dict
from xfm_pipeline.data.formats.pretrain import PRETRAIN_STREAMS
from xfm_pipeline.jobs.resume import DEFAULT_KEEP_RUNS, finish_run, prune_runs, run_directory, start_run

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
    image_root: str | None = None  # root of the `image` paths of this stream's JSON-lines sources (None: params:image_root)
    lanes: int = 2  # independent sub-streams dealt the shards (training.streams); divides batch_size, multiple of ranks x workers
    shuffle_buffer: int = 1000  # samples per shuffle window of each lane and source


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
    # DataLoader workers per rank and stream (None = auto: 0 on a CPU; on CUDA min(8, CPUs per rank) split over the
    # active streams, each stream's count a divisor of its lanes per rank)
    num_workers: int | None = None
    prefetch_factor: int | None = None  # lane chunks each worker loads ahead (None = PyTorch's 2; needs workers)
    output_dir: str = "data/06_models/pretrain_run"  # run-<key>/ checkpoints: same params+inputs resume
    keep_runs: int = DEFAULT_KEEP_RUNS  # run-<key>/ directories kept after a run (the oldest are deleted; 0 = keep all)
    distributed: dict[str, Any] = field(default_factory=dict)  # training.launch.DistributedConfig fields
    # A first phase of the stage (see warmup_params): fields of this block it replaces, mappings merged key by
    # key; the stage then continues from the phase's checkpoint. None = one phase.
    warmup: dict[str, Any] | None = None

    def streams(self) -> dict[str, StreamParams]:
        """Configured streams in schedule order."""
        return {name: getattr(self, name) for name in STREAMS if getattr(self, name) is not None}


WARMUP_PREFIX = "warmup/"  # prefixes a warm-up phase's history keys and MLflow metrics (pipelines.pretrain.nodes)


def warmup_params(params: dict[str, Any], stage: str = "pretrain") -> dict[str, Any]:
    """The parameter block of a stage's warm-up phase: the stage's block (``params``) without ``warmup``,
    with ``warmup``'s keys applied over it (mappings such as ``loop``, ``objectives`` or a stream's block
    merged key by key). Its ``output_dir`` defaults to ``<output_dir>/warmup``.

    Example: ``warmup: {objectives: {itc: 0, itm: 0, mlm: 0}, loop: {max_steps: 300}}`` first trains box
    prediction alone for 300 steps with the stage's other settings.

    Raises:
        ConfigError: the merged block is not a valid :class:`PretrainParams` (the message names
            ``<stage>.warmup.<key>``), or it has a ``warmup`` of its own.
    """
    from xfm_pipeline.config import ConfigError

    overrides = params.get("warmup")
    if not isinstance(overrides, dict):
        raise ConfigError(f"{stage}.warmup: expected a mapping of parameters, got {overrides!r}")
    if "warmup" in overrides:
        raise ConfigError(f"{stage}.warmup.warmup: a warm-up phase cannot have a warm-up of its own")
    base = {k: v for k, v in params.items() if k != "warmup"}
    merged = merge(base, overrides)
    if "output_dir" not in overrides:
        merged["output_dir"] = str(Path(base.get("output_dir", PretrainParams.output_dir)) / "warmup")
    from_dict(PretrainParams, merged, path=f"{stage}.warmup")  # validated before anything runs
    return merged


# Parameters that did not come from a pretrained checkpoint get lr x lr_mult (docs/xfm.md#optimizer).
NEW_PARAM_PREFIXES = ["vision_proj.", "text_proj.", "temp", "itm_head.", "bbox_head.", "bbox_pointer.", "fusion_encoder.lm_head.", "mim_head."]


def run_pretraining(config: dict[str, Any]) -> dict[str, Any]:
    """Job entry point (every rank). ``config`` keys: params, init_dir, corpora, image_root, run_id and
    optionally stage (the checkpoint's stage tag; default "pretrain") and log_prefix (prepended to the
    MLflow metric names; default none).

    ``corpora`` maps each stream to its sources, ``[{"name", "path", "weight"?, "image_root"?}, ...]``: a
    directory is a WebDataset shard directory (:mod:`xfm_pipeline.data.shards`), a file a JSON-lines corpus
    read into memory (its ``image`` paths under the source's ``image_root``, else the stream's, else
    ``config["image_root"]``).

    Returns (rank 0): final checkpoint directory, step, history, resumed_from.
    """
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained, write_pretrained
    from xfm_pipeline.objectives.pretrain import ObjectiveWeights, XFMPretrainObjective
    from xfm_pipeline.tracking import MlflowStepLogger
    from xfm_pipeline.training.loop import LoopConfig, make_accelerator, train

    params = from_dict(PretrainParams, config["params"], path="pretrain")
    if params.warmup is not None:
        raise ValueError("pretrain.warmup: a job runs one phase; the pretraining node runs the warm-up phase first (warmup_params)")
    loop_config = from_dict(LoopConfig, params.loop, path="pretrain.loop")
    if not loop_config.new_param_prefixes:
        loop_config.new_param_prefixes = list(NEW_PARAM_PREFIXES)
    accelerator = make_accelerator(loop_config.mixed_precision)
    model = load_pretrained(config["init_dir"]).train()
    tokenizer = load_checkpoint_tokenizer(config["init_dir"])
    objective = XFMPretrainObjective(ObjectiveWeights(**params.objectives), params.detach_text_for_fusion, params.frozen_text_cache, params.box_head)
    active = [name for name in params.streams() if name in objective.active_streams]
    sources = {name: _sources(name, config["corpora"], params.streams()[name].image_root or config["image_root"]) for name in active}
    streams = {
        name: _build_stream(name, params.streams()[name], sources[name], model, tokenizer, params, loop_config.seed, accelerator, i, len(active))
        for i, name in enumerate(params.streams())
        if name in active
    }

    def metadata(directory: Path, trained) -> None:
        write_pretrained(trained, directory, tokenizer=tokenizer, extra={"stage": config.get("stage", "pretrain")})

    on_log = MlflowStepLogger(config.get("run_id"), prefix=config.get("log_prefix", "")) if accelerator.is_main_process else None
    records_files = [Path(e["path"]) for name in active for e in config["corpora"][name] if not Path(e["path"]).is_dir()]
    files = [Path(config["init_dir"]) / "model.safetensors", *records_files]  # hashed into the run key; shards by their index
    key_params = {k: v for k, v in config["params"].items() if k not in ("distributed", "output_dir", "num_workers", "prefetch_factor", "keep_runs", "warmup")}
    key_params["data"] = {name: [[s.weight, s.fingerprint()] for s in sources[name] if s.shards is not None] for name in active}
    run_dir = run_directory(params.output_dir, key_params, files)
    start = start_run(run_dir, accelerator.is_main_process)
    accelerator.wait_for_everyone()
    if on_log is not None:
        on_log.set_tags(start.tags())
    if start.selected is not None:  # finished by this code: its final checkpoint as it is
        history_file = run_dir / "history.json"
        history = json.loads(history_file.read_text()) if history_file.is_file() else []
        return {"final_checkpoint": str(start.selected), "step": loop_config.max_steps, "history": history, "resumed_from": str(start.selected)}
    result = train(model, objective, streams, loop_config, run_dir, accelerator, write_metadata=metadata, on_log=on_log)
    if accelerator.is_main_process:
        prune_runs(run_dir, params.keep_runs)
        if result.final_checkpoint:
            finish_run(run_dir, result.final_checkpoint)
    return {"final_checkpoint": result.final_checkpoint, "step": result.step, "history": result.history, "resumed_from": result.resumed_from}


def _sources(stream: str, corpora: dict[str, list[dict[str, Any]]], image_root: str | None) -> list:
    """The :class:`~xfm_pipeline.training.stream_sources.StreamSource` s of ``stream`` (stream-wide indices assigned)."""
    from xfm_pipeline.training.stream_sources import StreamSource
    from xfm_pipeline.training.streams import assign_indices

    if not corpora.get(stream):
        raise ValueError(f"pretrain.{stream} is configured but no corpus was given for it")
    out = []
    for entry in corpora[stream]:
        path, weight = Path(entry["path"]), float(entry.get("weight", 1.0))
        if path.is_dir():
            out.append(StreamSource.from_shards(entry.get("name", str(path)), stream, path, weight))
        else:
            out.append(StreamSource.from_records(str(path), stream, _read_records(path, stream), entry.get("image_root") or image_root, weight))
    assign_indices(out)
    return out


def _read_records(path: Path, stream: str) -> list:
    from xfm_pipeline.data.formats.pretrain import parse_corpus

    objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return parse_corpus(objects, stream, source=str(path))


def sample_builder(name: str, sp: StreamParams, model, tokenizer, records=()):
    """The sample builder of stream ``name`` (a ``data.pretrain_datasets`` dataset over ``records``, no image
    root: images come as bytes) with the stream's text settings, MLM masker and block-wise MIM masker."""
    from xfm_pipeline.data import pretrain_datasets as pd
    from xfm_pipeline.data.masking import BlockMaskGenerator, TextMasker, scaled_mask_sizes
    from xfm_pipeline.data.transforms import eval_transform, pretrain_transform, randaugment_color_transform

    records = list(records)
    vision = model.config.vision
    text = pd.TextSettings(max_words=sp.max_words, max_tokens=sp.max_tokens, apply_pre_caption=name != "text_only")
    text_masker = TextMasker(tokenizer, mask_prob=sp.mask_prob, max_masks=sp.max_masks)
    num_masked, min_block = scaled_mask_sizes(vision.num_patches)  # 75 of 196, blocks >= 16, scaled
    patch_masker = BlockMaskGenerator(vision.grid_size, num_masked, min_num_patches=min_block)
    if name == "image_text":
        return pd.ImageTextDataset(records, None, pretrain_transform(vision.image_size), tokenizer, text_masker, patch_masker, text)
    if name == "region_text":
        colour = randaugment_color_transform() if sp.augment else eval_transform(vision.image_size)
        return pd.RegionTextDataset(
            records,
            None,
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
    if name == "image_only":
        return pd.ImageOnlyDataset(records, None, pretrain_transform(vision.image_size), patch_masker)
    return pd.TextOnlyDataset(records, tokenizer, text_masker, text)


def _build_stream(name, sp: StreamParams, sources, model, tokenizer, params: PretrainParams, seed, accelerator, offset, n_streams: int):
    from xfm_pipeline.data import pretrain_datasets as pd
    from xfm_pipeline.training.dataloaders import cpus_per_rank, resolve_loader_settings
    from xfm_pipeline.training.loop import Stream
    from xfm_pipeline.training.streams import LaneDataset, LaneLoader, StreamLayout, StreamPosition

    if name != "region_text" and not sp.augment:
        raise ValueError(f"pretrain.{name}.augment: only region_text can switch its augmentation off")
    builder = sample_builder(name, sp, model, tokenizer)  # images come as bytes from the stream's sources
    try:
        layout = StreamLayout(sp.lanes, sp.batch_size, sp.shuffle_buffer, seed * 31 + offset)
        position = StreamPosition()
        dataset = LaneDataset(sources, layout, builder, position, accelerator.process_index, accelerator.num_processes)
        settings = resolve_loader_settings(
            accelerator.device, params.num_workers, prefetch_factor=params.prefetch_factor, where="pretrain",
            worker_cap=cpus_per_rank() // n_streams, workers_divide=sp.lanes // accelerator.num_processes,
        )  # fmt: skip
        loader = LaneLoader(dataset, pd.collate(name), settings.num_workers, settings.prefetch_factor)
    except ValueError as exc:
        raise ValueError(f"pretrain.{name}: {exc}") from exc
    samples = sp.batch_size * (sp.texts_per_image if name == "region_text" else 1)
    return Stream(loader, position, weight=sp.weight, samples_per_batch=samples)


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
