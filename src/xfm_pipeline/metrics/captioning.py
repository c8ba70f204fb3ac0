"""COCO caption metrics through ``pycocoevalcap`` (docs/xfm.md#caption-metrics): BLEU-1..4, METEOR, ROUGE-L, CIDEr
(CIDEr-D, sigma 6, as in the COCO toolkit), and SPICE only on request.

The pipeline is the one ``COCOEvalCap`` runs: every caption (predictions and references together) is
tokenised by Stanford's PTBTokenizer (``-preserveLines -lowerCase``) and the punctuation tokens of
``pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS`` are dropped; then each scorer runs on the
tokenised text. Values are fractions as the toolkit returns them (CIDEr is not bounded by 1; the
paper's tables multiply by 100).

Java. PTBTokenizer and METEOR are Java programs shipped inside ``pycocoevalcap``. When ``java`` is not
on ``PATH``, ``tokenizer="auto"`` falls back to :func:`python_tokenize`, a pure-Python re-implementation
of the jar's tokenizer (:mod:`xfm_pipeline.metrics.ptb_python`): it gives the jar's tokens on every
caption of the recorded corpus of tricky captions in ``tests/fixtures/ptb`` (curly quotes, dashes,
ellipses, emoji, times, clitics, abbreviations, URLs, ...), so the scores do not depend on the path.
``meteor=None`` leaves METEOR out; a warning is logged and the returned dict simply has no ``meteor``
key. The keys of the result are therefore exactly the metrics that were computed.

SPICE is off by default: it needs Stanford CoreNLP 3.6.0 (``stanford-corenlp-3.6.0.jar`` and
``stanford-corenlp-3.6.0-models.jar`` in ``pycocoevalcap/spice/lib``), which ``pycocoevalcap`` downloads
from the internet on first use and does not ship. ``spice=True`` works only when those two jars were
put there beforehand; otherwise it raises instead of reaching the network.

CIDEr weights n-grams by their document frequency over the references of the whole evaluated set,
so a score depends on the set (a single image always scores CIDEr 0) and must be computed on the full
split at once, never averaged over chunks.

``pycocoevalcap`` is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
from collections.abc import Hashable, Mapping, Sequence

from xfm_pipeline.metrics.ptb_python import LINE_BREAKS as _LINE_BREAKS
from xfm_pipeline.metrics.ptb_python import ptb_lines

logger = logging.getLogger(__name__)

CAPTION_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider", "spice")
# pycocoevalcap's list of punctuation tokens removed after PTB tokenisation (case-sensitive: with
# -lowerCase the bracket tokens come out as "-lrb-" etc. and are therefore KEPT, as in the toolkit).
PTB_PUNCTUATION = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"])
_PTB_CLASS = "edu.stanford.nlp.process.PTBTokenizer"


def java_available() -> bool:
    """Whether a ``java`` executable is on ``PATH`` (PTBTokenizer, METEOR and SPICE need one)."""
    return shutil.which("java") is not None


def _package_dir(subpackage: str) -> str:
    """Directory of a ``pycocoevalcap`` sub-folder (the package has no ``__init__``; locate it by a module)."""
    import importlib

    module = {"tokenizer": "ptbtokenizer", "meteor": "meteor", "spice": "spice"}[subpackage]
    return os.path.dirname(os.path.abspath(importlib.import_module(f"pycocoevalcap.{subpackage}.{module}").__file__))


def ptb_tokenize(captions: Sequence[str], timeout: float = 600.0) -> list[str]:
    """Tokenise with Stanford PTBTokenizer exactly as ``pycocoevalcap``'s ``PTBTokenizer`` does.

    One Java process for all captions; lowercased tokens joined by single spaces, punctuation tokens
    (``PTB_PUNCTUATION``) removed. Unlike the toolkit's wrapper this feeds the text on stdin instead of
    writing a temporary file into ``site-packages``, and line breaks inside a caption become spaces.

    Raises:
        RuntimeError: ``java`` is missing or the tokenizer's output does not have one line per caption.
    """
    if not captions:
        return []
    if not java_available():
        raise RuntimeError("PTB tokenisation needs `java` on PATH")
    jar = os.path.join(_package_dir("tokenizer"), "stanford-corenlp-3.4.1.jar")
    text = "\n".join(_LINE_BREAKS.sub(" ", c) for c in captions) + "\n"
    cmd = ["java", "-Dfile.encoding=UTF-8", "-cp", jar, _PTB_CLASS]
    cmd += ["-preserveLines", "-lowerCase", "-encoding", "utf-8"]
    done = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"PTBTokenizer failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}")
    lines = done.stdout.decode("utf-8").split("\n")
    if len(lines) == len(captions) + 1 and lines[-1] == "":
        lines = lines[:-1]
    if len(lines) != len(captions):
        raise RuntimeError(f"PTBTokenizer returned {len(lines)} lines for {len(captions)} captions")
    return [_drop_punctuation(line) for line in lines]


def _drop_punctuation(line: str) -> str:
    """A tokenizer output line without the toolkit's punctuation tokens, as ``pycocoevalcap`` filters it."""
    return " ".join(w for w in line.rstrip().split(" ") if w and w not in PTB_PUNCTUATION)


def python_tokenize(captions: Sequence[str]) -> list[str]:
    """Pure-Python equivalent of :func:`ptb_tokenize` (used when Java is missing), with the same output.

    The jar's tokens (:func:`xfm_pipeline.metrics.ptb_python.ptb_lines`), punctuation tokens dropped.
    Like the Java run, it lexes the captions together, one per line: a caption ending in a single
    letter and a period (``vitamin C.``) keeps the period unless the next caption starts with a
    sentence-starting word (``The``, ``A``, ``It`` ...), so tokenise a whole set at once.
    """
    return [_drop_punctuation(" ".join(tokens)) for tokens in ptb_lines(captions)]


