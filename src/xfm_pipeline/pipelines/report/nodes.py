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


def build_results_table(pretrain: dict[str, Any], **metrics: dict[str, float] | None) -> tuple[str, dict[str, Any]]:
    """Markdown and JSON results of every fine-tune/eval pipeline, with the pretraining loss summary.

    A pipeline whose metrics are None (not run) has no rows; it is listed under "Pipelines not run"
    in the markdown and in ``not_run`` in the JSON.
    """
    from xfm_pipeline.reporting.table import results_markdown, results_rows
    from xfm_pipeline.tasks.registry import PIPELINES

    not_run = _not_run(metrics)
    fractions = {name for name, (spec, _) in PIPELINES.items() if spec.fraction}
    paper = {name: pipe.paper for name, (_, pipe) in PIPELINES.items()}
    rows = results_rows({name: value for name, value in metrics.items() if value is not None}, fractions, paper)
    markdown = results_markdown(rows)
    if not_run:
        markdown += "\n## Pipelines not run (no metrics saved)\n\n" + "".join(f"- {name}\n" for name in not_run)
    losses = pretrain.get("losses", {})
    if losses:
        markdown += "\n## Pretraining losses (first / last 50-step means)\n\n| objective | first | last |\n|---|---:|---:|\n"
        markdown += "".join(f"| {k} | {v['first']:.4f} | {v['last']:.4f} |\n" for k, v in sorted(losses.items()))
    return markdown, {"rows": rows, "pretrain": pretrain, "not_run": not_run}


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
    """Section "Headline metrics": one bar per pipeline (its task's selection metric, in percent);
    pipelines not run get a labelled empty row. ``pipelines``: the registered pipelines to show (default:
    every one)."""
    from xfm_pipeline.reporting.headline import headline
    from xfm_pipeline.reporting.plots import metric_bars
    from xfm_pipeline.tasks.registry import PIPELINES

    if pipelines is None:
        pipelines = list(PIPELINES)
    metrics: dict[str, dict[str, float]] = {}
    for row in results.get("rows", []):
        metrics.setdefault(row["pipeline"], {})[row["metric"]] = row["value"]
    not_run = set(results.get("not_run", []))
    entries, notes = [], []
    for name in sorted(set(pipelines) | set(metrics)):
        spec = PIPELINES[name][0] if name in PIPELINES else None
        found = headline(spec.headline_metric if spec else None, metrics.get(name), in_percent=True)  # rows are in percent
        if found:
            entries.append((name, found[0], found[1]))
        else:
            entries.append((name, None, None))
            notes.append(f"{name}: {'not run (no metrics saved)' if name in not_run or name not in metrics else 'no headline metric among its metrics'}")
    png = metric_bars(entries)
    caption = "Headline (checkpoint-selection) metric per pipeline, test split when it has one; GLUE and ImageNet fractions shown x100"
    return {"pictures": [{"file": "plots/headline_metrics.png", "caption": caption, "png": png}], "notes": notes}


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


def build_report_site(results: dict[str, Any], training: dict[str, Any], headline: dict[str, Any], **examples: dict[str, Any]) -> dict[str, Any]:
    """``{relative path: content}`` of the report directory: ``index.html`` and every PNG it shows.

    ``examples`` maps a pipeline name to its example section; its pictures become
    ``examples/<pipeline>_<i>.png``.
    """
    from xfm_pipeline.reporting.html import Picture, Section, report_html

    files: dict[str, Any] = {}

    def section(title: str, data: dict[str, Any], prefix: str, plot: bool) -> Section:
        out = Section(title, notes=list(data.get("notes", [])), plot=plot)
        for i, p in enumerate(data.get("pictures", []), start=1):
            name = p.get("file") or f"{prefix}_{i:02d}.png"
            files[name] = p["png"]
            out.pictures.append(Picture(name, p["caption"]))
        return out

    sections = [
        section("Headline metrics", headline, "plots/headline", plot=True),
        section("Training curves", training, "plots/training", plot=True),
        *(section(f"Examples: {name}", examples[name], f"examples/{name}", plot=False) for name in sorted(examples)),
    ]
    files["index.html"] = report_html(results, list(results.get("not_run", [])), sections)
    return files
