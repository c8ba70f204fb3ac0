"""GLUE: a text (or a text pair) -> the class name, or STS-B's similarity score (``tasks.glue``)."""

from __future__ import annotations

from typing import Any

from xfm_pipeline.predict.base import Loaded, TaskAdapter, eval_loader
from xfm_pipeline.predict.schema import ID_FIELD, ID_OUTPUT, Field, TaskSchema


class GlueAdapter(TaskAdapter):
    """Records ``{"text_a", "text_b"?}`` through :class:`~xfm_pipeline.tasks.glue.GlueDataset`."""

    @property
    def schema(self) -> TaskSchema:
        spec = self.task.spec
        pair = spec.text_b is not None
        inputs = [Field("text_a", "text", f"the first text (GLUE column {spec.text_a!r})" if pair else f"the text (GLUE column {spec.text_a!r})")]
        if pair:
            inputs.append(Field("text_b", "text", f"the second text (GLUE column {spec.text_b!r})"))
        if spec.is_regression:
            outputs = (Field("prediction", "number", "the predicted score (STS-B: similarity, 0 to 5)"),)
        else:
            names = ", ".join(f"{i} {name}" for i, name in enumerate(spec.label_names))
            outputs = (Field("prediction", "integer", f"the class index ({names})"), Field("label", "text", "the class name"))
        example = {"text_a": "a red circle is left of a blue square"}
        if pair:
            example["text_b"] = "a blue square is right of a red circle"
        return TaskSchema(
            task=self.task.name,
            summary=f"GLUE {spec.name}: " + ("score a sentence pair" if spec.is_regression else "classify a " + ("sentence pair" if pair else "sentence")),
            inputs=(*inputs, ID_FIELD),
            outputs=(*outputs, ID_OUTPUT),
            example=example,
        )

    def run(self, loaded: Loaded, records: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
        from xfm_pipeline.data.formats.glue import GlueExample
        from xfm_pipeline.tasks.glue import GlueDataset, collate_glue

        task, params, spec = loaded.task, loaded.params, loaded.task.spec
        examples = [GlueExample(spec.name, "predict", str(i), r["text_a"], r.get("text_b"), None) for i, r in enumerate(records)]
        dataset = GlueDataset(examples, loaded.tokenizer, params.max_tokens, spec.is_regression)
        by_guid = {row["guid"]: row["prediction"] for row in task.predict(loaded.model, eval_loader(dataset, collate_glue, batch_size), params)}
        predictions = [by_guid[str(i)] for i in range(len(records))]
        if spec.is_regression:
            return [{"prediction": p} for p in predictions]
        return [{"prediction": p, "label": spec.label_names[p]} for p in predictions]
