"""GLUE distribution TSVs (the files of the original GLUE download), read with ``csv.QUOTE_NONE``.

Column layouts (train/dev; test files have an id column and no label):

=======  ===========================================================================================
CoLA     no header, 4 columns: source, label, original mark, sentence (test: ``index sentence``)
SST-2    ``sentence label`` (test: ``index sentence``)
MRPC     ``Quality #1 ID #2 ID #1 String #2 String`` (test: ``index #1 ID #2 ID #1 String #2 String``)
QQP      ``id qid1 qid2 question1 question2 is_duplicate`` (test: ``id question1 question2``)
STS-B    ``index genre filename year old_index source1 source2 sentence1 sentence2 score`` (test: no score)
MNLI     ``index promptID pairID genre sentence1_binary_parse sentence2_binary_parse sentence1_parse
         sentence2_parse sentence1 sentence2 label1 [label2..label5] gold_label``; splits train,
         dev_matched, dev_mismatched, test_matched, test_mismatched
QNLI     ``index question sentence label``
RTE      ``index sentence1 sentence2 label``
=======  ===========================================================================================

Labels become class indices in the order of HF ``datasets`` GLUE (e.g. MNLI entailment 0, neutral 1,
contradiction 2); STS-B keeps its float similarity score.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from xfm_pipeline.data.formats.common import RecordError

csv.field_size_limit(1 << 24)


@dataclass(frozen=True)
class GlueTaskSpec:
    """How one GLUE task's TSVs are laid out and labelled."""

    name: str  # directory name of the GLUE release (CoLA, SST-2, ...)
    text_a: str  # column of the first text
    text_b: str | None  # column of the second text (None: single-sentence task)
    label: str  # column of the label in train/dev files
    label_names: tuple[str, ...] | None  # class names in index order; None = regression (STS-B)
    train_header: tuple[str, ...] | None  # header of train/dev files (None: CoLA, no header)
    test_header: tuple[str, ...]  # header of test files
    dev_header: tuple[str, ...] | None = None  # when dev differs from train (MNLI)
    splits: tuple[str, ...] = ("train", "dev", "test")
    numeric_labels: bool = False  # labels written as class indices ("0"/"1") instead of names

    @property
    def is_regression(self) -> bool:
        """STS-B predicts a score instead of a class."""
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        """Classes of the head (1 for regression)."""
        return 1 if self.label_names is None else len(self.label_names)

    def header(self, split: str) -> tuple[str, ...] | None:
        """The header row of a split's file (None for headerless CoLA train/dev)."""
        if split.startswith("test"):
            return self.test_header
        if split.startswith("dev") and self.dev_header is not None:
            return self.dev_header
        return self.train_header


_MNLI_PREFIX = (
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
)  # fmt: skip
_STSB_PREFIX = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")
_MRPC_TEXTS = ("#1 ID", "#2 ID", "#1 String", "#2 String")

