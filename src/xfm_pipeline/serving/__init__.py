"""Trained task models in MLflow: logged as ``python_function`` models, registered as ``xfm-<pipeline>``, served
with ``mlflow models serve``.

* :func:`log_task_model`: a task checkpoint -> a logged, registered model (the tracking hook calls it for every
  fine-tune/eval pipeline's selected checkpoint).
* :func:`load_registered_predictor` / :func:`checkpoint_directory`: ``models:/xfm-vqa/latest`` -> a
  :class:`~xfm_pipeline.predict.Predictor` / the checkpoint directory.
* :class:`ScoringServer`: ``mlflow models serve`` of a model URI as a context manager (tests, benchmarks).

Nothing here imports MLflow until a function is called.
"""

from xfm_pipeline.serving.registry import checkpoint_directory, load_registered_predictor, log_task_model, registered_model_name
from xfm_pipeline.serving.server import ScoringServer, encode_image

__all__ = ["ScoringServer", "checkpoint_directory", "encode_image", "load_registered_predictor", "log_task_model", "registered_model_name"]
