"""report pipeline wiring."""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.pipelines.finetune.pipeline import FINETUNE_PIPELINES
from xfm_pipeline.pipelines.report.nodes import build_report_site, build_results_table, draw_examples, plot_headline_metrics, plot_training_curves

# task -> data keys of the pipeline's validated records that its example pictures need
EXAMPLE_DATA = {
    "vqa": ("val", "test"),
    "retrieval": ("val", "test"),
    "grounding": ("refs",),
    "captioning": ("val", "test", "val_gt", "test_gt"),
}


def report_input(pipeline: str, kind: str) -> str:
    """A fine-tune output the report reads (``kind``: metrics | predictions | history).

    ``<pipeline>.<kind>`` itself (catalog_finetune.yml, an OptionalJSONDataset): in ``__default__`` it is
    a real edge, so the report runs after the fine-tunes; alone, a pipeline not run loads as None and
    the report lists it.
    """
    return f"{pipeline}.{kind}"


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """metrics, histories, predictions of every pipeline -> results.md/json + report/ (HTML, PNGs).

    Node names are ``report.<node>`` (``kedro run --pipelines report`` or ``--namespaces report``).
    The fine-tune outputs are inputs of the namespace (:func:`report_input`), so every runner orders the
    report after the pipelines that produce them.
    """
    examples = {name: (task, data) for name, (task, data) in FINETUNE_PIPELINES.items() if task in EXAMPLE_DATA}
    nodes = [
        Node(
            build_results_table,
            inputs={"pretrain": "pretrain_metrics", **{name: report_input(name, "metrics") for name in FINETUNE_PIPELINES}},
            outputs=["results_table", "results_json"],
            name="build_results_table",
        ),
        Node(
            plot_training_curves,
            inputs={"pretrain_history": "pretrain_history", **{name: report_input(name, "history") for name in FINETUNE_PIPELINES}},
            outputs="training_curves_section",
            name="plot_training_curves",
        ),
        Node(plot_headline_metrics, inputs={"results": "results_json"}, outputs="headline_section", name="plot_headline_metrics"),
        *(
            Node(
                update_wrapper(partial(draw_examples, pipeline=name, task=task), draw_examples),
                inputs={
                    "predictions": report_input(name, "predictions"),
                    "results": "results_json",
                    "image_root": "params:image_root",
                    **{key: data[key] for key in EXAMPLE_DATA[task] if key in data},
                },
                outputs=f"examples_section_{name}",
                name=f"draw_examples_{name}",
            )
            for name, (task, data) in examples.items()
        ),
        Node(
            build_report_site,
            inputs={
                "results": "results_json",
                "training": "training_curves_section",
                "headline": "headline_section",
                **{name: f"examples_section_{name}" for name in examples},
            },
            outputs="report_site",
            name="build_report_site",
        ),
    ]
    validated = {data[key] for _, (task, data) in examples.items() for key in EXAMPLE_DATA[task] if key in data}
    return Pipeline(
        nodes,
        namespace="report",  # nodes report.<name>; intermediate and tolerant inputs report.<dataset>
        inputs={"pretrain_metrics", "pretrain_history", *validated, *(report_input(name, kind) for name in FINETUNE_PIPELINES for kind in ("metrics", "predictions", "history") if kind != "predictions" or name in examples)},
        outputs={"results_table", "results_json", "report_site"},
        parameters={"params:image_root"},
    )
