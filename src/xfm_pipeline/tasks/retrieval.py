"""Image-text retrieval, COCO / Flickr30k Karpathy style (docs/xfm.md#retrieval).

Training (one record per caption, ``{image, caption, image_id}``): ITC with soft targets over the images
of the batch (captions of the same image are positives of each other, ``idx`` = dense image index) plus
ITM with one hard negative text per image and one hard negative image per text, drawn from the local
similarities, never a caption of the same image (``objectives.itc_loss`` / ``itm_loss``). No new
parameters (X-FM's ``init_params=[]``). The fusion sees the text states WITHOUT the pretraining
stop-gradient, as X-FM's retrieval fine-tuning does.

Evaluation (one record per image, ``{image, caption: [...]}``):

1. every text and every image is encoded once; ``S = image_feats @ text_feats.T`` (cosine);
2. image -> text: for each image the top ``k_test`` texts by ``S`` are re-scored by the ITM positive
   logit of the fusion encoder, in batched fusion calls of ``rerank_batch`` pairs; text -> image: the
   top ``k_test`` images of each text, the same way;
3. the score of a re-ranked pair is ``itm`` (the official ranking) or, by default, ``itm+itc`` = ITM
   logit + ITC logit (cosine / temperature). The official code ranks with the ITM logit alone although
   fusing both usually helps (docs/xfm.md#fix-retrieval-selection-and-score); ``score: itm``
   reproduces the official numbers;
4. pairs outside the top ``k_test`` rank below every re-ranked pair, ordered by their ITC score (the
   official code gives them all -100, i.e. an arbitrary order among ties). R@K for K <= k_test is the
   same either way.

Predictions: one record per query with its 10 best candidates and their scores (best first):
``{"query": "image", "index": i, "image": path, "top": [text indices], "scores": [...]}`` and
``{"query": "text", "index": t, "text": caption, "top": [image indices], "scores": [...]}``; text
indices follow the order of the captions in the split's records. ``evaluate`` computes R@1/5/10 from
them (``metrics.retrieval``): ``txt_r1/5/10``, ``img_r1/5/10``, ``txt_r_mean``, ``img_r_mean``,
``r_mean`` (selection metric, on val; X-FM selected on test).

Zero-shot evaluation (``eval_retrieval_zeroshot``) runs with ``loop.max_steps: 0`` and only ``val``/``test``
data: the job never builds the train dataset then, and evaluates ``val`` and ``test``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xfm_pipeline.data.text import trim_padding
from xfm_pipeline.tasks.base import Task, TaskModel, TaskParams
from xfm_pipeline.tasks.common import (
    ImageMemo,
    image_size,
    mentions_left_right,
    model_device,
    to_device,
    tokenize_fixed,
)
from xfm_pipeline.tasks.spec import Examples, PaperResult, TaskPipeline, TaskSpec
from xfm_pipeline.training.distributed_eval import Ranks, full_dataset

TOP_SAVED = 10  # candidates saved per query in the predictions (enough for R@10)
SCORES = ("itm", "itm+itc")
_BELOW_CANDIDATES = 1e6  # offset that ranks pairs outside the top k_test below every re-ranked pair


@dataclass
class RetrievalOptions:
    """Task-specific settings of ``finetune_retrieval_*`` / ``eval_retrieval_zeroshot`` (``options``)."""

    k_test: int = 128  # candidates per query re-ranked by the ITM head (capped at the number of candidates; X-FM: 256)
    score: str = "itm+itc"  # re-ranked pair score: "itm" (official) or "itm+itc" (ITM logit + ITC logit)
    rerank_batch: int = 256  # image-text pairs per batched fusion call when re-ranking
    max_words: int = 30  # pre_caption truncation (words)
    augment: bool = True  # X-FM fine-tuning augmentation (crop, careful hflip, RandAugment); False = plain resize

    def __post_init__(self):
        if self.score not in SCORES:
            raise ValueError(f"finetune_retrieval.options.score must be one of {SCORES}, got {self.score!r}")
        for name in ("k_test", "rerank_batch", "max_words"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"finetune_retrieval.options.{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.augment, bool):
            raise ValueError(f"finetune_retrieval.options.augment must be a bool, got {self.augment!r}")


# ------------------------------------------------------------------------------------------ datasets
class RetrievalTrainDataset(torch.utils.data.Dataset):
    """(image, caption) pairs; items are ``(index, sample_seed)``; ``image_idx`` = dense index of ``image_id``."""

    def __init__(self, records, image_root, tokenizer, params: TaskParams, options: RetrievalOptions):
        from xfm_pipeline.data.transforms import eval_transform, train_transform

        self.records, self.root, self.tokenizer = records, image_root, tokenizer
        self.max_tokens, self.max_words = params.max_tokens, options.max_words
        size = image_size(params)
        if options.augment:
            self.flip, self.no_flip = train_transform(size, hflip=True), train_transform(size, hflip=False)
        else:
            self.flip = self.no_flip = eval_transform(size)
        self.images = ImageMemo(0 if options.augment else params.image_memo_mb)
        dense: dict[Any, int] = {}
        self.image_idx = [dense.setdefault(r.image_id, len(dense)) for r in records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        from xfm_pipeline.data.text import pre_caption

        index, seed = item
        rng = random.Random(seed)
        record = self.records[index]
        caption = pre_caption(record.caption, self.max_words)
        transform = self.no_flip if mentions_left_right(caption) else self.flip
        ids, atts = tokenize_fixed(self.tokenizer, caption, self.max_tokens)
        seed = rng.getrandbits(62)
        image = self.images.transformed(self.root, record.image, transform, seed, f"retrieval train record {index}")
        return {
            "images": image,  # (3, S, S)
            "text_ids": ids[0],  # (L,)
            "text_atts": atts[0],  # (L,)
            "image_idx": self.image_idx[index],
        }


class RetrievalEvalDataset(torch.utils.data.Dataset):
    """The images of an evaluation split (items); all captions are tokenised once as attributes."""

    def __init__(self, records, image_root, tokenizer, params: TaskParams, options: RetrievalOptions):
        from xfm_pipeline.data.text import pre_caption
        from xfm_pipeline.data.transforms import eval_transform

        self.records, self.root = records, image_root
        self.transform = eval_transform(image_size(params))
        self.images = ImageMemo(params.image_memo_mb)
        self.texts, self.txt2img, self.img2txt = [], [], []
        for i, record in enumerate(records):
            self.img2txt.append(list(range(len(self.texts), len(self.texts) + len(record.caption))))
            for caption in record.caption:
                self.texts.append(pre_caption(caption, options.max_words))
                self.txt2img.append(i)
        self.text_ids, self.text_atts = tokenize_fixed(tokenizer, self.texts, params.max_tokens)  # (Nt, L) each

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from xfm_pipeline.data.images import load_image

        path = self.records[index].image
        return {"images": self.images.get(path, lambda: self.transform(load_image(self.root, path, f"retrieval eval record {index}"))), "index": index}


def _collate_train(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    ids, atts = trim_padding(torch.stack([x["text_ids"] for x in items]), torch.stack([x["text_atts"] for x in items]))
    return {
        "images": torch.stack([x["images"] for x in items]),  # (B, 3, S, S)
        "text_ids": ids,  # (B, L)
        "text_atts": atts,  # (B, L)
        "image_idx": torch.tensor([x["image_idx"] for x in items], dtype=torch.long),  # (B,)
    }


def _collate_eval(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {"images": torch.stack([x["images"] for x in items]), "index": torch.tensor([x["index"] for x in items])}


# ------------------------------------------------------------------------------------------ scoring
def encode_images(xfm: nn.Module, loader, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of an evaluation loader -> tokens (Ni, 1+N, Dv) and ITC features (Ni, E)."""
    image_embeds, image_feats = [], []
    for batch in loader:
        embeds = xfm.encode_image(to_device(batch, device)["images"])  # (b, 1+N, Dv)
        image_embeds.append(embeds)
        image_feats.append(xfm.image_features(embeds))
    return torch.cat(image_embeds), torch.cat(image_feats)


