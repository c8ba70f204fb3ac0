"""VQA v2 as answer generation/ranking with a causal decoder (docs/xfm.md#vqa).

* Data: ``data["train"|"val"|"test"]`` = VQA records (``xfm_pipeline.data.formats.vqa``), ``data["answer_list"]``
  = candidate answers. Questions are ``pre_question``-normalised (30 words in training, 50 at test).
* Model: question -> text encoder -> fusion(image) -> question states (B, Lq, D); the answer decoder
  (:class:`~xfm_pipeline.model.decoder.CausalDecoder`) cross-attends to them. Its layers and LM head are
  copied from the fusion encoder; its embeddings from the TEXT encoder
  (docs/xfm.md#fix-vqa-decoder-and-ranking). When the question width differs from the fusion
  cross-attention input width (the tiny preset: 384 vs 192 image width), the decoder's cross-attention
  key/value projections start fresh.
* Training: every unique answer of a question is tokenised ``[CLS] answer [SEP]`` and teacher-forced;
  per-answer loss = SUM of token NLL, weighted by count/len (VQA) or 0.5 (VG); loss = sum(w * nll) / B.
* Inference ranks ``answer_list``: top ``k_test`` by first-token probability, then full-sequence
  log-likelihood with the first token counted once and the real question padding mask (the same fixes).
  The task model's options hold the answer list (``options.answer_list``, taken from ``data["answer_list"]``
  when the model is built), so a task checkpoint answers without the data (``xfm_pipeline.predict``).
* Output: ``[{"question_id", "answer"}]`` (EvalAI format). Metrics (official VQA accuracy x100):
  ``vqa_acc`` overall, ``vqa_acc_<answer type>`` and ``vqa_acc_<question type>`` when the records carry
  them; splits without answers (test-dev/std) give no metrics.
* :func:`noise_image_accuracy` scores the same model with images replaced by Gaussian noise: the
  blind-baseline check (it must fall to roughly the text-only prior when the model uses the image).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xfm_pipeline.data.formats.vqa import answer_weights
from xfm_pipeline.data.text import pre_question, trim_padding
from xfm_pipeline.tasks import common
from xfm_pipeline.tasks.base import Task, TaskModel, TaskParams
from xfm_pipeline.tasks.spec import Examples, PaperResult, TaskPipeline, TaskSpec

TRAIN_QUESTION_WORDS = 30  # pre_question max words in training (X-FM)
TEST_QUESTION_WORDS = 50  # ... and at test time


@dataclass
class VQAOptions:
    """Task-specific options (``params.options``)."""

    k_test: int = 128  # candidates re-ranked by full likelihood (capped at the answer-list size)
    augment: bool = True  # X-FM's train_transform_wohflip (RandomResizedCrop + RandAugment); False = eval resize
    max_answer_tokens: int = 10  # answer length incl. [CLS]/[SEP]
    answer_list: list[str] | None = None  # candidate answers; None = data["answer_list"] (a checkpoint stores its list)


class VQAModel(TaskModel):
    """X-FM backbone + answer decoder over the fused question states."""

    def __init__(self, xfm: nn.Module, task: str, options: dict[str, Any]):
        super().__init__(xfm, task, options)
        from xfm_pipeline.model.decoder import CausalDecoder

        self.decoder = CausalDecoder.from_xfm(xfm, context_width=xfm.text_encoder.config.hidden_size)

    def question_states(
        self, images: torch.Tensor, question_ids: torch.Tensor, question_atts: torch.Tensor, image_keys: list[str] | None = None, cache_text: bool = False
    ) -> torch.Tensor:
        """(B, 3, S, S), (B, Lq) -> (B, Lq, D) fused question states. A frozen encoder's outputs are cached
        per image key / question (``model.encoder_cache``) when ``image_keys`` / ``cache_text`` are given."""
        image_embeds = self.encodings.images(self.xfm, images, image_keys)  # (B, 1+N, Dv)
        text = self.encodings.texts(self.xfm, question_ids, question_atts, use_cache=cache_text)  # (B, Lq, D)
        return self.xfm.fuse(text, question_atts, image_embeds)


class VQADataset(torch.utils.data.Dataset):
    """VQA samples; training items are ``(index, sample_seed)``, evaluation items plain indices."""

    def __init__(self, records, tokenizer, params: TaskParams, options: VQAOptions, image_root: str, train: bool, answer_list: list[str] | None, source: str):
        from xfm_pipeline.data.transforms import eval_transform, train_transform

        self.records, self.tokenizer, self.root, self.train, self.source = records, tokenizer, image_root, train, source
        self.max_tokens, self.max_answer_tokens = params.max_tokens, options.max_answer_tokens
        size = common.image_size(params)
        self.augment = train and options.augment
        self.transform = train_transform(size, hflip=False) if self.augment else eval_transform(size)
        self.images = common.ImageMemo(0 if self.augment else params.image_memo_mb)
        self.answer_list = answer_list
        words = TRAIN_QUESTION_WORDS if train else TEST_QUESTION_WORDS
        questions = [pre_question(r.question, words) for r in records]  # tokenised once (per item: ~2 ms a question)
        self.question_ids, self.question_atts = common.tokenize_fixed(tokenizer, questions, self.max_tokens) if questions else (None, None)  # (n, L) each
        self.answer_tokens: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # answer -> (A,) ids and mask
        if train and records:
            answers = sorted({a for r in records for a in answer_weights(r)[0]})
            ids, atts = common.tokenize_fixed(tokenizer, answers, self.max_answer_tokens)  # (n_answers, A)
            self.answer_tokens = {a: (i, m) for a, i, m in zip(answers, ids, atts, strict=True)}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item) -> dict[str, Any]:

        index, seed = item if isinstance(item, (tuple, list)) else (int(item), 0)
        rng = random.Random(seed)
        record = self.records[index]
        seed = rng.getrandbits(62)
        images = self.images.transformed(self.root, record.image, self.transform, seed, f"{self.source} record {index}")  # (3, S, S)
        out = {"images": images, "question_ids": self.question_ids[index], "question_atts": self.question_atts[index]}
        if self.train:
            if not self.augment:  # the image tensor is a function of the path: a frozen encoder's output may be cached
                out["image_key"] = record.image
            answers, weights = answer_weights(record)
            a_ids = torch.stack([self.answer_tokens[a][0] for a in answers])  # (n_a, A)
            a_atts = torch.stack([self.answer_tokens[a][1] for a in answers])
            out.update(answer_ids=a_ids, answer_atts=a_atts, weights=torch.tensor(weights, dtype=torch.float32))
        else:
            out["question_id"] = record.question_id if record.question_id is not None else index
        return out


def collate_vqa(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images/questions (padding trimmed); training batches flatten the answers of every question:
    ``answer_ids``/``answer_atts`` (N, La), ``weights`` (N,), ``n`` (B,) answers per question, and carry
    ``image_keys`` (B,) when the images are not augmented."""
    q_ids, q_atts = trim_padding(torch.stack([it["question_ids"] for it in items]), torch.stack([it["question_atts"] for it in items]))
    batch: dict[str, Any] = {"images": torch.stack([it["images"] for it in items]), "question_ids": q_ids, "question_atts": q_atts}
    if "answer_ids" in items[0]:
        a_ids, a_atts = trim_padding(torch.cat([it["answer_ids"] for it in items]), torch.cat([it["answer_atts"] for it in items]))
        batch.update(
            answer_ids=a_ids, answer_atts=a_atts,
            weights=torch.cat([it["weights"] for it in items]),
            n=torch.tensor([len(it["weights"]) for it in items], dtype=torch.long),
        )  # fmt: skip
        if "image_key" in items[0]:
            batch["image_keys"] = [it["image_key"] for it in items]
    else:
        batch["question_id"] = [it["question_id"] for it in items]
    return batch


