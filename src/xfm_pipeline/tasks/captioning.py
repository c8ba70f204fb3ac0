"""Image captioning with a causal decoder over the image tokens (docs/xfm.md#captioning).

* Data: ``data["train"]`` = ``{"image", "caption", "image_id"}`` pairs; ``data["val"|"test"]`` = images
  to caption; ``data["val_gt"|"test_gt"]`` = COCO-caption ground truth (``xfm_pipeline.data.formats.captioning``).
* Model: image -> vision encoder -> tokens (B, 1+N, Dv); the decoder
  (:class:`~xfm_pipeline.model.decoder.CausalDecoder`) cross-attends to them (its key/value projections
  take the vision width, so no extra projection is needed). Layers and LM head are copied from the fusion
  encoder, whose cross-attention already reads image tokens; embeddings from the text encoder. (The
  official code shipped a decoder without cross-attention that never saw the image,
  docs/xfm.md#fix-captioning.)
* Training: ``[CLS] a picture of <caption> [SEP]`` teacher-forced; the start and prompt tokens are not
  targets; cross-entropy with label smoothing 0.1, mean over target tokens.
* Generation: batched beam search (beam 3, 5..20 new tokens) from the prompt; greedy = ``beam_size: 1``.
* Output ``[{"image_id", "caption"}]`` (prompt removed); metrics from
  :func:`xfm_pipeline.metrics.captioning.caption_metrics`: ``bleu4`` (BLEU-4), ``cider``, ``rouge_l``,
  ``bleu_1..3``, ``meteor`` when Java exists. Model selection on ``cider``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xfm_pipeline.data.text import trim_padding
from xfm_pipeline.tasks import common
from xfm_pipeline.tasks.base import Task, TaskModel, TaskParams
from xfm_pipeline.tasks.spec import Examples, TaskPipeline, TaskSpec

CAPTION_WORDS = 30  # pre_caption max words (X-FM)


@dataclass
class CaptioningOptions:
    """Task-specific options (``params.options``)."""

    prompt: str = "a picture of "  # prepended to every caption; its tokens are not trained on nor returned
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    beam_size: int = 3  # 1 = greedy decoding
    max_len: int = 20  # generated tokens at most (prompt not counted)
    min_len: int = 5  # generated tokens before the end token is allowed
    augment: bool = True  # fine-tuning train transform (RandomResizedCrop, flip, RandAugment); False = eval resize


class CaptioningModel(TaskModel):
    """X-FM vision encoder + caption decoder cross-attending to the image tokens."""

    def __init__(self, xfm: nn.Module, task: str, options: dict[str, Any]):
        super().__init__(xfm, task, options)
        from xfm_pipeline.model.decoder import CausalDecoder

        self.decoder = CausalDecoder.from_xfm(xfm, context_width=xfm.config.vision.width)

    def image_context(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) -> image tokens (B, 1+N, Dv) and their all-ones mask (B, 1+N)."""
        tokens = self.xfm.encode_image(images)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)


def prompt_length(tokenizer, prompt: str) -> int:
    """Tokens of ``[CLS] + prompt`` (the untrained prefix of every sequence)."""
    return 1 + len(tokenizer(prompt.strip(), add_special_tokens=False)["input_ids"]) if prompt.strip() else 1


class CaptioningDataset(torch.utils.data.Dataset):
    """Training pairs (items ``(index, sample_seed)``) or evaluation images (plain indices)."""

    def __init__(self, records, tokenizer, params: TaskParams, options: CaptioningOptions, image_root: str, train: bool, source: str):
        from xfm_pipeline.data.transforms import eval_transform, train_transform

        self.records, self.tokenizer, self.root, self.train, self.source = records, tokenizer, image_root, train, source
        self.options, self.max_tokens = options, params.max_tokens
        size = common.image_size(params)
        self.transform = train_transform(size) if train and options.augment else eval_transform(size)
        self.images = common.ImageMemo(0 if train and options.augment else params.image_memo_mb)
        self.prompt_len = prompt_length(tokenizer, options.prompt)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item) -> dict[str, Any]:
        from xfm_pipeline.data.text import pre_caption

        index, seed = item if isinstance(item, (tuple, list)) else (int(item), 0)
        rng = random.Random(seed)
        record = self.records[index]
        seed = rng.getrandbits(62)
        out = {"images": self.images.transformed(self.root, record.image, self.transform, seed, f"{self.source} record {index}")}  # (3, S, S)
        if self.train:
            text = self.options.prompt + pre_caption(record.caption, CAPTION_WORDS)
            ids, atts = common.tokenize_fixed(self.tokenizer, text, self.max_tokens)
            targets = atts[0].clone()
            targets[: self.prompt_len] = 0  # the start token and the prompt are not predicted
            out.update(text_ids=ids[0], text_atts=atts[0], target_mask=targets)
        else:
            out["image_id"] = record.image_id
        return out


