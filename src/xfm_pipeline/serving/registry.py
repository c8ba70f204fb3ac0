"""Task checkpoints in the MLflow Model Registry: logged as ``python_function`` models, registered per pipeline,
and resolved back from ``models:/`` URIs.

Registered names: ``xfm-`` + the pipeline name without its ``finetune_`` prefix, underscores as hyphens
(:func:`registered_model_name`): ``finetune_vqa`` -> ``xfm-vqa``, ``finetune_retrieval_coco`` ->
``xfm-retrieval-coco``, ``finetune_glue_sst2`` -> ``xfm-glue-sst2``, ``eval_retrieval_zeroshot`` ->
``xfm-eval-retrieval-zeroshot``, ``linear_probe_imagenet`` -> ``xfm-linear-probe-imagenet``. One name per
pipeline, because one task (retrieval, GLUE, ImageNet) has several pipelines with different data and weights.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from xfm_pipeline.predict import Predictor

CHECKPOINT_ARTIFACT = "checkpoint"  # the logged model's artifact key of the task checkpoint directory
FINGERPRINT_TAG = "xfm.checkpoint_md5"  # model version tag: the checkpoint's fingerprint (checkpoint_fingerprint)
DISTRIBUTION = "xfm_pipeline"  # the installed project, whose runtime requirements a logged model declares
MODEL_CODE = Path(__file__).with_name("model_code.py")  # copied into every logged model ("model from code")


def registered_model_name(pipeline: str) -> str:
    """The registered model of a fine-tune/eval pipeline, e.g. ``finetune_vqa`` -> ``xfm-vqa``."""
    return "xfm-" + pipeline.removeprefix("finetune_").replace("_", "-")


def pip_requirements() -> list[str]:
    """The project's runtime requirements as pinned in ``pyproject.toml`` (``torch==2.14.1``, ...), read from the
    installed distribution; test extras left out."""
    from importlib.metadata import requires

    return [r for r in requires(DISTRIBUTION) or [] if "extra ==" not in r]


def checkpoint_fingerprint(directory: str | Path) -> str:
    """MD5 over the relative path and MD5 of every file of a checkpoint directory (weights, config, tokenizer)."""
    import hashlib

    from xfm_pipeline.tracking import file_md5

    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    listing = "".join(f"{p.relative_to(directory).as_posix()}\t{file_md5(p)}\n" for p in files)
    return hashlib.md5(listing.encode()).hexdigest()  # noqa: S324 - content fingerprint


def log_task_model(checkpoint: str | Path, pipeline: str, run_id: str, tracking_uri: str | None = None) -> ModelVersion:
    """Log the task checkpoint directory of ``pipeline`` as an MLflow model of run ``run_id`` and register it,
    unless a version of :func:`registered_model_name` (``pipeline``) holds the same checkpoint already.

    A version is tagged with its checkpoint's fingerprint (``xfm.checkpoint_md5``): a rerun that reuses a finished
    training run saves the same bytes and gets the existing version back, with nothing logged (the version stays
    linked to the run that first logged it). Otherwise the checkpoint becomes the model's ``checkpoint`` artifact
    (copied into the MLflow store once), with the task's signature and input example (``serving.signature``) and
    the project's pinned requirements. On logging, MLflow loads the model and predicts its input example (a check
    that it serves). The run is resumed for the logging and ended again (``FINISHED``); the tracking hook sets its
    final status when the Kedro run ends.

    Returns:
        The version holding the checkpoint: new and linked to ``run_id``, or the earlier one with the same fingerprint.
    """
    import mlflow

    from xfm_pipeline.predict import schema_of
    from xfm_pipeline.serving.signature import input_example, model_signature
    from xfm_pipeline.tasks.registry import get_pipeline
    from xfm_pipeline.tracking import tracking_uri as default_uri

    uri = tracking_uri or default_uri()
    task = get_pipeline(pipeline)[0].name
    schema = schema_of(task)
    name = registered_model_name(pipeline)
    client = mlflow.MlflowClient(uri)
    fingerprint = checkpoint_fingerprint(checkpoint)
    same = client.search_model_versions(f"name = '{name}' and tags.`{FINGERPRINT_TAG}` = '{fingerprint}'")
    if same:
        return max(same, key=lambda v: int(v.version))
    with _process_tracking_uri(uri), mlflow.start_run(run_id=run_id):  # the model goes to the run's experiment
        info = mlflow.pyfunc.log_model(
            name=pipeline,
            python_model=str(MODEL_CODE),
            artifacts={CHECKPOINT_ARTIFACT: str(Path(checkpoint).resolve())},
            signature=model_signature(schema),
            input_example=input_example(schema),
            pip_requirements=pip_requirements(),
            registered_model_name=name,
            tags={"xfm.pipeline": pipeline, "xfm.task": task, FINGERPRINT_TAG: fingerprint},
        )
    client.update_registered_model(name, description=f"{pipeline} ({task}): {schema.summary}")
    return client.get_model_version(name, str(info.registered_model_version))


@contextlib.contextmanager
def _process_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking URI (``mlflow.set_tracking_uri``, which also exports
    ``MLFLOW_TRACKING_URI``) set to ``uri`` for the block, then back to the variable's previous value."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # None: unset


def checkpoint_directory(model_uri: str, tracking_uri: str | None = None, dst_path: str | None = None) -> Path:
    """The task checkpoint directory inside the logged model ``model_uri`` (``models:/xfm-vqa/latest``,
    ``models:/xfm-vqa/3``, ``runs:/...``, or a local model directory).

    A local store's model is used where it lies; a remote one is downloaded (into ``dst_path``, default a
    temporary directory).

    Raises:
        ValueError: the model has no ``checkpoint`` artifact (not a model logged by :func:`log_task_model`).
    """
    import mlflow
    from mlflow.models import Model

    from xfm_pipeline.tracking import tracking_uri as default_uri

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst_path, tracking_uri=tracking_uri or default_uri()))
    artifacts = Model.load(str(local)).flavors.get("python_function", {}).get("artifacts") or {}
    if CHECKPOINT_ARTIFACT not in artifacts:
        raise ValueError(f"{model_uri}: not an X-FM task model (no {CHECKPOINT_ARTIFACT!r} artifact; found {sorted(artifacts)})")
    return local / artifacts[CHECKPOINT_ARTIFACT]["path"]


def load_registered_predictor(model_uri: str, device: str | None = None, tracking_uri: str | None = None) -> Predictor:
    """:func:`~xfm_pipeline.predict.load_predictor` on the checkpoint of a logged model (see :func:`checkpoint_directory`)."""
    from xfm_pipeline.predict import load_predictor

    return load_predictor(checkpoint_directory(model_uri, tracking_uri), device=device)