class VQATask(Task):
    name = "vqa"
    splits = ("train", "val", "test")
    selection_metric = "vqa_acc"
    new_param_prefixes = ()  # the decoder is initialised from the fusion/text encoders (its fresh_keys: lr_mult)
    options_class = VQAOptions

    def options(self, params: TaskParams, where: str = "") -> VQAOptions:
        opts = super().options(params, where)
        if opts.k_test < 1 or opts.max_answer_tokens < 3:
            raise ValueError(f"{where or 'finetune_vqa'}.options: k_test must be >= 1 and max_answer_tokens >= 3, got {opts}")
        return opts

    def build_model(self, xfm: nn.Module, params: TaskParams, data: dict[str, Any]) -> VQAModel:
        from xfm_pipeline.config import to_dict

        options = self.options(params)
        if "answer_list" in data:  # kept in the model's options, hence in its checkpoint
            options.answer_list = self.answer_list(params, data)
        return VQAModel(xfm, self.name, to_dict(options))

    def answer_list(self, params: TaskParams, data: dict[str, Any]) -> list[str]:
        """The candidate answers: ``data["answer_list"]``, else the ``answer_list`` option (a checkpoint's).

        Raises:
            KeyError: neither is there.
        """
        from xfm_pipeline.data.formats.vqa import parse_answer_list

        if "answer_list" in data:
            return parse_answer_list(data["answer_list"], "vqa/answer_list")
        stored = self.options(params).answer_list
        if not stored:
            raise KeyError("vqa: no answer list: data['answer_list'] is missing and options.answer_list is empty")
        return list(stored)

    def dataset(self, split: str, data: dict[str, Any], tokenizer, params: TaskParams, image_root: str, train: bool) -> VQADataset:
        from xfm_pipeline.data.formats.vqa import parse_vqa

        records = parse_vqa(data[split], f"vqa/{split}", require_answers=train)
        answer_list = None if train else self.answer_list(params, data)
        return VQADataset(records, tokenizer, params, self.options(params), image_root, train, answer_list, f"vqa/{split}")

    def collate(self, split: str, train: bool):
        return collate_vqa

    def loss(self, model: VQAModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        from xfm_pipeline.model.decoder import sequence_nll

        states = model.question_states(batch["images"], batch["question_ids"], batch["question_atts"], batch.get("image_keys"), cache_text=True)  # (B, Lq, D)
        n = batch["n"]
        context = states.repeat_interleave(n, 0)  # (N, Lq, D)
        context_atts = batch["question_atts"].repeat_interleave(n, 0)
        nll = sequence_nll(model.decoder, batch["answer_ids"], batch["answer_atts"], context, context_atts)  # (N,)
        loss = (batch["weights"] * nll).sum() / states.shape[0]
        return {"loss": loss, "loss_vqa": loss.detach()}

    @torch.no_grad()
    def answers(self, model: VQAModel, loader, params: TaskParams, noise_seed: int | None = None, top_k: int = 0) -> list[dict[str, Any]]:
        """Rank the answer list for every question; ``noise_seed`` replaces each image by N(0, 1) noise.
        ``top_k`` > 0 adds the ``top_k`` best ``answers`` (of the ``k_test`` ranked) and their ``scores``
        (log-likelihoods), best first."""
        from xfm_pipeline.model.decoder import score_answers
        from xfm_pipeline.training.distributed_eval import full_dataset

        opts = self.options(params)
        dataset = full_dataset(loader.dataset)  # the answer list and tokenizer (loader: the split or a shard of it)
        device = common.model_device(model)
        answer_list = dataset.answer_list
        a_ids, a_atts = common.tokenize_fixed(dataset.tokenizer, answer_list, opts.max_answer_tokens)
        a_ids, a_atts = trim_padding(a_ids, a_atts)
        a_ids, a_atts = a_ids.to(device), a_atts.to(device)
        generator = torch.Generator().manual_seed(noise_seed) if noise_seed is not None else None
        was_training = model.training
        model.eval()
        out = []
        for batch in loader:
            images = batch["images"]
            if generator is not None:
                images = torch.randn(images.shape, generator=generator)
            batch = common.to_device(batch, device)
            states = model.question_states(images.to(device), batch["question_ids"], batch["question_atts"])
            top, scores = score_answers(model.decoder, states, batch["question_atts"], a_ids, a_atts, opts.k_test)  # (B, k) each
            best = top.gather(1, scores.argmax(1, keepdim=True)).squeeze(1)  # (B,) as rank_answers
            rows = [{"question_id": qid, "answer": answer_list[i]} for qid, i in zip(batch["question_id"], best.tolist(), strict=True)]
            if top_k > 0:
                order = scores.argsort(dim=1, descending=True, stable=True)[:, :top_k]  # (B, top_k); ties keep argmax's pick first
                for row, ids, values in zip(rows, top.gather(1, order).tolist(), scores.gather(1, order).tolist(), strict=True):
                    row.update(answers=[answer_list[i] for i in ids], scores=values)
            out += rows
        model.train(was_training)
        return out

    def predict(self, model: VQAModel, loader, params: TaskParams) -> list[dict[str, Any]]:
        return self.answers(model, loader, params)

    def evaluate(self, predictions: list[dict[str, Any]], split: str, data: dict[str, Any]) -> dict[str, float]:
        from xfm_pipeline.data.formats.vqa import parse_vqa
        from xfm_pipeline.metrics.vqa import vqa_question_accuracy

        records = parse_vqa(data[split], f"vqa/{split}")
        by_id = {(r.question_id if r.question_id is not None else i): r for i, r in enumerate(records)}
        if not any(r.answer for r in records):
            return {}  # test-dev/std: submit the predictions to EvalAI
        groups: dict[str, list[float]] = defaultdict(list)
        for p in predictions:
            record = by_id[p["question_id"]]
            if not record.answer:
                continue
            acc = vqa_question_accuracy(p["answer"], record.answer)
            groups["vqa_acc"].append(acc)
            for kind in (record.answer_type, record.question_type):
                if kind:
                    groups["vqa_acc_" + kind.replace("/", "_").replace(" ", "_")].append(acc)
        if not groups:
            raise ValueError(f"vqa/{split}: no prediction matches a question with answers")
        return {k: round(100.0 * sum(v) / len(v), 2) for k, v in sorted(groups.items())}


def noise_image_accuracy(task: VQATask, model: VQAModel, loader, params: TaskParams, split: str, data: dict[str, Any], seed: int = 0) -> dict[str, float]:
    """VQA metrics of ``model`` when every image is replaced by Gaussian noise (blind-baseline check)."""
    return task.evaluate(task.answers(model, loader, params, noise_seed=seed), split, data)


TASK = VQATask()

SPEC = TaskSpec(
    TASK,
    pipelines=(
        TaskPipeline(
            "finetune_vqa",
            data={split: f"vqa_{split}_json_validated" for split in ("train", "val", "test", "answer_list")},
            paper={"test/vqa_acc": PaperResult(79.1, 80.5, "VQAv2 test-dev")},
        ),
    ),
    examples=Examples("vqa_examples", ("val", "test")),
)
