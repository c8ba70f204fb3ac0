"""Model-test fixtures: the official X-FM base checkpoint's key table (tests/fixtures)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

OFFICIAL_KEYS = Path(__file__).resolve().parent.parent / "fixtures" / "xfm_base_state_dict_keys.tsv"


@pytest.fixture(scope="session")
def official_key_shapes() -> dict[str, tuple[int, ...]]:
    """``{state-dict key: shape}`` of the official X-FM base checkpoint (771 tensors; the table was recorded
    from the released ``.th`` file, so the tests need neither the file nor a download)."""
    with OFFICIAL_KEYS.open(newline="") as table:
        return {row["name"]: tuple(json.loads(row["shape"])) for row in csv.DictReader(table, delimiter="\t")}
