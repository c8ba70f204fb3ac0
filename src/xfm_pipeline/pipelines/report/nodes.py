"""Nodes of the report pipeline: thin wrappers over :mod:`xfm_pipeline.reporting`.

Inputs of a pipeline that has not been run arrive as None (``OptionalJSONDataset``); every node says
so in its output ("not run") instead of failing or dropping it silently.

A *section* passed between nodes is ``{"pictures": [{"file"?: str, "caption": str, "png": bytes}],
"notes": [str]}``; :func:`build_report_site` names the files and writes the page.
"""

from __future__ import annotations

from typing import Any

NOT_RUN = "not run: no predictions saved"


def _not_run(metrics: dict[str, Any]) -> list[str]:
    return sorted(name for name, value in metrics.items() if value is None)


def compute_blind_baselines(**datasets: Any) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """pipeline -> split -> its task's blind baselines (:mod:`xfm_pipeline.reporting.blind`), in percent.

    ``datasets``: catalog name -> loaded validated records, for every dataset a registered pipeline reads.
    """
    from xfm_pipeline.reporting.blind import blind_baselines
    from xfm_pipeline.tasks.registry import PIPELINES

    return {name: blind_baselines(spec, {key: datasets[dataset] for key, dataset in pipe.data.items()}) for name, (spec, pipe) in PIPELINES.items()}


def build_results_table(
    pretrain: dict[str, Any], blind: dict[str, Any], ablation: dict[str, Any] | None, **metrics: dict[str, float] | None
) -> tuple[str, dict[str, Any]]:
    """``results.md`` and ``results.json``: the summary (one row per registered pipeline: headline metric, blind
    baselines, gain from pretraining, paper), the ablation, every metric of every split, the pretraining losses.

    A pipeline whose metrics are None (not run) has no rows; it is listed under "Pipelines not run" in the
    markdown and in ``not_run`` in the JSON. ``ablation`` is the ``ablation_table`` dataset, None until
    ``kedro run --pipeline ablation`` has written it.

    Raises:
        ValueError: ``ablation`` is not an ablation table (:func:`xfm_pipeline.reporting.ablation.check_ablation`).
    """
    from xfm_pipeline.reporting.ablation import check_ablation
    from xfm_pipeline.reporting.summary import summary_rows
    from xfm_pipeline.reporting.table import report_markdown, results_rows
    from xfm_pipeline.tasks.registry import PIPELINES

    not_run = _not_run(metrics)
    fractions = {name for name, (spec, _) in PIPELINES.items() if spec.fraction}
    paper = {name: pipe.paper for name, (_, pipe) in PIPELINES.items()}
    rows = results_rows({name: value for name, value in metrics.items() if value is not None}, fractions, paper)
    ablation = check_ablation(ablation) if ablation is not None else None
    tasks = {name: (spec.headline_metric, pipe.paper) for name, (spec, pipe) in PIPELINES.items() if name in metrics}
    summary = summary_rows(rows, tasks, blind, ablation)
    losses = pretrain.get("losses", {})
    markdown = report_markdown(summary, rows, ablation, not_run, losses)
    return markdown, {"summary": summary, "rows": rows, "ablation": ablation, "pretrain": pretrain, "not_run": not_run}


