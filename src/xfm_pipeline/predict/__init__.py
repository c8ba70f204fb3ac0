"""Use a trained task model: load a task checkpoint and predict on raw inputs.

::

    from xfm_pipeline.predict import load_predictor

    predictor = load_predictor("data/06_models/finetune_vqa")  # any task checkpoint directory
    predictor.task                                            # "vqa"
    predictor.predict([{"image": "photo.jpg", "question": "what colour is the circle?"}])
    # [{"answer": "red", "answers": ["red", "blue", ...], "scores": [-0.02, -4.1, ...]}]

API (stable):

* :func:`load_predictor(source, device=None, task=None) <load_predictor>` -> :class:`Predictor`. ``source`` is a
  task checkpoint directory (``model.safetensors`` + ``config.json`` + ``tokenizer/``, as every
  ``finetune_<task>`` pipeline writes to ``data/06_models/<pipeline>``). ``device``: ``"cuda"`` when available,
  else ``"cpu"``, unless given. ``task``: the task the caller expects; another task in the checkpoint is an
  error. (A registered-model URI is resolved by the caller to a checkpoint directory first.)
* :attr:`Predictor.task` (registry key, e.g. ``"vqa"``, ``"glue_mnli"``), :attr:`Predictor.schema`
  (its :class:`TaskSchema`), :attr:`Predictor.device`, :attr:`Predictor.source`.
* :meth:`Predictor.predict(records, batch_size=None) <Predictor.predict>` -> one JSON-ready dict per record, in
  order. Records are plain dicts of raw inputs (:data:`TASK_SCHEMAS`); images may be file paths, bytes,
  ``PIL.Image`` objects or base64 text. Every record is checked before any model work; a bad one raises
  :class:`PredictionInputError` naming its index and the problem. ``batch_size`` defaults to the checkpoint's
  ``eval_batch_size``. The model runs in eval mode without gradients, through the task's own dataset, collate
  and predict code, so a record gives what the fine-tune pipeline's evaluation gives for it.
* :meth:`Predictor.check(record, index=0) <Predictor.check>` validates one record without predicting (raises
  :class:`PredictionInputError`); the ``predict_<task>`` pipelines use it to quarantine bad records.
* :data:`TASK_SCHEMAS`: ``{task: TaskSchema}`` for every registered task: input fields, output fields (name,
  type, description, required, list length) and an example input record
  (:meth:`TaskSchema.example_record(image) <TaskSchema.example_record>` fills in an image);
  :func:`schema_of(task) <schema_of>` looks one up. Field types and their MLflow column types:
  :mod:`xfm_pipeline.predict.schema`.

Per task (inputs -> outputs; every task also takes an optional ``id``, copied to the output):

* ``vqa``: ``image``, ``question``, optional ``top_k`` (default 5) -> ``answer``, ``answers`` (top-k, best
  first) and their ``scores`` (answer log-likelihoods).
* ``captioning``: ``image`` -> ``caption``.
* ``retrieval``, one of three query shapes: ``image`` + ``text`` -> ``itc`` (ITC logit), ``itm`` (ITM match
  logit), ``itm_prob``; ``image`` + ``texts`` (a gallery) -> ``top`` (indices into ``texts``, best first) and
  ``scores``; ``text`` + ``images`` -> the same over ``images``. Optional ``top_k`` (default 10).
* ``nlvr``: ``images`` (left, right), ``sentence`` -> ``prediction`` (bool), ``prob_true``.
* ``grounding``: ``image``, ``text`` -> ``bbox`` ([x, y, w, h] in pixels of the input image),
  ``bbox_normalized`` (the same as fractions of its width and height), ``image_size`` ([width, height]).
* ``glue_<task>``: ``text_a`` (and ``text_b`` for pair tasks: MRPC, QQP, STS-B, MNLI, QNLI, RTE) ->
  ``prediction`` (class index; STS-B: the score) and ``label`` (class name; not for STS-B).
* ``imagenet``, ``imagenet_linear_probe``: ``image`` -> ``label`` (class name), ``topk`` (class indices),
  ``topk_labels``, ``topk_scores`` (logits). The checkpoint stores its class names (``options.classes``).

Batch inference and evaluation-only runs as Kedro pipelines: ``predict_<task>`` and ``evaluate_<pipeline>``
(``xfm_pipeline.pipelines.predict`` and ``.evaluate``; docs/predict.md).
"""

from xfm_pipeline.predict.inputs import PredictionInputError
from xfm_pipeline.predict.predictor import Predictor, load_predictor
from xfm_pipeline.predict.registry import TASK_SCHEMAS, schema_of
from xfm_pipeline.predict.schema import FIELD_TYPES, IMAGE_PLACEHOLDER, Field, TaskSchema

__all__ = [
    "FIELD_TYPES",
    "IMAGE_PLACEHOLDER",
    "TASK_SCHEMAS",
    "Field",
    "PredictionInputError",
    "Predictor",
    "TaskSchema",
    "load_predictor",
    "schema_of",
]
