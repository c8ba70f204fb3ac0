"""The report page opens with the summary, holds every results row (collapsed), references every picture it
ships, lists what was not run, and shows the ablation when there is one."""

from __future__ import annotations

import re

from xfm_pipeline.pipelines.report.nodes import build_report_site, build_results_table, draw_examples, plot_ablation, plot_headline_metrics
from xfm_pipeline.reporting.html import Picture, Section, report_html

PNG = b"\x89PNG\r\n\x1a\nfake"


def test_page_has_every_row_every_picture_and_the_pipelines_not_run():
    rows = [
        {"pipeline": "finetune_nlvr", "metric": "test/nlvr_acc", "value": 53.5, "paper_4m": 86.5, "paper_1.3b": 88.4, "paper_setting": "NLVR2 test-P"},
        {"pipeline": "finetune_grounding", "metric": "val/grounding_acc", "value": 2.0179, "paper_4m": None, "paper_1.3b": None, "paper_setting": None},
    ]
    sections = [
        Section("Plots", [Picture("plots/a.png", "loss <curves>")], plot=True),
        Section("Examples: finetune_vqa", notes=["not run: no predictions saved"]),
    ]
    page = report_html({"rows": rows, "pretrain": {"losses": {"image_text/loss_itc": {"first": 2.0, "last": 1.5}}}}, ["finetune_vqa"], sections)
    assert "<details><summary>Every metric of every split (2 rows)</summary><table>" in page  # the full list, collapsed
    assert page.index("Summary: headline metric per task") < page.index("<details>")
    assert "<td>finetune_nlvr</td><td>test/nlvr_acc</td><td class=num>53.50</td><td class=num>86.50</td><td class=num>88.40</td><td>NLVR2 test-P</td>" in page
    assert "<td>finetune_grounding</td><td>val/grounding_acc</td><td class=num>2.02</td>" in page
    assert '<img src="plots/a.png"' in page and "loss &lt;curves&gt;" in page and "<curves>" not in page  # escaped
    assert "Pipelines not run" in page and "<code>finetune_vqa</code>" in page
    assert "not run: no predictions saved" in page
    assert "<td>image_text/loss_itc</td><td class=num>2.0000</td><td class=num>1.5000</td>" in page


def test_site_from_the_nodes_references_exactly_the_pictures_it_writes(tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32), (10, 200, 10)).save(tmp_path / "a.png")
    blind = {"finetune_nlvr": {"test": [{"name": "majority label", "value": 50.0}]}}
    markdown, results = build_results_table(
        {"losses": {}}, blind, None, finetune_nlvr={"test/nlvr_acc": 53.5, "val/nlvr_acc": 58.0}, finetune_vqa=None, finetune_captioning=None
    )
    assert results["not_run"] == ["finetune_captioning", "finetune_vqa"]
    assert "## Pipelines not run" in markdown and "- finetune_vqa\n" in markdown
    headline = plot_headline_metrics(results, pipelines=["finetune_nlvr", "finetune_vqa", "finetune_captioning"])
    assert any("finetune_vqa: not run" in n for n in headline["notes"])
    vqa = draw_examples(
        {"val": [{"question_id": 5, "answer": "<b>green</b>"}]},
        results,
        str(tmp_path),
        pipeline="finetune_vqa",
        val=[{"question_id": 5, "image": "a.png", "question": "what colour?", "answer": ["green"] * 10}],
        test=[],
    )
    training = {
        "pictures": [{"file": "plots/finetune_losses.png", "caption": "losses", "png": PNG}],
        "notes": ["finetune_vqa: not run (no training history saved)"],
    }
    ablation = plot_ablation(results)
    assert ablation == {"pictures": [], "notes": ["The ablation has not been run: run `kedro run --pipeline ablation` (not part of the default run)."]}
    files = build_report_site(
        results, training, headline, ablation, finetune_vqa=vqa, finetune_captioning={"pictures": [], "notes": ["not run: no predictions saved"]}
    )

    page = files["index.html"]
    referenced = set(re.findall(r'<img src="([^"]+)"', page))
    pictures = {name for name in files if name.endswith(".png")}
    assert referenced == pictures == {"plots/finetune_losses.png", "plots/headline_metrics.png", "examples/finetune_vqa_01.png"}
    assert all(files[name][:4] == b"\x89PNG" for name in pictures)
    for row in results["rows"]:
        assert f"<td>{row['pipeline']}</td><td>{row['metric']}</td><td class=num>{row['value']:.2f}</td>" in page
    for name in ("finetune_vqa", "finetune_captioning"):
        assert f"<code>{name}</code>" in page  # the not-run box
    assert "Examples: finetune_captioning" in page and "not run: no predictions saved" in page
    assert "&lt;b&gt;green&lt;/b&gt;" in page and "<b>green</b>" not in page
    summary = page[page.index("Summary: headline metric per task") : page.index("Gain from pretraining")]
    assert (
        "<tr><td>finetune_nlvr</td><td>test/nlvr_acc</td><td class=num>53.50</td><td>50.00 majority label</td>"
        "<td>run <code>kedro run --pipeline ablation</code></td><td>86.50 / 88.40 (NLVR2 test-P)</td></tr>"
    ) in summary
    assert "<tr><td>finetune_vqa</td><td>vqa_acc</td><td class=num>not run</td><td>—</td>" in summary
    assert "GLUE and ImageNet metrics (stored as fractions) and the GLUE correlations are shown x100" in page


def test_site_shows_the_ablation_table_and_plot_after_the_summary():
    from ablation_fixture import TABLE

    _, results = build_results_table({"losses": {}}, {}, TABLE, finetune_vqa={"test/vqa_acc": 46.0}, finetune_nlvr={"test/nlvr_acc": 60.0})
    assert results["summary"][0]["ablation"] == "ok"
    files = build_report_site(results, {}, {}, plot_ablation(results))
    page = files["index.html"]
    assert files["plots/ablation.png"][:4] == b"\x89PNG" and '<img src="plots/ablation.png"' in page
    assert page.index("Summary: headline metric per task") < page.index("Gain from pretraining (ablation)") < page.index("All metrics")
    assert "<td>finetune_vqa</td><td>test/vqa_acc</td><td class=num>40.00 ± 1.00</td>" in page
    assert "<td>+5.00 vs init; +2.00 vs warm-up</td>" in page  # the summary's gain cell
    assert "<td>not in the ablation</td>" in page  # finetune_nlvr