def encode_texts(xfm: nn.Module, text_ids: torch.Tensor, text_atts: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(Nt, L) padded texts -> states (Nt, L, Dt) and ITC features (Nt, E), ``batch_size`` texts per call;
    padding beyond a batch's longest text is skipped and its states come back as zeros."""
    text_embeds, text_feats = [], []
    for start in range(0, len(text_ids), batch_size):
        ids, atts = trim_padding(text_ids[start : start + batch_size], text_atts[start : start + batch_size])
        embeds = xfm.encode_text(ids, atts)  # (b, l, Dt), l <= L
        embeds = torch.nn.functional.pad(embeds, (0, 0, 0, text_ids.shape[1] - embeds.shape[1]))  # (b, L, Dt)
        text_embeds.append(embeds)
        text_feats.append(xfm.text_features(embeds))
    return torch.cat(text_embeds), torch.cat(text_feats)


def ranked_scores(
    xfm: nn.Module,
    itc_rows: torch.Tensor,
    image_embeds: torch.Tensor,
    texts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    options: RetrievalOptions,
    image_major: bool,
    ranks: Ranks | None = None,
) -> torch.Tensor:
    """(Q, C) final scores of queries against candidates: the top ``k_test`` candidates of each query by ITC
    re-scored by the ITM head (plus the ITC logit for ``score: itm+itc``), the others below them in ITC order.

    ``itc_rows`` (Q, C) holds ITC logits (double); ``image_embeds`` (Ni, 1+N, Dv) and ``texts`` = (states
    (Nt, L, Dt), ids (Nt, L), mask (Nt, L)); queries are images when ``image_major``, else texts. With
    ``ranks`` (every rank holding the same inputs) each rank re-scores its block of the fusion calls and
    every rank gets all the scores.
    """
    text_embeds, text_ids, text_atts = texts
    ranks = ranks or Ranks()
    k = min(options.k_test, itc_rows.shape[1])
    candidates = itc_rows.topk(k, dim=1).indices  # (Q, k)
    queries = torch.arange(itc_rows.shape[0], device=itc_rows.device).repeat_interleave(k)  # (Q*k,)
    flat = candidates.reshape(-1)
    img_rows, txt_rows = (queries, flat) if image_major else (flat, queries)
    mine = ranks.block(len(img_rows), options.rerank_batch)  # this rank's pairs, whole fusion calls
    itm = []  # ITM positive logit of the pairs (img_rows[p], txt_rows[p]), rerank_batch pairs per fusion call
    for start in range(mine.start, mine.stop, options.rerank_batch):
        stop = min(start + options.rerank_batch, mine.stop)
        i, t = img_rows[start:stop], txt_rows[start:stop]
        ids, atts = trim_padding(text_ids[t], text_atts[t])
        fused = xfm.fuse(text_embeds[t][:, : atts.shape[1]], atts, image_embeds[i])  # (p, L, Dt)
        itm.append(xfm.itm_score(fused))
    value = ranks.all_gather_rows(torch.cat(itm) if itm else None).double().view(-1, k)  # (Q, k)
    if options.score == "itm+itc":
        value = value + itc_rows.gather(1, candidates)
    out = itc_rows - _BELOW_CANDIDATES
    return out.scatter(1, candidates, value)


# ------------------------------------------------------------------------------------------ the task
class RetrievalTask(Task):
    """Image-text retrieval: ITC + ITM fine-tuning, ITC pre-ranking + batched ITM re-ranking."""

    name = "retrieval"
    splits = ("train", "val", "test")
    selection_metric = "r_mean"
    options_class = RetrievalOptions
    new_param_prefixes = ()
    collective_predict = True  # ITC ranks every image against every text: predict gathers the encodings itself

    def build_model(self, xfm: nn.Module, params: TaskParams, data: dict[str, Any]) -> TaskModel:
        options = self.options(params)
        from xfm_pipeline.config import to_dict

        return TaskModel(xfm, self.name, to_dict(options))

    def dataset(self, split, data, tokenizer, params, image_root, train):
        from xfm_pipeline.data.formats.retrieval import parse_retrieval_eval, parse_retrieval_train

        options = self.options(params)
        if split not in data:
            raise KeyError(f"retrieval: no data for split {split!r} (data keys: {sorted(data)})")
        if split == "train":
            records = parse_retrieval_train(data[split], f"retrieval/{split}")
            return RetrievalTrainDataset(records, image_root, tokenizer, params, options)
        records = parse_retrieval_eval(data[split], f"retrieval/{split}")
        return RetrievalEvalDataset(records, image_root, tokenizer, params, options)

    def collate(self, split, train):
        return _collate_train if split == "train" else _collate_eval

    def loss(self, model: TaskModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        from xfm_pipeline.objectives.itc import itc_loss
        from xfm_pipeline.objectives.itm import itm_loss

        xfm = model.xfm
        idx = batch["image_idx"]  # (B,)
        image_embeds = xfm.encode_image(batch["images"])  # (B, 1+N, Dv)
        text_embeds = xfm.encode_text(batch["text_ids"], batch["text_atts"])  # (B, L, Dt)
        image_feats, text_feats = xfm.image_features(image_embeds), xfm.text_features(text_embeds)  # (B, E)
        loss_itc = itc_loss(image_feats, text_feats, xfm.temperature, idx)
        with torch.no_grad():
            sim = xfm.similarity(image_feats, text_feats)  # (B, B) local
        itm = itm_loss(xfm, image_embeds, None, text_embeds, batch["text_atts"], sim, sim.t(), idx=idx)
        return {"loss_itc": loss_itc, "loss_itm": itm.loss, "itm_acc": itm.accuracy, "loss": loss_itc + itm.loss}

    @torch.no_grad()
    def predict(self, model: TaskModel, loader, params: TaskParams, ranks: Ranks | None = None) -> list[dict[str, Any]]:
        """Image and text queries of the split (every rank gets them all).

        With ``ranks`` the work is split: ``loader`` covers this rank's block of the images, the rank encodes
        the same block of the texts (both cut at ``eval_batch_size``), the encodings are gathered on every
        rank, each rank computes the whole ITC matrix and re-ranks its block of the ITM fusion calls, and
        the ITM scores are gathered. Every batch and fusion call is one that a single process runs, so the
        predictions are the single process's.
        """
        options = self.options(params)
        ranks = ranks or Ranks()
        dataset: RetrievalEvalDataset = full_dataset(loader.dataset)
        xfm, device = model.xfm, model_device(model)
        local = encode_images(xfm, loader, device) if len(loader.dataset) else (None, None)  # this rank's images
        image_embeds, image_feats = (ranks.all_gather_rows(x) for x in local)  # (Ni, 1+N, Dv), (Ni, E)
        text_ids, text_atts = dataset.text_ids.to(device), dataset.text_atts.to(device)  # (Nt, L)
        block = ranks.block(len(text_ids), params.eval_batch_size)
        local = encode_texts(xfm, text_ids[block.start : block.stop], text_atts[block.start : block.stop], params.eval_batch_size) if block else (None, None)
        text_embeds, text_feats = (ranks.all_gather_rows(x) for x in local)  # (Nt, L, Dt), (Nt, E)

        itc = (image_feats @ text_feats.t() / xfm.temperature).double()  # (Ni, Nt) ITC logits
        n_images, n_texts = itc.shape
        texts = (text_embeds, text_ids, text_atts)
        s_i2t = ranked_scores(xfm, itc, image_embeds, texts, options, image_major=True, ranks=ranks)  # (Ni, Nt)
        s_t2i = ranked_scores(xfm, itc.t().contiguous(), image_embeds, texts, options, image_major=False, ranks=ranks)  # (Nt, Ni)
        predictions: list[dict[str, Any]] = []
        top_i2t = s_i2t.topk(min(TOP_SAVED, n_texts), dim=1)
        for i in range(n_images):
            predictions.append(
                {"query": "image", "index": i, "image": dataset.records[i].image, "top": top_i2t.indices[i].tolist(), "scores": top_i2t.values[i].tolist()}
            )
        top_t2i = s_t2i.topk(min(TOP_SAVED, n_images), dim=1)
        for t in range(n_texts):
            predictions.append(
                {"query": "text", "index": t, "text": dataset.texts[t], "top": top_t2i.indices[t].tolist(), "scores": top_t2i.values[t].tolist()}
            )
        return predictions

    def evaluate(self, predictions: list[dict[str, Any]], split: str, data: dict[str, Any]) -> dict[str, float]:
        import numpy as np

        from xfm_pipeline.data.formats.retrieval import parse_retrieval_eval
        from xfm_pipeline.metrics.retrieval import retrieval_recall

        records = parse_retrieval_eval(data[split], f"retrieval/{split}")
        img2txt, txt2img = [], []
        for i, record in enumerate(records):
            img2txt.append(list(range(len(txt2img), len(txt2img) + len(record.caption))))
            txt2img.extend([i] * len(record.caption))
        n_images, n_texts = len(records), len(txt2img)
        s_i2t = np.full((n_images, n_texts), -np.inf)
        s_t2i = np.full((n_texts, n_images), -np.inf)
        seen = {"image": set(), "text": set()}
        for p in predictions:
            matrix, n = (s_i2t, n_images) if p["query"] == "image" else (s_t2i, n_texts)
            if not 0 <= p["index"] < n:
                raise ValueError(f"retrieval {split}: prediction for {p['query']} {p['index']} outside [0, {n})")
            matrix[p["index"], p["top"]] = p["scores"]
            seen[p["query"]].add(p["index"])
        if len(seen["image"]) != n_images or len(seen["text"]) != n_texts:
            raise ValueError(f"retrieval {split}: predictions cover {len(seen['image'])}/{n_images} images and {len(seen['text'])}/{n_texts} texts")
        return retrieval_recall(s_i2t, img2txt, txt2img, scores_t2i=s_t2i)


TASK = RetrievalTask()

_DATA = {split: f"retrieval_{split}_json_validated" for split in ("train", "val", "test")}


def _recall(what: str, *rows: tuple[str, float, float, str]) -> dict[str, PaperResult]:
    """``test/<txt|img>_r<k>`` published numbers of one benchmark from ``(metric, 4M, 1.3B, label)`` rows."""
    return {f"test/{metric}": PaperResult(a, b, f"{what} {label}") for metric, a, b, label in rows}


SPEC = TaskSpec(
    TASK,
    pipelines=(
        TaskPipeline(
            "finetune_retrieval_coco",
            data=_DATA,
            param_groups=("finetune_retrieval",),
            paper=_recall(
                "COCO 5K",
                ("txt_r1", 81.8, 84.2, "TR@1"),
                ("txt_r5", 96.0, 96.4, "TR@5"),
                ("txt_r10", 98.3, 98.4, "TR@10"),
                ("img_r1", 64.7, 67.0, "IR@1"),
                ("img_r5", 86.1, 87.2, "IR@5"),
                ("img_r10", 91.6, 92.4, "IR@10"),
            ),
        ),
        TaskPipeline(
            "finetune_retrieval_flickr",
            data=_DATA,
            param_groups=("finetune_retrieval",),
            paper=_recall(
                "Flickr30K",
                ("txt_r1", 97.4, 98.1, "TR@1"),
                ("txt_r5", 100.0, 100.0, "TR@5"),
                ("txt_r10", 100.0, 100.0, "TR@10"),
                ("img_r1", 88.6, 89.9, "IR@1"),
                ("img_r5", 97.9, 98.6, "IR@5"),
                ("img_r10", 98.9, 99.4, "IR@10"),
            ),
        ),
        TaskPipeline(
            "eval_retrieval_zeroshot",
            data={split: _DATA[split] for split in ("val", "test")},
            param_groups=("finetune_retrieval",),
            paper=_recall("COCO 5K zero-shot", ("txt_r1", 73.8, 77.6, "TR@1"), ("img_r1", 59.4, 61.1, "IR@1")),
        ),
    ),
    examples=Examples("retrieval_examples", ("val", "test")),
)