def plot_training_curves(pretrain_history: list[dict[str, Any]] | None, **histories: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Section "Training curves": pretraining loss per objective, fine-tuning loss per pipeline.

    The pretraining history is the ``pretrain_history`` catalog dataset
    (``data/08_reporting/pretrain_history.json``), not MLflow's store: the same numbers are logged to
    MLflow (``MlflowClient().get_metric_history``), but reading the catalog keeps the report
    reproducible without MLflow (``XFM_MLFLOW=0``, DVC runs, a fresh clone).
    """
    from xfm_pipeline.reporting.plots import finetune_loss_curves, pretrain_loss_curves

    pictures, notes = [], []
    png = pretrain_loss_curves(pretrain_history)
    if png:
        pictures.append({"file": "plots/pretrain_losses.png", "caption": "Pretraining loss per objective, one line per corpus", "png": png})
    else:
        notes.append("pretrain: no loss history (pipeline not run or history empty)")
    png = finetune_loss_curves(histories)
    if png:
        pictures.append({"file": "plots/finetune_losses.png", "caption": "Fine-tuning training loss per pipeline", "png": png})
    for name in sorted(histories):
        if histories[name] is None:
            notes.append(f"{name}: not run (no training history saved)")
        elif not any(k.startswith("train/loss") for r in histories[name] for k in r):
            notes.append(f"{name}: no training steps (evaluation only)")
    return {"pictures": pictures, "notes": notes}


def plot_headline_metrics(results: dict[str, Any], pipelines: list[str] | None = None) -> dict[str, Any]:
    """Section "Headline metrics": one bar per pipeline of the summary (its task's selection metric, in
    percent) with its strongest blind baseline marked; pipelines not run get a labelled empty row.
    ``pipelines``: the pipelines to show (default: every summary row)."""
    from xfm_pipeline.reporting.plots import metric_bars
    from xfm_pipeline.reporting.summary import strongest_blind

    summary = [row for row in results.get("summary", []) if pipelines is None or row["pipeline"] in pipelines]
    entries, notes = [], []
    for row in summary:
        if row["value"] is not None:
            entries.append((row["pipeline"], row["metric"], row["value"]))
        else:
            entries.append((row["pipeline"], None, None))
            notes.append(f"{row['pipeline']}: {'no headline metric among its metrics' if row['ran'] else 'not run (no metrics saved)'}")
    png = metric_bars(entries, blind=[strongest_blind(row) for row in summary])
    caption = (
        "Headline (checkpoint-selection) metric per pipeline, test split when it has one, in percent (GLUE and ImageNet "
        "fractions x100); the red line on a bar is the task's strongest blind baseline"
    )
    return {"pictures": [{"file": "plots/headline_metrics.png", "caption": caption, "png": png}], "notes": notes}


def plot_ablation(results: dict[str, Any]) -> dict[str, Any]:
    """Section "Gain from pretraining": the ablation's grouped bar chart, or a note saying how to run it."""
    from xfm_pipeline.reporting.ablation import ablation_png
    from xfm_pipeline.reporting.summary import RUN_ABLATION

    table = results.get("ablation")
    if table is None:
        return {"pictures": [], "notes": [f"The ablation has not been run: {RUN_ABLATION} (not part of the default run)."]}
    if not table["tasks"]:
        return {"pictures": [], "notes": ["The ablation table has no task."]}
    caption = "Headline metric fine-tuned from each start: mean over seeds, the error bar one standard deviation"
    return {"pictures": [{"file": "plots/ablation.png", "caption": caption, "png": ablation_png(table)}], "notes": []}


def write_dvc_scores(results: dict[str, Any], **pretraining: dict[str, Any] | None) -> dict[str, str]:
    """The DVC metrics directory (:mod:`xfm_pipeline.reporting.scores`): per pipeline its headline metric per
    split, per pretraining stage (``pretraining``: stage -> its metrics) the final loss of each corpus."""
    from xfm_pipeline.reporting.scores import dvc_scores

    return dvc_scores(results.get("summary", []), results.get("rows", []), pretraining)


def draw_examples(predictions: dict[str, list] | None, results: dict[str, Any], image_root: str, *, pipeline: str, **data: Any) -> dict[str, Any]:
    """Section "Examples: <pipeline>": a few predictions drawn on their images by the drawer its task spec
    names (``TaskSpec.examples``), with the pipeline's headline metric from ``results``.

    ``data`` holds the validated records the task was evaluated on (the spec's example data keys);
    ``image_root`` is ``params:image_root``, the root the fine-tune pipelines read images from.
    Taking ``results`` (``results_json``) also places this node after the metrics table.
    """
    from xfm_pipeline.reporting import examples as ex
    from xfm_pipeline.reporting.drawing import png_bytes
    from xfm_pipeline.reporting.headline import headline
    from xfm_pipeline.tasks.registry import get_pipeline

    if predictions is None:
        return {"pictures": [], "notes": [NOT_RUN]}
    spec, _ = get_pipeline(pipeline)
    if spec.examples is None:
        raise ValueError(f"{pipeline}: task {spec.name!r} has no example drawer (TaskSpec.examples)")
    examples = getattr(ex, spec.examples.drawer)(predictions, data, image_root)
    metrics = {r["metric"]: r["value"] for r in results.get("rows", []) if r["pipeline"] == pipeline}
    found = headline(spec.headline_metric, metrics, in_percent=True)  # rows are in percent
    notes = [f"headline metric {found[0]} = {found[1]:.2f}"] if found else []
    if not examples:
        notes.append("predictions saved but none could be drawn (no split with records)")
    return {"pictures": [{"caption": e.caption, "png": png_bytes(e.image)} for e in examples], "notes": notes}


def build_report_site(
    results: dict[str, Any], training: dict[str, Any], headline: dict[str, Any], ablation: dict[str, Any], **examples: dict[str, Any]
) -> dict[str, Any]:
    """``{relative path: content}`` of the report directory: ``index.html`` and every PNG it shows.

    ``ablation`` is the section of :func:`plot_ablation`, shown after the summary with the ablation table;
    ``examples`` maps a pipeline name to its example section; its pictures become ``examples/<pipeline>_<i>.png``.
    """
    from xfm_pipeline.reporting.ablation import ablation_html
    from xfm_pipeline.reporting.html import Picture, Section, report_html

    files: dict[str, Any] = {}

    def section(title: str, data: dict[str, Any], prefix: str, plot: bool, body: str = "") -> Section:
        out = Section(title, notes=list(data.get("notes", [])), plot=plot, body=body)
        for i, p in enumerate(data.get("pictures", []), start=1):
            name = p.get("file") or f"{prefix}_{i:02d}.png"
            files[name] = p["png"]
            out.pictures.append(Picture(name, p["caption"]))
        return out

    table = results.get("ablation")
    lead = section("Gain from pretraining (ablation)", ablation, "plots/ablation", plot=True, body=ablation_html(table) if table is not None else "")
    sections = [
        section("Headline metrics", headline, "plots/headline", plot=True),
        section("Training curves", training, "plots/training", plot=True),
        *(section(f"Examples: {name}", examples[name], f"examples/{name}", plot=False) for name in sorted(examples)),
    ]
    files["index.html"] = report_html(results, list(results.get("not_run", [])), sections, lead=lead)
    return files
