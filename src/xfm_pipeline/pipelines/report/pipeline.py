"""report pipeline wiring: every registered task pipeline's outputs -> results table and HTML report."""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from xfm_pipeline.pipelines.finetune.pipeline import output_dataset
from xfm_pipeline.pipelines.report.nodes import (
    build_report_site,
    build_results_table,
    compute_blind_baselines,
    draw_examples,
    plot_ablation,
    plot_headline_metrics,
    plot_training_curves,
    write_dvc_scores,
)
from xfm_pipeline.tasks.registry import PIPELINES

PRETRAINING = ("pretrain_vision", "pretrain", "pretrain_bbox")  # stages whose final losses are DVC metrics


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001 - Kedro's signature
    """metrics, histories, predictions of every pipeline, the validated data (blind baselines) and the
    ablation table -> results.md/json, report/ (HTML, PNGs) and scores/ (DVC metrics).

    Node names are ``report.<node>`` (``kedro run --pipelines report`` or ``--namespaces report``).
    The fine-tune outputs (``<pipeline>_metrics`` ...) are inputs of the namespace, so every runner orders
    the report after the pipelines that produce them; alone, a pipeline not run loads as None
    (OptionalJSONDataset) and the report lists it; so does ``ablation_table`` until the ablation has run.
    Pipelines whose task spec has ``examples`` get pictures.
    """
    drawn = {name: (spec, pipe) for name, (spec, pipe) in PIPELINES.items() if spec.examples is not None}
    data = sorted({dataset for _, pipe in PIPELINES.values() for dataset in pipe.data.values()})
    nodes = [
        Node(compute_blind_baselines, inputs={dataset: dataset for dataset in data}, outputs="blind_baselines", name="compute_blind_baselines"),
        Node(
            build_results_table,
            inputs={
                "pretrain": "pretrain_metrics",
                "blind": "blind_baselines",
                "ablation": "ablation_table",
                **{name: output_dataset(name, "metrics") for name in PIPELINES},
            },
            outputs=["results_table", "results_json"],
            name="build_results_table",
        ),
        Node(plot_ablation, inputs={"results": "results_json"}, outputs="ablation_section", name="plot_ablation"),
        Node(
            write_dvc_scores,
            inputs={"results": "results_json", **{stage: f"{stage}_metrics" for stage in PRETRAINING}},
            outputs="dvc_scores",
            name="write_dvc_scores",
        ),
        Node(
            plot_training_curves,
            inputs={"pretrain_history": "pretrain_history", **{name: output_dataset(name, "history") for name in PIPELINES}},
            outputs="training_curves_section",
            name="plot_training_curves",
        ),
        Node(plot_headline_metrics, inputs={"results": "results_json"}, outputs="headline_section", name="plot_headline_metrics"),
        *(
            Node(
                update_wrapper(partial(draw_examples, pipeline=name), draw_examples),
                inputs={
                    "predictions": output_dataset(name, "predictions"),
                    "results": "results_json",
                    "image_root": "params:image_root",
                    **{key: pipe.data[key] for key in spec.examples.data if key in pipe.data},
                },
                outputs=f"examples_section_{name}",
                name=f"draw_examples_{name}",
            )
            for name, (spec, pipe) in drawn.items()
        ),
        Node(
            build_report_site,
            inputs={
                "results": "results_json",
                "training": "training_curves_section",
                "headline": "headline_section",
                "ablation": "ablation_section",
                **{name: f"examples_section_{name}" for name in drawn},
            },
            outputs="report_site",
            name="build_report_site",
        ),
    ]
    outputs = {output_dataset(name, kind) for name in PIPELINES for kind in ("metrics", "history")}
    return Pipeline(
        nodes,
        namespace="report",  # nodes report.<name>; intermediate datasets report.<dataset>
        inputs={
            "pretrain_history",
            "ablation_table",
            *(f"{stage}_metrics" for stage in PRETRAINING),
            *data,
            *outputs,
            *(output_dataset(name, "predictions") for name in drawn),
        },
        outputs={"results_table", "results_json", "report_site", "dvc_scores"},
        parameters={"params:image_root"},
    )
