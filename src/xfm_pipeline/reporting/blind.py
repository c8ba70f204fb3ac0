"""Input-blind baselines of every registered task, computed from its validated records, in percent.

A blind baseline predicts without looking at one of the task's inputs; a model that uses that input must
beat it clearly. Per task (the module of its :class:`~xfm_pipeline.tasks.spec.TaskSpec`'s task):

* ``vqa``: the text-only answer prior per question type, and the question lookup (``metrics.baselines``),
  on the headline's split only;
* ``nlvr``: the majority label, and the statement lookup;
* ``grounding``: the mean training box for every expression;
* ``captioning``: one constant caption, the best on validation CIDEr of the 20 most frequent training
  captions (CIDEr x100, python tokenizer);
* ``retrieval``: a random ranking (its expected recall, exact);
* ``glue``: the majority training label (the mean training score for STS-B: a constant prediction, whose
  correlation is undefined, so no baseline);
* ``imagenet``: the majority training class (test split).

:func:`blind_baselines` returns ``{split: [{"name": str, "value": float}]}`` for the evaluation splits that
carry labels; a split with no records has no entry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from xfm_pipeline.reporting.headline import preferred_split
from xfm_pipeline.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

CAPTION_CANDIDATES = 20  # most frequent training captions tried as the constant caption
RETRIEVAL_KS = (1, 5, 10)  # the recall cut-offs of r_mean

Baselines = dict[str, list[dict[str, Any]]]  # split -> [{"name", "value" in percent}]


def task_kind(spec: TaskSpec) -> str:
    """The module of the spec's task (``vqa``, ``glue``, ``imagenet`` ...): the key of its baselines."""
    return type(spec.task).__module__.rsplit(".", 1)[-1]


def blind_baselines(spec: TaskSpec, data: Mapping[str, Any]) -> Baselines:
    """The blind baselines of task ``spec`` on each labelled evaluation split of ``data`` (the task's data
    keys -> loaded validated records, as a fine-tune pipeline reads them); ``{}`` for a task kind without any.
    """
    compute = _BY_KIND.get(task_kind(spec))
    return compute(spec, data) if compute else {}


def _entry(name: str, fraction: float) -> dict[str, Any]:
    return {"name": name, "value": 100.0 * float(fraction)}


def _vqa(spec: TaskSpec, data: Mapping[str, Any]) -> Baselines:
    """Only the split the headline is read from (test when it has answers, else val): the priors normalise
    every training answer, the slowest of the baselines on real VQA."""
    from xfm_pipeline.data.formats.vqa import parse_vqa
    from xfm_pipeline.metrics.baselines import answer_prior_accuracy, question_prior_accuracy

    train = [(r.question, r.question_type, r.answer) for r in parse_vqa(data.get("train") or [], "vqa/train") if r.answer]
    labelled = {}
    for split in ("val", "test"):
        records = [(r.question, r.question_type, r.answer) for r in parse_vqa(data.get(split) or [], f"vqa/{split}") if r.answer]
        if records:
            labelled[split] = records
    if not train or not labelled:
        return {}
    split = preferred_split(labelled)
    test = labelled[split]
    prior = answer_prior_accuracy([(t, a) for _, t, a in train], [(t, a) for _, t, a in test])["overall"]
    return {split: [_entry("text-only answer prior per question type", prior), _entry("question lookup", question_prior_accuracy(train, test)["overall"])]}


def _nlvr(spec: TaskSpec, data: Mapping[str, Any]) -> Baselines:
    from xfm_pipeline.data.formats.nlvr import parse_nlvr
    from xfm_pipeline.metrics.baselines import majority_accuracy, statement_prior_accuracy

    train = [(r.sentence, r.label) for r in parse_nlvr(data.get("train") or [], "nlvr/train")]
    out: Baselines = {}
    for split in ("val", "test"):
        test = [(r.sentence, r.label) for r in parse_nlvr(data.get(split) or [], f"nlvr/{split}")]
        if train and test:
            out[split] = [
                _entry("majority label", majority_accuracy([label for _, label in train], [label for _, label in test])),
                _entry("statement lookup", statement_prior_accuracy(train, test)),
            ]
    return out


def _grounding(spec: TaskSpec, data: Mapping[str, Any]) -> Baselines:
    from xfm_pipeline.data.formats.grounding import parse_grounding
    from xfm_pipeline.metrics.baselines import mean_box_accuracy

    records = parse_grounding(data.get("refs") or [])
    train = [r.bbox for r in records if r.split == "train"]
    out: Baselines = {}
    for split in sorted({r.split for r in records} - {"train"}):
        if train:
            out[split] = [_entry("mean training box", mean_box_accuracy(train, [r.bbox for r in records if r.split == split]))]
    return out