def collate_captioning(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``images`` (B, 3, S, S); training: ``text_ids``/``text_atts``/``target_mask`` (B, L); eval: ``image_id``."""
    batch: dict[str, Any] = {"images": torch.stack([it["images"] for it in items])}
    if "text_ids" in items[0]:
        ids, atts = trim_padding(torch.stack([it["text_ids"] for it in items]), torch.stack([it["text_atts"] for it in items]))
        batch.update(text_ids=ids, text_atts=atts, target_mask=torch.stack([it["target_mask"] for it in items])[:, : ids.shape[1]])
    else:
        batch["image_id"] = [it["image_id"] for it in items]
    return batch


class CaptioningTask(Task):
    name = "captioning"
    splits = ("train", "val", "test")
    selection_metric = "cider"
    new_param_prefixes = ()  # the decoder is initialised from the fusion/text encoders (its fresh_keys: lr_mult)
    options_class = CaptioningOptions

    def options(self, params: TaskParams, where: str = "") -> CaptioningOptions:
        opts = super().options(params, where)
        if opts.beam_size < 1 or opts.max_len < 1 or not 0 <= opts.min_len <= opts.max_len or not 0.0 <= opts.label_smoothing < 1.0:
            raise ValueError(f"{where or 'finetune_captioning'}.options: need beam_size >= 1, 0 <= min_len <= max_len, 0 <= label_smoothing < 1; got {opts}")
        return opts

    def build_model(self, xfm: nn.Module, params: TaskParams, data: dict[str, Any]) -> CaptioningModel:
        from xfm_pipeline.config import to_dict

        return CaptioningModel(xfm, self.name, to_dict(self.options(params)))

    def dataset(self, split: str, data: dict[str, Any], tokenizer, params: TaskParams, image_root: str, train: bool) -> CaptioningDataset:
        from xfm_pipeline.data.formats.captioning import parse_caption_eval, parse_caption_train

        source = f"captioning/{split}"
        records = parse_caption_train(data[split], source) if train else parse_caption_eval(data[split], source)
        if not train:  # one generation per image (Karpathy val/test list each image once; be safe)
            records = list({r.image_id: r for r in records}.values())
        return CaptioningDataset(records, tokenizer, params, self.options(params), image_root, train, source)

    def collate(self, split: str, train: bool):
        return collate_captioning

    def loss(self, model: CaptioningModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        from xfm_pipeline.model.decoder import sequence_nll

        context, context_atts = model.image_context(batch["images"])
        opts = CaptioningOptions(**model.options)
        nll = sequence_nll(model.decoder, batch["text_ids"], batch["text_atts"], context, context_atts, batch["target_mask"], opts.label_smoothing)
        loss = nll.sum() / batch["target_mask"][:, 1:].sum().clamp(min=1)
        return {"loss": loss, "loss_caption": loss.detach()}

    @torch.no_grad()
    def predict(self, model: CaptioningModel, loader, params: TaskParams, noise_seed: int | None = None) -> list[dict[str, Any]]:
        """Beam-search a caption per image; ``noise_seed`` replaces each image by N(0, 1) noise (blind check)."""
        from xfm_pipeline.model.decoder import BeamConfig, beam_search
        from xfm_pipeline.training.distributed_eval import full_dataset

        opts = self.options(params)
        tokenizer = full_dataset(loader.dataset).tokenizer  # loader: the split or a shard of it
        prompt = tokenizer(opts.prompt.strip(), return_tensors="pt")["input_ids"][0][:-1]  # [CLS] prompt (no [SEP])
        beam = BeamConfig(beam_size=opts.beam_size, max_len=opts.max_len, min_len=opts.min_len)
        eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        device = common.model_device(model)
        generator = torch.Generator().manual_seed(noise_seed) if noise_seed is not None else None
        was_training = model.training
        model.eval()
        out = []
        for batch in loader:
            images = batch["images"] if generator is None else torch.randn(batch["images"].shape, generator=generator)
            context, context_atts = model.image_context(images.to(device))
            generated = beam_search(model.decoder, prompt, context, context_atts, eos, pad, beam)
            for image_id, ids in zip(batch["image_id"], generated, strict=True):
                out.append({"image_id": image_id, "caption": tokenizer.decode(ids, skip_special_tokens=True).strip()})
        model.train(was_training)
        return out

    def evaluate(self, predictions: list[dict[str, Any]], split: str, data: dict[str, Any]) -> dict[str, float]:
        from xfm_pipeline.data.formats.captioning import parse_coco_caption_gt
        from xfm_pipeline.metrics.captioning import caption_metrics

        refs = parse_coco_caption_gt(data[f"{split}_gt"], f"captioning/{split}_gt").refs
        preds = {p["image_id"]: p["caption"] or "." for p in predictions}  # an empty caption still gets scored
        missing = sorted(set(preds) - set(refs))
        if missing:
            raise ValueError(f"captioning/{split}: {len(missing)} predicted image ids have no references, e.g. {missing[0]}")
        scores = caption_metrics(preds, {i: refs[i] for i in preds})
        scores["bleu4"] = scores.pop("bleu_4")
        return {k: round(100.0 * v, 2) for k, v in sorted(scores.items())}


TASK = CaptioningTask()

SPEC = TaskSpec(
    TASK,
    pipelines=(
        TaskPipeline(
            "finetune_captioning",
            data={key: f"captioning_{key}_json_validated" for key in ("train", "val", "test", "val_gt", "test_gt")},
        ),
    ),
    examples=Examples("captioning_examples", ("val", "test", "val_gt", "test_gt")),
)
