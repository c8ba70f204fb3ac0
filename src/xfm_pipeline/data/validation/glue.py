"""GLUE distribution TSVs for validation: a line-exact parser and the inverse renderer.

Task layouts (headers, text and label columns, label sets) come from the reader module
``xfm_pipeline.data.formats.glue``, so validation and training agree on what a valid file is. The
reader stops at the first bad line; validation needs every line judged and the raw text of the
good ones, so it parses the files itself: tab separated, no quoting, blank lines skipped (as the
reader does), a header except CoLA's train/dev files. A validated file keeps the raw header and the
raw lines of valid rows, so it differs from its raw file only by removed lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xfm_pipeline.data.formats.glue import COLA_COLUMNS, GLUE_TASKS, GlueTaskSpec


@dataclass(frozen=True)
class GlueLayout:
    """What validation checks in one task's files."""

    task: str
    texts: tuple[str, ...]  # text columns (one or two sentences)
    label: str | None  # label column of train/dev files
    labels: tuple[str, ...] | None = None  # allowed label strings; None: regression (label_range) or no label
    label_range: tuple[float, float] | None = None


def layout_of(spec: GlueTaskSpec) -> GlueLayout:
    """The validation layout of a reader task spec (numeric labels are class indices "0".."C-1")."""
    texts = (spec.text_a,) + ((spec.text_b,) if spec.text_b else ())
    if spec.is_regression:
        return GlueLayout(spec.name, texts, spec.label, None, (0.0, 5.0))
    labels = tuple(str(i) for i in range(spec.num_labels)) if spec.numeric_labels else tuple(spec.label_names)
    return GlueLayout(spec.name, texts, spec.label, labels)


@dataclass
class GlueRow:
    """One data line."""

    line: int  # 1-based line number in the file
    raw: str  # the line as read (without its newline)
    fields: list[str]
    record: dict[str, object]  # column -> value; surplus fields under "_extra_fields"


@dataclass
class GlueFile:
    """A parsed GLUE partition."""

    partition: str  # "CoLA/train"
    layout: GlueLayout
    columns: list[str]
    header_raw: str | None  # the header line as read, None for header-less files
    rows: list[GlueRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # file-level problems (wrong header, unknown split, ...)

    @property
    def labelled(self) -> bool:
        """The file has the layout's label column."""
        return self.layout.label is not None and self.layout.label in self.columns

    @property
    def id_column(self) -> str | None:
        """The row-id column, when the file has one."""
        return next((c for c in ("index", "id") if c in self.columns), None)


def parse_glue(partition: str, text: str) -> GlueFile:
    """Parse one TSV partition (``"<TASK>/<split>"``) of the GLUE distribution."""
    task, _, split = partition.partition("/")
    key = {k.lower().replace("-", ""): k for k in GLUE_TASKS}.get(task.lower().replace("-", ""))
    spec = GLUE_TASKS.get(key) if key else None
    layout = layout_of(spec) if spec else GlueLayout(task, (), None)
    numbered = [(i + 1, raw) for i, raw in enumerate(text.split("\n")) if raw.strip()]
    errors = []
    if spec is None:
        errors.append(f"unknown GLUE task {task!r}; known: {sorted(GLUE_TASKS)}")
    elif split not in spec.splits:
        errors.append(f"unknown split {split!r} of {spec.name}; expected one of {list(spec.splits)}")
    expected = spec.header(split) if spec else None
    first = numbered[0][1].lstrip("\ufeff").rstrip("\r").split("\t") if numbered else []
    if spec is not None and expected is None:  # CoLA train/dev: no header line
        columns, header_raw, body = list(COLA_COLUMNS), None, numbered
        if tuple(first) == spec.test_header:
            errors.append(f"this is a CoLA test file (header {list(spec.test_header)}); name it test.tsv")
    else:
        columns, header_raw, body = first, (numbered[0][1] if numbered else None), numbered[1:]
        if expected is not None and tuple(c.strip() for c in first) != tuple(expected):
            errors.append(f"expected the header {list(expected)}, got {first}")
            columns = list(expected)
    if not numbered:
        errors.append("the file is empty")
    parsed = GlueFile(partition, layout, columns, header_raw, errors=errors)
    for line, raw in body:
        fields = raw.rstrip("\r").split("\t")
        record: dict[str, object] = dict(zip(columns, fields))
        if len(fields) > len(columns):
            record["_extra_fields"] = fields[len(columns) :]
        parsed.rows.append(GlueRow(line, raw, fields, record))
    return parsed


def render_glue(parsed: GlueFile, keep: list[int]) -> str:
    """The TSV text of ``parsed`` with only the rows at indices ``keep`` (header kept as read)."""
    lines = ([parsed.header_raw] if parsed.header_raw is not None else []) + [parsed.rows[i].raw for i in keep]
    return "".join(line + "\n" for line in lines)
