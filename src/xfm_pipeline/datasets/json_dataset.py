"""A local JSON dataset that may not exist yet: the outputs of pipelines a user has not run."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class OptionalJSONDataset(AbstractDataset[Any, Any]):
    """A JSON file; ``load()`` gives None when it does not exist, ``save()`` replaces it atomically.

    Used for the metrics, predictions and history of every fine-tune/eval pipeline: in ``__default__``
    the report consumes them as real DAG edges (it runs after the fine-tunes), while ``kedro run
    --pipeline report`` alone lists the pipelines not run instead of failing on the first one.
    """

    def __init__(self, filepath: str, indent: int | None = 2, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self._indent = indent
        self.metadata = metadata

    def load(self) -> Any:
        if not self._filepath.is_file():
            return None
        with open(self._filepath, encoding="utf-8") as fh:
            return json.load(fh)

    def save(self, data: Any) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self._filepath.name}.", dir=self._filepath.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=self._indent)
            os.replace(tmp, self._filepath)  # readers see the old file or the new one, never a half
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "missing_ok": True}
