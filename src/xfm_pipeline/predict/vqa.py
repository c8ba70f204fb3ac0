"""VQA: an image and a question -> the best answer of the checkpoint's answer list, with the top-k and their
log-likelihoods (``tasks.vqa``: its dataset, collate and answer ranking)."""

from __future__ import annotations

from typing import Any

from xfm_pipeline.predict.base import Loaded, TaskAdapter, eval_loader, image_store
from xfm_pipeline.predict.schema import ID_FIELD, ID_OUTPUT, IMAGE_PLACEHOLDER, Field, TaskSchema

DEFAULT_TOP_K = 5  # answers returned per question unless the record says otherwise


class VQAAdapter(TaskAdapter):
    """Records ``{"image", "question", "top_k"?}`` through :class:`~xfm_pipeline.tasks.vqa.VQADataset`."""

    @property
    def schema(self) -> TaskSchema:
        return TaskSchema(
            task=self.task.name,
            summary="answer a question about an image (ranking the checkpoint's answer list)",
            inputs=(
                Field("image", "image", "the image"),
                Field("question", "text", "the question about the image"),
                Field("top_k", "integer", f"answers to return (default {DEFAULT_TOP_K}; at most the checkpoint's options.k_test)", required=False),
                ID_FIELD,
            ),
            outputs=(
                Field("answer", "text", "the most likely answer (the fine-tune pipeline's prediction)"),
                Field("answers", "text_list", "the top-k answers, best first"),
                Field("scores", "number_list", "their log-likelihoods under the answer decoder"),
                ID_OUTPUT,
            ),
            example={"image": IMAGE_PLACEHOLDER, "question": "what colour is the circle?"},
        )

    def check(self, record: dict[str, Any]) -> None:
        if record.get("top_k", 1) < 1:
            raise ValueError(f"field 'top_k' must be >= 1, got {record['top_k']}")

    def check_checkpoint(self, params, source: str) -> None:
        from xfm_pipeline.model.checkpoint import CheckpointError

        if not params.options.get("answer_list"):
            raise CheckpointError(
                f"{source}: this VQA checkpoint stores no answer list (options.answer_list); it was written before task "
                "checkpoints kept it. Re-run `kedro run --pipeline finetune_vqa` to write one that does."
            )

    def run(self, loaded: Loaded, records: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
        from xfm_pipeline.data.formats.vqa import VQARecord
        from xfm_pipeline.tasks.vqa import VQADataset, collate_vqa

        task, params = loaded.task, loaded.params
        store, keys = image_store([r["image"] for r in records])
        questions = [VQARecord(image=key, question=r["question"], answer=(), question_id=i) for i, (key, r) in enumerate(zip(keys, records))]
        answer_list = task.answer_list(params, {})
        dataset = VQADataset(questions, loaded.tokenizer, params, task.options(params), store, False, answer_list, "predict/vqa")
        top_k = [r.get("top_k", DEFAULT_TOP_K) for r in records]
        rows = task.answers(loaded.model, eval_loader(dataset, collate_vqa, batch_size), params, top_k=max(top_k))
        by_id = {row["question_id"]: row for row in rows}
        return [{"answer": by_id[i]["answer"], "answers": by_id[i]["answers"][:k], "scores": by_id[i]["scores"][:k]} for i, k in enumerate(top_k)]
