"""Image-text retrieval: ITC/ITM scores of an image-text pair, or a query ranked against a gallery (texts for
an image, images for a text) with ITC pre-ranking and ITM re-ranking (``tasks.retrieval``: its evaluation
dataset, encoders and :func:`~xfm_pipeline.tasks.retrieval.ranked_scores`).

Every distinct image and text of a call is encoded once (images compared by their pixels), so a gallery
shared by many queries costs one encoding.
"""

from __future__ import annotations

import hashlib
from typing import Any

from xfm_pipeline.predict.base import Loaded, TaskAdapter, eval_loader, image_store
from xfm_pipeline.predict.schema import ID_FIELD, ID_OUTPUT, IMAGE_PLACEHOLDER, Field, TaskSchema

DEFAULT_TOP_K = 10  # gallery items returned per query unless the record says otherwise
SHAPES = {  # the fields of each query shape
    "pair": ("image", "text"),
    "image_to_texts": ("image", "texts"),
    "text_to_images": ("text", "images"),
}


def query_shape(record: dict[str, Any]) -> str:
    """``pair``, ``image_to_texts`` or ``text_to_images``.

    Raises:
        ValueError: the record's fields match none of the three.
    """
    given = {name for name in ("image", "text", "images", "texts") if name in record}
    for shape, fields in SHAPES.items():
        if given == set(fields):
            return shape
    wanted = " or ".join("+".join(fields) for fields in SHAPES.values())
    raise ValueError(f"a retrieval query has {wanted}, got {'+'.join(sorted(given)) or 'none of them'}")


class _Unique:
    """Distinct items in order of first appearance; ``add`` returns an item's position."""

    def __init__(self, key):
        self.key, self.items, self.index = key, [], {}

    def add(self, item) -> int:
        key = self.key(item)
        if key not in self.index:
            self.index[key] = len(self.items)
            self.items.append(item)
        return self.index[key]


def _pixels(image) -> tuple:
    return image.size, hashlib.sha1(image.tobytes()).hexdigest()