GLUE_TASKS: dict[str, GlueTaskSpec] = {
    "CoLA": GlueTaskSpec(
        "CoLA", "sentence", None, "label", ("unacceptable", "acceptable"),
        train_header=None, test_header=("index", "sentence"),
        numeric_labels=True,
    ),
    "SST-2": GlueTaskSpec(
        "SST-2", "sentence", None, "label", ("negative", "positive"),
        train_header=("sentence", "label"), test_header=("index", "sentence"),
        numeric_labels=True,
    ),
    "MRPC": GlueTaskSpec(
        "MRPC", "#1 String", "#2 String", "Quality", ("not_equivalent", "equivalent"),
        train_header=("Quality", *_MRPC_TEXTS), test_header=("index", *_MRPC_TEXTS),
        numeric_labels=True,
    ),
    "QQP": GlueTaskSpec(
        "QQP", "question1", "question2", "is_duplicate", ("not_duplicate", "duplicate"),
        train_header=("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
        test_header=("id", "question1", "question2"),
        numeric_labels=True,
    ),
    "STS-B": GlueTaskSpec(
        "STS-B", "sentence1", "sentence2", "score", None,
        train_header=(*_STSB_PREFIX, "score"), test_header=_STSB_PREFIX,
    ),
    "MNLI": GlueTaskSpec(
        "MNLI", "sentence1", "sentence2", "gold_label", ("entailment", "neutral", "contradiction"),
        train_header=(*_MNLI_PREFIX, "label1", "gold_label"), test_header=_MNLI_PREFIX,
        dev_header=(*_MNLI_PREFIX, "label1", "label2", "label3", "label4", "label5", "gold_label"),
        splits=("train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched"),
    ),
    "QNLI": GlueTaskSpec(
        "QNLI", "question", "sentence", "label", ("entailment", "not_entailment"),
        train_header=("index", "question", "sentence", "label"), test_header=("index", "question", "sentence"),
    ),
    "RTE": GlueTaskSpec(
        "RTE", "sentence1", "sentence2", "label", ("entailment", "not_entailment"),
        train_header=("index", "sentence1", "sentence2", "label"), test_header=("index", "sentence1", "sentence2"),
    ),
}  # fmt: skip

# CoLA train/dev columns (no header row in the release).
COLA_COLUMNS = ("source", "label", "original_mark", "sentence")


@dataclass(frozen=True)
class GlueExample:
    """One GLUE example."""

    task: str
    split: str
    guid: str  # the file's id column when it has one, else "<split>-<line>"
    text_a: str
    text_b: str | None
    label: int | float | None  # class index, STS-B score, or None in test files


def glue_task(name: str) -> GlueTaskSpec:
    """The spec of a GLUE task by its release directory name (case-insensitive, ``SST2`` == ``SST-2``)."""
    key = {k.lower().replace("-", ""): k for k in GLUE_TASKS}.get(name.lower().replace("-", ""))
    if key is None:
        raise ValueError(f"unknown GLUE task {name!r}; expected one of {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[key]


def _rows(text: str) -> list[list[str]]:
    if text.startswith("\ufeff"):
        text = text[1:]  # MRPC's original files start with a BOM
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quotechar=None, quoting=csv.QUOTE_NONE)
    return [row for row in reader if row and any(cell.strip() for cell in row)]


def _label(spec: GlueTaskSpec, raw: str, source: str, line: int) -> int | float:
    raw = raw.strip()
    if spec.is_regression:
        try:
            value = float(raw)
        except ValueError:
            raise RecordError(source, f"line {line}", f"score {raw!r} is not a number") from None
        if not 0.0 <= value <= 5.0:
            raise RecordError(source, f"line {line}", f"score {value} is outside [0, 5]")
        return value
    names = spec.label_names
    if spec.numeric_labels:
        if raw.isdigit() and int(raw) < len(names):
            return int(raw)
        allowed = [str(i) for i in range(len(names))]
    else:
        if raw in names:
            return names.index(raw)
        allowed = list(names)
    raise RecordError(source, f"line {line}", f"label {raw!r} is not one of {allowed}")


def parse_glue_tsv(text: str, task: str, split: str, source: str | None = None) -> list[GlueExample]:
    """Parse the text of one GLUE TSV file.

    Args:
        text: the whole file.
        task: release directory name (``CoLA``, ``SST-2``, ``MRPC``, ``QQP``, ``STS-B``, ``MNLI``, ``QNLI``, ``RTE``).
        split: ``train``, ``dev``, ``test`` (MNLI: ``dev_matched``, ``dev_mismatched``, ``test_matched``, ...).
        source: name used in errors (defaults to ``<task>/<split>.tsv``).

    Raises:
        RecordError: wrong header, wrong column count, empty text or unknown label, naming the line.
    """
    spec = glue_task(task)
    if split not in spec.splits:
        raise ValueError(f"{spec.name} has splits {spec.splits}, got {split!r}")
    source = source or f"{spec.name}/{split}.tsv"
    rows = _rows(text)
    if not rows:
        raise RecordError(source, None, "file is empty")
    header = spec.header(split)
    first_line = 1
    if spec.name == "CoLA" and header is None and tuple(rows[0]) == spec.test_header:
        raise RecordError(source, "line 1", "this is a CoLA test file (header 'index sentence'); use split 'test'")
    if header is None:
        columns = COLA_COLUMNS
    else:
        found = tuple(cell.strip() for cell in rows[0])
        if found != header:
            raise RecordError(source, "line 1", f"expected header {list(header)}, got {list(found)}")
        columns, rows, first_line = header, rows[1:], 2
    index = {name: i for i, name in enumerate(columns)}
    has_label = spec.label in index
    id_column = next((c for c in ("index", "id") if c in index), None)
    examples = []
    for offset, row in enumerate(rows):
        line = first_line + offset
        if len(row) != len(columns):
            raise RecordError(source, f"line {line}", f"expected {len(columns)} tab-separated columns, got {len(row)}")
        text_a = row[index[spec.text_a]]
        text_b = row[index[spec.text_b]] if spec.text_b else None
        if not text_a.strip() or (text_b is not None and not text_b.strip()):
            raise RecordError(source, f"line {line}", "empty sentence")
        examples.append(
            GlueExample(
                task=spec.name,
                split=split,
                guid=row[index[id_column]] if id_column else f"{split}-{line}",
                text_a=text_a,
                text_b=text_b,
                label=_label(spec, row[index[spec.label]], source, line) if has_label else None,
            )
        )
    return examples


def read_glue_tsv(path: str | Path, task: str | None = None, split: str | None = None) -> list[GlueExample]:
    """Read one GLUE TSV; ``task`` defaults to the parent directory name, ``split`` to the file stem."""
    path = Path(path)
    return parse_glue_tsv(path.read_text(encoding="utf-8"), task or path.parent.name, split or path.stem, str(path))


def read_glue_dir(root: str | Path, tasks: tuple[str, ...] | None = None) -> dict[str, list[GlueExample]]:
    """Read every split file present under ``root/<TASK>/`` -> ``{"CoLA/train": [...], ...}``."""
    root = Path(root)
    out: dict[str, list[GlueExample]] = {}
    for name in tasks or tuple(GLUE_TASKS):
        spec = glue_task(name)
        for split in spec.splits:
            path = root / spec.name / f"{split}.tsv"
            if path.is_file():
                out[f"{spec.name}/{split}"] = read_glue_tsv(path, spec.name, split)
    if not out:
        raise FileNotFoundError(f"no GLUE TSV files under {root}")
    return out


def parse_glue_partitions(partitions: Mapping[str, str | Callable[[], str]]) -> dict[str, list[GlueExample]]:
    """Parse what the ``glue_raw`` PartitionedDataset loads: ``{"CoLA/train": text or loader, ...}``.

    Partitions that are not one of the eight tasks' split files are skipped, so the directory of the
    GLUE release (which also holds WNLI, the diagnostic set and CoLA's ``original/`` files) can be used
    as it is.
    """
    known = {name.lower().replace("-", ""): name for name in GLUE_TASKS}
    out = {}
    for key in sorted(partitions):
        task, _, split = key.partition("/")
        name = known.get(task.lower().replace("-", ""))
        if name is None or split not in GLUE_TASKS[name].splits:
            continue
        value = partitions[key]
        text = value() if callable(value) else value
        out[f"{name}/{split}"] = parse_glue_tsv(text, name, split, f"glue/{key}.tsv")
    if not out:
        raise RecordError("glue", None, f"no GLUE split file among {len(partitions)} partitions (expected keys like 'CoLA/train')")
    return out