def constant_caption_cider(captions: Sequence[str], references: Mapping[Any, Sequence[str]]) -> list[float]:
    """CIDEr (a fraction, as pycocoevalcap gives it) of each caption in ``captions`` predicted for every image
    of ``references`` (image id -> reference captions); every text is tokenized once (python tokenizer)."""
    from pycocoevalcap.cider.cider import Cider

    from xfm_pipeline.metrics.captioning import tokenize_captions

    ids = sorted(references)
    tokens = tokenize_captions(list(captions) + [r for i in ids for r in references[i]], "python")
    gts, pos = {}, len(captions)
    for i in ids:
        gts[i] = tokens[pos : pos + len(references[i])]
        pos += len(references[i])
    return [float(Cider().compute_score(gts, dict.fromkeys(ids, [caption]))[0]) for caption in tokens[: len(captions)]]


def _captioning(spec: TaskSpec, data: Mapping[str, Any]) -> Baselines:
    from xfm_pipeline.data.formats.captioning import parse_caption_train, parse_coco_caption_gt
    from xfm_pipeline.metrics.baselines import frequent_captions

    train = [r.caption for r in parse_caption_train(data.get("train") or [], "captioning/train")]
    refs = {s: parse_coco_caption_gt(data[f"{s}_gt"], f"captioning/{s}_gt").refs for s in ("val", "test") if data.get(f"{s}_gt")}
    refs = {s: r for s, r in refs.items() if r}
    if not train or "val" not in refs:
        return {}
    candidates = frequent_captions(train, CAPTION_CANDIDATES)
    scores = constant_caption_cider(candidates, refs["val"])
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))  # ties: the more frequent
    name = f"constant caption {candidates[best]!r}"
    out = {"val": [_entry(name, scores[best])]}
    if "test" in refs:
        out["test"] = [_entry(name, constant_caption_cider([candidates[best]], refs["test"])[0])]
    return out


def random_ranking_r_mean(captions_per_image: Sequence[int], ks: Sequence[int] = RETRIEVAL_KS) -> float:
    """Expected ``r_mean`` (a fraction) of a uniformly random ranking: image i with ``c_i`` of the ``T``
    captions finds one in its top k with probability ``1 - C(T - c_i, k) / C(T, k)``; a caption finds its one
    image among ``N`` with probability ``k / N``."""
    n, total = len(captions_per_image), sum(captions_per_image)
    if n == 0 or total == 0:
        raise ValueError("no images or captions to rank")

    def miss(c: int, k: int) -> float:  # P(none of the c correct captions in the top k)
        return math.prod((total - c - j) / (total - j) for j in range(min(k, total))) if k <= total - c else 0.0

    txt = [sum(1.0 - miss(c, k) for c in captions_per_image) / n for k in ks]
    img = [min(k, n) / n for k in ks]
    return (sum(txt) / len(ks) + sum(img) / len(ks)) / 2.0


def _retrieval(spec: TaskSpec, data: Mapping[str, Any]) -> Baselines:
    from xfm_pipeline.data.formats.retrieval import parse_retrieval_eval

    out: Baselines = {}
    for split in ("val", "test"):
        records = parse_retrieval_eval(data.get(split) or [], f"retrieval/{split}")
        if records:
            out[split] = [_entry("random ranking", random_ranking_r_mean([len(r.caption) for r in records]))]
    return out


def _glue(spec: TaskSpec, data: Mapping[str, Any]) -> Baselines:
    from xfm_pipeline.metrics.baselines import most_frequent
    from xfm_pipeline.metrics.glue import GLUE_REGRESSION_TASKS, glue_metrics

    task, key = spec.task, spec.name.removeprefix("glue_")

    def labels(split: str) -> list:
        try:
            return [ex.label for ex in task.examples(split, data)]
        except KeyError as exc:  # this GLUE file is not among the validated data
            log.warning("%s %s: no blind baseline (%s)", spec.name, split, exc)
            return []

    train = labels("train")
    if not train:
        return {}
    guess = sum(train) / len(train) if key in GLUE_REGRESSION_TASKS else most_frequent(train)
    out: Baselines = {}
    for split in task.splits:
        gold = labels(split) if split != "train" else []
        if not gold:
            continue
        value = glue_metrics("mnli_mismatched" if split == "val_mismatched" else key, [guess] * len(gold), gold)[spec.headline_metric]
        if not math.isnan(value):
            out[split] = [_entry("majority label", value)]
    return out


def _imagenet(spec: TaskSpec, data: Mapping[str, Any]) -> Baselines:
    from xfm_pipeline.metrics.baselines import majority_accuracy

    manifest = data.get("manifest") or []
    train = [r["label"] for r in manifest if r["split"] == "train"]
    test = [r["label"] for r in manifest if r["split"] == "val"]  # the task's test split: the official val
    return {"test": [_entry("majority class", majority_accuracy(train, test))]} if train and test else {}


_BY_KIND: dict[str, Callable[[TaskSpec, Mapping[str, Any]], Baselines]] = {
    "vqa": _vqa,
    "nlvr": _nlvr,
    "grounding": _grounding,
    "captioning": _captioning,
    "retrieval": _retrieval,
    "glue": _glue,
    "imagenet": _imagenet,
}
