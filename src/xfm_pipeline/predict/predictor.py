""":func:`load_predictor` and :class:`Predictor`: a task checkpoint answering raw input records."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfm_pipeline.predict.inputs import PredictionInputError, check_record

if TYPE_CHECKING:
    import torch

    from xfm_pipeline.predict.base import Loaded, TaskAdapter
    from xfm_pipeline.predict.schema import TaskSchema


class Predictor:
    """A loaded task checkpoint with a batched :meth:`predict` on raw input records (see the package docs)."""

    def __init__(self, loaded: Loaded, adapter: TaskAdapter, source: str):
        self._loaded = loaded
        self._adapter = adapter
        self.source = source  # the checkpoint directory it was loaded from

    def __repr__(self) -> str:
        return f"Predictor(task={self.task!r}, source={self.source!r}, device={str(self.device)!r})"

    @property
    def task(self) -> str:
        """The registered task of the checkpoint (``tasks.registry`` key), e.g. ``"vqa"``."""
        return self._loaded.task.name

    @property
    def schema(self) -> TaskSchema:
        """The input and output record formats of :attr:`task` (``TASK_SCHEMAS[task]``)."""
        from xfm_pipeline.predict.registry import schema_of

        return schema_of(self.task)

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return self._loaded.device

    @property
    def model(self):
        """The task model (eval mode, on :attr:`device`), for inspection; :meth:`predict` is the way to run it."""
        return self._loaded.model

    @property
    def batch_size(self) -> int:
        """The default batch size: the checkpoint's ``eval_batch_size``."""
        return int(self._loaded.params.eval_batch_size)

    def check(self, record: Any, index: int = 0) -> dict[str, Any]:
        """``record`` checked against :attr:`schema` and the task's own rules; returns it with its images
        decoded (RGB ``PIL.Image``).

        Raises:
            PredictionInputError: naming ``index`` and the problem.
        """
        checked = check_record(record, index, self.schema)
        try:
            self._adapter.check(checked)
        except ValueError as exc:
            raise PredictionInputError(index, str(exc)) from exc
        return checked

    def predict(self, records: list[dict[str, Any]], batch_size: int | None = None) -> list[dict[str, Any]]:
        """One JSON-ready output per record, in order (formats: :attr:`schema`).

        Every record is checked first, so a bad one fails the call before any model work. An input ``id`` is
        copied into its output.

        Raises:
            PredictionInputError: a bad record (its index and the problem); ``records`` not a list.
            ValueError: ``batch_size`` < 1.
        """
        import torch

        if not isinstance(records, (list, tuple)):
            raise PredictionInputError(0, f"predict takes a list of records, got {type(records).__name__}")
        batch_size = self.batch_size if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        checked = [self.check(record, i) for i, record in enumerate(records)]
        if not checked:
            return []
        with torch.no_grad():
            outputs = self._adapter.run(self._loaded, checked, batch_size)
        return [{"id": rec["id"], **out} if "id" in rec else out for rec, out in zip(checked, outputs, strict=True)]


def default_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_predictor(source: str | Path, device: str | torch.device | None = None, task: str | None = None) -> Predictor:
    """Load the task checkpoint directory ``source`` for prediction.

    Args:
        source: a task checkpoint directory (``config.json``, ``model.safetensors``, ``tokenizer/``).
        device: where to run (default: ``cuda`` when available, else ``cpu``).
        task: the registered task the caller expects (None: whichever the checkpoint holds).

    Raises:
        FileNotFoundError: ``source`` is not a directory with a ``config.json``.
        CheckpointError: not a task checkpoint, a task other than ``task``, or a checkpoint lacking what
            inference needs (an ImageNet checkpoint without class names, a VQA one without its answer list).
    """
    import torch

    from xfm_pipeline.model.checkpoint import CheckpointError, load_checkpoint_tokenizer
    from xfm_pipeline.model.encoder_cache import FrozenEncodings
    from xfm_pipeline.predict.base import Loaded
    from xfm_pipeline.predict.registry import adapter_for
    from xfm_pipeline.tasks.checkpoint import checkpoint_task, load_task_checkpoint, load_task_params
    from xfm_pipeline.tasks.registry import get_task

    directory = Path(source)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"{directory}: not a checkpoint directory (no config.json)")
    found = checkpoint_task(directory)
    if task is not None and found != task:
        raise CheckpointError(f"{directory} holds a {found!r} checkpoint, not {task!r}")
    adapter = adapter_for(found)
    params = load_task_params(directory)
    adapter.check_checkpoint(params, str(directory))
    resolved = torch.device(device if device is not None else default_device())
    model = load_task_checkpoint(directory).to(resolved).eval()
    model.encodings = FrozenEncodings(max_rows=0)  # no encoder outputs kept between calls (inputs change)
    loaded = Loaded(get_task(found), model, params, load_checkpoint_tokenizer(directory), resolved)
    return Predictor(loaded, adapter, str(directory))