class RetrievalAdapter(TaskAdapter):
    """Pairs and gallery queries through :class:`~xfm_pipeline.tasks.retrieval.RetrievalEvalDataset`."""

    @property
    def schema(self) -> TaskSchema:
        return TaskSchema(
            task=self.task.name,
            summary="score an image-text pair, or rank a gallery of texts for an image / of images for a text",
            inputs=(
                Field("image", "image", "the image (with text: a pair; with texts: the query)", required=False),
                Field("text", "text", "the text (with image: a pair; with images: the query)", required=False),
                Field("texts", "text_list", "the gallery of texts to rank for image", required=False),
                Field("images", "image_list", "the gallery of images to rank for text", required=False),
                Field("top_k", "integer", f"gallery items to return (default {DEFAULT_TOP_K})", required=False),
                ID_FIELD,
            ),
            outputs=(
                Field("itc", "number", "pair: the ITC logit (cosine similarity / temperature)", required=False),
                Field("itm", "number", "pair: the ITM match logit", required=False),
                Field("itm_prob", "number", "pair: the ITM match probability", required=False),
                Field("top", "integer_list", "gallery: indices of the best items, best first", required=False),
                Field(
                    "scores",
                    "number_list",
                    "gallery: their scores (ITM logit + ITC logit with the default score 'itm+itc'; items past the checkpoint's k_test rank by ITC - 1e6)",
                    required=False,
                ),  # fmt: skip
                ID_OUTPUT,
            ),
            example={"image": IMAGE_PLACEHOLDER, "texts": ["a red circle and a blue square", "two green triangles"]},
        )

    def check(self, record: dict[str, Any]) -> None:
        shape = query_shape(record)
        if "top_k" in record and shape == "pair":
            raise ValueError("field 'top_k' applies to gallery queries (texts or images), not to an image-text pair")
        if record.get("top_k", 1) < 1:
            raise ValueError(f"field 'top_k' must be >= 1, got {record['top_k']}")

    def run(self, loaded: Loaded, records: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
        import torch

        from xfm_pipeline.tasks.retrieval import ranked_scores

        images, texts = _Unique(_pixels), _Unique(str)
        refs = []  # per record: (image positions, text positions)
        for record in records:
            image_list = [record["image"]] if "image" in record else record["images"]
            text_list = [record["text"]] if "text" in record else record["texts"]
            refs.append(([images.add(i) for i in image_list], [texts.add(t) for t in text_list]))
        image_embeds, image_feats, (text_embeds, text_ids, text_atts), text_feats = self._encode(loaded, images.items, texts.items, batch_size)
        xfm, options, device = loaded.model.xfm, loaded.task.options(loaded.params), loaded.device
        out: list[dict[str, Any]] = []
        pairs = [i for i, record in enumerate(records) if query_shape(record) == "pair"]
        pair_scores = self._pairs(loaded, image_embeds, image_feats, (text_embeds, text_ids, text_atts), text_feats, [refs[i] for i in pairs], batch_size)
        by_record = dict(zip(pairs, pair_scores, strict=True))
        for i, (record, (img, txt)) in enumerate(zip(records, refs, strict=True)):
            if i in by_record:
                out.append(by_record[i])
                continue
            img_t, txt_t = torch.tensor(img, device=device), torch.tensor(txt, device=device)
            itc = (image_feats[img_t] @ text_feats[txt_t].t() / xfm.temperature).double()  # (Ni, Nt) ITC logits
            image_major = "texts" in record
            rows = itc if image_major else itc.t().contiguous()  # (1, candidates)
            side = (text_embeds[txt_t], text_ids[txt_t], text_atts[txt_t])
            scores = ranked_scores(xfm, rows, image_embeds[img_t], side, options, image_major=image_major)[0]  # (C,)
            best = scores.topk(min(record.get("top_k", DEFAULT_TOP_K), len(scores)))
            out.append({"top": best.indices.tolist(), "scores": best.values.tolist()})
        return out

    def _encode(self, loaded: Loaded, images: list, texts: list[str], batch_size: int):
        """Images (Ni, 1+N, Dv) + features (Ni, E), texts (states (Nt, L, Dt), ids, mask) + features (Nt, E),
        encoded as the task's evaluation encodes a split."""
        from xfm_pipeline.data.formats.retrieval import RetrievalEvalRecord
        from xfm_pipeline.tasks.retrieval import RetrievalEvalDataset, encode_images, encode_texts

        task, params, xfm, device = loaded.task, loaded.params, loaded.model.xfm, loaded.device
        store, keys = image_store(images)
        # every text on the first image: the dataset tokenises all captions once, in record order
        rows = [RetrievalEvalRecord(image=key, caption=tuple(texts) if i == 0 else ()) for i, key in enumerate(keys)]
        dataset = RetrievalEvalDataset(rows, store, loaded.tokenizer, params, task.options(params))
        image_embeds, image_feats = encode_images(xfm, eval_loader(dataset, task.collate("val", train=False), batch_size), device)
        text_ids, text_atts = dataset.text_ids.to(device), dataset.text_atts.to(device)  # (Nt, L)
        text_embeds, text_feats = encode_texts(xfm, text_ids, text_atts, batch_size)
        return image_embeds, image_feats, (text_embeds, text_ids, text_atts), text_feats

    def _pairs(self, loaded: Loaded, image_embeds, image_feats, texts, text_feats, refs, batch_size: int) -> list[dict[str, Any]]:
        """ITC logit, ITM logit and match probability of each (image, text) pair of ``refs``."""
        import torch

        from xfm_pipeline.data.text import trim_padding

        if not refs:
            return []
        xfm, device = loaded.model.xfm, loaded.device
        text_embeds, text_ids, text_atts = texts
        img = torch.tensor([i[0] for i, _ in refs], device=device)  # (P,)
        txt = torch.tensor([t[0] for _, t in refs], device=device)
        itc = ((image_feats[img] * text_feats[txt]).sum(-1) / xfm.temperature).double()  # (P,)
        logits = []
        for start in range(0, len(refs), batch_size):
            i, t = img[start : start + batch_size], txt[start : start + batch_size]
            ids, atts = trim_padding(text_ids[t], text_atts[t])
            fused = xfm.fuse(text_embeds[t][:, : atts.shape[1]], atts, image_embeds[i])  # (b, l, Dt)
            logits.append(xfm.itm_logits(fused).float())  # (b, 2)
        logits = torch.cat(logits)  # (P, 2)
        probs = logits.softmax(-1)[:, 1]
        return [{"itc": c, "itm": m, "itm_prob": p} for c, m, p in zip(itc.tolist(), logits[:, 1].double().tolist(), probs.tolist(), strict=True)]
