"""GLUE fine-tuning (docs/xfm.md#glue): the text encoder alone + ``build_mlp(D, num_labels)`` on token 0.

One :class:`GlueTask` parameterised by the GLUE task; ``TASKS`` holds the eight (registered as
``glue_<key>``).

* Data: ``data["glue"] = {"CoLA/train": tsv text, "CoLA/dev": ..., "MNLI/dev_matched": ...}``, the
  validated GLUE release files, parsed with :func:`xfm_pipeline.data.formats.glue.parse_glue_tsv`.
* Splits: ``train`` -> ``train``; ``val`` -> ``dev`` (``dev_matched`` for MNLI), used for model selection
  AND reported as the evaluation, as in the paper (GLUE test labels are hidden: the release's test files
  have no label column, so there is no ``test`` split); MNLI adds ``val_mismatched`` -> ``dev_mismatched``,
  evaluated once with the selected model.
* Inputs: single-sentence tasks encode ``text_a``; pair tasks encode ``(text_a, text_b)`` as a tokenizer
  pair (``[CLS] a [SEP] b [SEP]`` / ``<s> a </s></s> b </s>``), truncated longest-first to ``max_tokens``,
  padded to the longest of the batch. Token-type ids are not passed (RoBERTa, the paper's encoder, has a
  single token type; the BERT-vocabulary tiny preset then uses type 0 throughout).
* Head: ``build_mlp(D, num_labels)`` on the first token; loss cross-entropy, or MSE on one output for
  STS-B (regression). Metrics from :mod:`xfm_pipeline.metrics.glue` (MCC CoLA, accuracy/F1 MRPC/QQP,
  Pearson/Spearman STS-B, accuracy otherwise); the selection metric is the task's headline metric
  (``GLUE_MAIN_METRIC``).
* Only text is read: the datasets never touch images. The vision encoder, fusion encoder, projections,
  ITM/box heads and the MLM head's transform are frozen (``requires_grad=False``), so the optimizer and DDP
  only see the text encoder and the head (the official code optimises them for nothing:
  docs/xfm.md#fix-glue-trains-the-text-encoder-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xfm_pipeline.tasks.base import Task, TaskModel
from xfm_pipeline.tasks.common import model_device
from xfm_pipeline.tasks.spec import PaperResult, TaskPipeline, TaskSpec

# registry key -> (GLUE release directory name, metrics.glue task name)
GLUE_KEYS: dict[str, str] = {
    "cola": "CoLA",
    "sst2": "SST-2",
    "mrpc": "MRPC",
    "qqp": "QQP",
    "stsb": "STS-B",
    "mnli": "MNLI",
    "qnli": "QNLI",
    "rte": "RTE",
}


@dataclass
class GlueOptions:
    """Task-specific options of the GLUE tasks (``params.options``); none today, unknown keys are rejected."""


class GlueModel(TaskModel):
    """X-FM text encoder + classification/regression head on the first token."""

    def __init__(self, xfm: nn.Module, task: str, options: dict[str, Any], num_labels: int):
        super().__init__(xfm, task, options)
        from xfm_pipeline.model.heads import build_mlp, init_weights

        width = xfm.text_encoder.config.hidden_size
        self.head = build_mlp(width, num_labels)  # D -> 2D -> LN -> GELU -> num_labels
        init_weights(self.head)
        for p in xfm.parameters():  # only the text encoder (and the head) is trained
            p.requires_grad_(False)
        for p in xfm.text_encoder.base_model.parameters():
            p.requires_grad_(True)

    def forward(self, text_ids: torch.Tensor, text_atts: torch.Tensor) -> torch.Tensor:
        """(B, L) ids and mask -> (B, num_labels) logits (STS-B: (B, 1) scores)."""
        hidden = self.xfm.encode_text(text_ids, text_atts)  # (B, L, D)
        return self.head(hidden[:, 0])  # (B, C)


class GlueDataset(torch.utils.data.Dataset):
    """Tokenised GLUE examples; training items are ``(index, sample_seed)`` (no randomness is drawn)."""

    def __init__(self, examples, tokenizer, max_tokens: int, regression: bool):
        self.examples = examples
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.regression = regression
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, item) -> dict[str, Any]:
        index = item[0] if isinstance(item, (tuple, list)) else int(item)
        ex = self.examples[index]
        enc = self.tokenizer(ex.text_a, ex.text_b, truncation=True, max_length=self.max_tokens, return_token_type_ids=False)
        label = ex.label if ex.label is not None else (float("nan") if self.regression else -100)
        return {"input_ids": enc["input_ids"], "label": label, "guid": ex.guid, "pad_id": self.pad_id}


def collate_glue(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad token ids to the longest item: ``text_ids``/``text_atts`` (B, L), ``labels`` (B,), ``guids``."""
    length = max(len(it["input_ids"]) for it in items)
    pad = items[0]["pad_id"]
    ids = torch.full((len(items), length), pad, dtype=torch.long)
    atts = torch.zeros((len(items), length), dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        ids[i, :n] = torch.tensor(it["input_ids"], dtype=torch.long)
        atts[i, :n] = 1
    labels = [it["label"] for it in items]
    dtype = torch.float32 if isinstance(labels[0], float) else torch.long
    return {"text_ids": ids, "text_atts": atts, "labels": torch.tensor(labels, dtype=dtype), "guids": [it["guid"] for it in items]}


class GlueTask(Task):
    """One GLUE task (``key`` in :data:`GLUE_KEYS`)."""

    new_param_prefixes = ("head.",)
    options_class = GlueOptions

    def __init__(self, key: str):
        from xfm_pipeline.data.formats.glue import glue_task
        from xfm_pipeline.metrics.glue import GLUE_MAIN_METRIC

        if key not in GLUE_KEYS:
            raise ValueError(f"unknown GLUE task {key!r}; expected one of {sorted(GLUE_KEYS)}")
        self.key = key
        self.name = f"glue_{key}"
        self.spec = glue_task(GLUE_KEYS[key])
        self.selection_metric = GLUE_MAIN_METRIC[key]
        # split -> GLUE release file (dev is the reported evaluation; test labels are hidden)
        self.files = {"train": "train", "val": "dev"} if key != "mnli" else {"train": "train", "val": "dev_matched", "val_mismatched": "dev_mismatched"}
        self.splits = tuple(self.files)

    def __repr__(self) -> str:
        return f"GlueTask({self.key!r})"

    # ------------------------------------------------------------------ data
    def examples(self, split: str, data: dict[str, Any]):
        """The parsed examples of ``split`` (``GlueExample`` list)."""
        from xfm_pipeline.data.formats.glue import parse_glue_tsv

        if split not in self.files:
            raise ValueError(f"{self.name} has splits {self.splits}, got {split!r}")
        glue = data.get("glue")
        if not isinstance(glue, dict):
            raise KeyError(f"{self.name}: data has no 'glue' mapping of TSV texts (keys: {sorted(data)})")
        key = f"{self.spec.name}/{self.files[split]}"
        if key not in glue:
            raise KeyError(f"{self.name}: GLUE file {key!r} missing; have {sorted(k for k in glue if k.startswith(self.spec.name + '/'))}")
        text = glue[key]
        text = text() if callable(text) else text
        examples = parse_glue_tsv(text, self.spec.name, self.files[split], f"glue/{key}.tsv")
        if any(ex.label is None for ex in examples):
            raise ValueError(f"{self.name}: {key} has no labels")
        return examples

    def dataset(self, split, data, tokenizer, params, image_root, train):
        self.options(params)
        return GlueDataset(self.examples(split, data), tokenizer, params.max_tokens, self.spec.is_regression)

    def collate(self, split, train):
        return collate_glue

    # ------------------------------------------------------------------ model
    def build_model(self, xfm, params, data):
        options = self.options(params)
        return GlueModel(xfm, self.name, vars(options), self.spec.num_labels)

    def loss(self, model, batch):
        logits = model(batch["text_ids"], batch["text_atts"])  # (B, C)
        if self.spec.is_regression:
            loss = F.mse_loss(logits.squeeze(-1).float(), batch["labels"].float())
        else:
            loss = F.cross_entropy(logits.float(), batch["labels"])
        return {"loss": loss}

    @torch.no_grad()
    def predict(self, model, loader, params):
        device = model_device(model)
        was_training = model.training
        model.eval()
        out = []
        for batch in loader:
            logits = model(batch["text_ids"].to(device), batch["text_atts"].to(device)).float().cpu()
            if self.spec.is_regression:
                preds = logits[:, 0].tolist()
            else:
                preds = logits.argmax(dim=-1).tolist()
            out += [{"guid": g, "prediction": p} for g, p in zip(batch["guids"], preds)]
        model.train(was_training)
        return out

    def evaluate(self, predictions, split, data):
        from xfm_pipeline.metrics.glue import glue_metrics

        references = {ex.guid: ex.label for ex in self.examples(split, data)}
        by_guid = {p["guid"]: p["prediction"] for p in predictions}
        missing = set(references) - set(by_guid)
        if missing or len(by_guid) != len(references):
            raise ValueError(f"{self.name} {split}: {len(predictions)} predictions for {len(references)} examples ({len(missing)} missing)")
        guids = list(references)
        metric_task = "mnli_mismatched" if split == "val_mismatched" else self.key
        return glue_metrics(metric_task, [by_guid[g] for g in guids], [references[g] for g in guids])


TASKS: dict[str, Task] = {key: GlueTask(key) for key in GLUE_KEYS}

# GLUE dev-set numbers of X-FM base (4M, 1.3B) by task key
_PAPER = {
    "mnli": PaperResult(87.7, 87.7, "MNLI-m acc"),
    "cola": PaperResult(65.3, 65.7, "CoLA MCC"),
    "mrpc": PaperResult(91.7, 91.2, "MRPC avg(acc, F1)"),
    "qqp": PaperResult(91.8, 91.7, "QQP acc"),
    "sst2": PaperResult(95.0, 94.6, "SST-2 acc"),
    "qnli": PaperResult(92.9, 92.8, "QNLI acc"),
    "rte": PaperResult(83.8, 82.7, "RTE acc"),
    "stsb": PaperResult(90.8, 90.7, "STS-B Pearson"),
}

SPECS: tuple[TaskSpec, ...] = tuple(
    TaskSpec(
        task,
        pipelines=(
            TaskPipeline(
                f"finetune_{task.name}",
                data={"glue": "glue_validated"},
                param_groups=("finetune_glue",),
                paper={f"val/{task.selection_metric}": _PAPER[key]},
            ),
        ),
        fraction=True,
    )
    for key, task in TASKS.items()
)
