"""The MLflow ``python_function`` flavour of a task checkpoint: :class:`XFMPythonModel` wraps
:class:`xfm_pipeline.predict.Predictor`.

The model's one artifact, ``checkpoint``, is the task checkpoint directory; ``load_context`` hands it to
:func:`~xfm_pipeline.predict.load_predictor`. ``predict`` takes a DataFrame of input records (one row per record,
columns = the task's input fields, images as base64 text: what the scoring server builds from a request's
``dataframe_records``) and returns one output record per row. A bad record is an
:class:`~mlflow.exceptions.MlflowException` with ``INVALID_PARAMETER_VALUE``, which the scoring server answers with
HTTP 400 and the predictor's message (``record <index>: ...``).
"""

from __future__ import annotations

import math
from typing import Any

import mlflow
import pandas as pd

from xfm_pipeline.serving.registry import CHECKPOINT_ARTIFACT


def _native(value: Any) -> Any:
    """A DataFrame cell as a plain Python value: numpy scalars and arrays to Python ones, lists recursively."""
    if hasattr(value, "tolist"):  # numpy scalar or array
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_native(v) for v in value]
    return value


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def dataframe_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per row; missing cells (an optional field some rows lack) are left out of the record."""
    records = []
    for row in frame.to_dict(orient="records"):
        record = {}
        for name, value in row.items():
            value = _native(value)
            if not _missing(value):
                record[str(name)] = value
        records.append(record)
    return records


class XFMPythonModel(mlflow.pyfunc.PythonModel):
    """A task checkpoint served through :class:`~xfm_pipeline.predict.Predictor`."""

    def load_context(self, context) -> None:
        """Load the ``checkpoint`` artifact (on CUDA when available)."""
        from xfm_pipeline.predict import load_predictor

        self.predictor = load_predictor(context.artifacts[CHECKPOINT_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:  # noqa: ARG002 - pyfunc signature
        """One output record per input row, in order (formats: ``Predictor.schema``).

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE with the predictor's message, for a bad record.
        """
        from mlflow.exceptions import MlflowException

        from xfm_pipeline.predict import PredictionInputError

        records = dataframe_records(model_input) if isinstance(model_input, pd.DataFrame) else model_input
        try:
            return self.predictor.predict(records)
        except PredictionInputError as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from exc