def simple_tokenize(caption: str) -> str:
    """:func:`python_tokenize` of one caption on its own (as ``ptb_tokenize([caption])[0]``)."""
    return python_tokenize([caption])[0]


def tokenize_captions(captions: Sequence[str], tokenizer: str = "auto") -> list[str]:
    """Tokenise with ``"ptb"`` (Java), ``"python"`` (:func:`python_tokenize`) or ``"auto"`` (PTB if Java exists)."""
    if tokenizer == "auto":
        tokenizer = "ptb" if java_available() else "python"
        if tokenizer == "python":
            logger.warning("java not found: captions are tokenised by the pure-Python PTB tokenizer")
    if tokenizer == "ptb":
        return ptb_tokenize(captions)
    if tokenizer == "python":
        return python_tokenize(captions)
    raise ValueError(f"tokenizer must be 'auto', 'ptb' or 'python', got {tokenizer!r}")


def _check_inputs(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]) -> list[Hashable]:
    if set(predictions) != set(references):
        missing = [k for k in references if k not in predictions][:5]
        extra = [k for k in predictions if k not in references][:5]
        raise ValueError(f"predictions and references need the same ids (missing e.g. {missing}, extra e.g. {extra})")
    if not predictions:
        raise ValueError("no captions to score")
    for key in predictions:
        if not isinstance(predictions[key], str):
            raise TypeError(f"prediction for {key!r} must be a str, got {type(predictions[key]).__name__}")
        refs = references[key]
        if isinstance(refs, str) or len(refs) == 0 or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"references for {key!r} must be a non-empty list of str")
    return list(predictions)


_METEOR = []  # the one running METEOR scorer of this process (started on first use)


def _meteor_score(gts: dict, res: dict) -> float:
    """METEOR of ``res`` against ``gts`` through one Java METEOR process per Python process.

    Starting METEOR (a JVM that loads its paraphrase tables) costs seconds, more than scoring a split, and
    a fine-tune scores captions at every validation and again on val and test; the process is kept for
    later calls (each call is scored on its own) and stopped at exit, or at once when a call fails.
    """
    if not _METEOR:
        from pycocoevalcap.meteor.meteor import Meteor

        _METEOR.append(Meteor())
        atexit.register(_stop_meteor)
    try:
        score, _ = _METEOR[0].compute_score(gts, res)
    except BaseException:
        _stop_meteor()  # its pipes may hold half an exchange: the next call starts a fresh process
        raise
    return float(score)


def _stop_meteor() -> None:
    """Stop the kept METEOR process, if any, now rather than whenever the object is collected."""
    while _METEOR:
        scorer = _METEOR.pop()
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.kill()
        scorer.meteor_p.wait()


def _spice_score(gts: dict, res: dict) -> float:
    lib = os.path.join(_package_dir("spice"), "lib")
    needed = [os.path.join(lib, f"stanford-corenlp-3.6.0{suffix}.jar") for suffix in ("", "-models")]
    missing = [path for path in needed if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError("SPICE needs Stanford CoreNLP 3.6.0, which pycocoevalcap would download; place these files first: " + ", ".join(missing))
    from pycocoevalcap.spice.spice import Spice

    score, _ = Spice().compute_score(gts, res)
    return float(score)


def caption_metrics(
    predictions: Mapping[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    *,
    tokenizer: str = "auto",
    meteor: bool | None = None,
    spice: bool = False,
) -> dict[str, float]:
    """COCO caption metrics of one generated caption per image against its reference captions.

    Args:
        predictions: image id -> generated caption.
        references: image id -> reference captions (at least one); the same ids as ``predictions``.
        tokenizer: ``"auto"`` (Java PTB when ``java`` exists, else its pure-Python re-implementation),
            ``"ptb"`` or ``"python"``.
        meteor: compute METEOR (Java); ``None`` = when ``java`` exists.
        spice: compute SPICE (Java + CoreNLP 3.6.0 jars present locally; see the module doc).

    Returns:
        ``bleu_1`` .. ``bleu_4``, ``rouge_l``, ``cider``, plus ``meteor`` and ``spice`` when computed:
        exactly the metrics that were computed (see ``CAPTION_METRICS`` for the full set).

    Raises:
        ValueError / TypeError: ids that differ, empty or non-string captions.
        RuntimeError: ``meteor=True`` or ``tokenizer="ptb"`` without Java.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    ids = _check_inputs(predictions, references)
    if meteor is None:
        meteor = java_available()
        if not meteor:
            logger.warning("java not found: METEOR is not computed")
    elif meteor and not java_available():
        raise RuntimeError("METEOR needs `java` on PATH")

    flat = [predictions[i] for i in ids] + [r for i in ids for r in references[i]]
    tokens = tokenize_captions(flat, tokenizer)
    res = {i: [tokens[n]] for n, i in enumerate(ids)}
    gts: dict[Hashable, list[str]] = {}
    pos = len(ids)
    for i in ids:
        gts[i] = tokens[pos : pos + len(references[i])]
        pos += len(references[i])

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu_{n + 1}": float(b) for n, b in enumerate(bleu)}
    if meteor:
        out["meteor"] = _meteor_score(gts, res)
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider"] = float(Cider().compute_score(gts, res)[0])
    if spice:
        out["spice"] = _spice_score(gts, res)
    return out
