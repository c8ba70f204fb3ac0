"""GLUE TSV readers on hand-made files in the eight real release layouts, and on generated files."""

from __future__ import annotations

import pytest

from xfm_pipeline.data.formats import GLUE_TASKS, RecordError, glue_task, parse_glue_partitions, parse_glue_tsv, read_glue_dir, read_glue_tsv

T = "\t"

# One train/dev file and one test file per task, with lines shaped like the GLUE release.
FILES = {
    ("CoLA", "train"): 'gj04\t1\t\tOur friends won\'t buy this analysis, let alone the next one we propose.\ngj04\t0\t*\tThey drank the pub "dry".\n',
    ("CoLA", "test"): "index\tsentence\n0\tBill whistled past the house.\n",
    ("SST-2", "train"): 'sentence\tlabel\nhide new secretions from the parental units \t0\nit \'s a "charming" journey . \t1\n',
    ("SST-2", "test"): "index\tsentence\n0\tuneasy mishmash of styles and genres .\n",
    ("MRPC", "train"): "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    '1\t702876\t702977\tAmrozi accused his brother , whom he called " the witness " .\tReferring to him as only " the witness " , Amrozi accused his brother .\n'
    "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n",
    ("MRPC", "test"): "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1089874\t1089925\tPCCW 's chief .\tCurrent Chief .\n",
    ("QQP", "train"): "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    "133273\t213221\t213222\tHow is the life of a math student?\tWhich level of prepration is enough?\t0\n"
    "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1\n",
    ("QQP", "test"): "id\tquestion1\tquestion2\n0\tWhy am I mentally very lonely?\tFind the remainder?\n",
    ("STS-B", "train"): "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000\n"
    "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a flute.\tA man is playing a bamboo flute.\t3.800\n",
    ("STS-B", "test"): "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
    "0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl is styling her hair.\tA girl is brushing her hair.\n",
    ("MNLI", "train"): T.join(GLUE_TASKS["MNLI"].train_header) + "\n"
    "0\t31193\t31193n\tgovernment\t( ( Conceptually cream ) skimming )\t( ( Product and ) geography )\t(ROOT (S))\t(ROOT (S))\t"
    "Conceptually cream skimming has two basic dimensions - product and geography.\tProduct and geography are what make cream skimming work. \tneutral\tneutral\n",
    ("MNLI", "dev_matched"): T.join(GLUE_TASKS["MNLI"].dev_header) + "\n"
    "0\t63735\t63735n\tslate\t( a )\t( b )\t(ROOT)\t(ROOT)\tThe new rights are nice enough\tEveryone really likes the newest benefits \tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n",
    ("MNLI", "test_mismatched"): T.join(GLUE_TASKS["MNLI"].test_header) + "\n0\t1\t1n\tfiction\t( a )\t( b )\t(ROOT)\t(ROOT)\tShe smiled.\tShe was happy.\n",
    (
        "QNLI",
        "train",
    ): "index\tquestion\tsentence\tlabel\n0\tWhat came into force after the new constitution was herald?\tAs of that day, the new constitution heralding the Second Republic came into force.\tentailment\n",
    ("QNLI", "test"): "index\tquestion\tsentence\n0\tWhat is the name?\tIt is Bob.\n",
    (
        "RTE",
        "train",
    ): "index\tsentence1\tsentence2\tlabel\n0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of Mass Destruction Found in Iraq.\tnot_entailment\n",
    ("RTE", "test"): "index\tsentence1\tsentence2\n0\tMamie Eisenhower was born.\tMamie was born.\n",
}


@pytest.mark.parametrize(("task", "split"), sorted(FILES))
def test_real_layouts(task, split):
    examples = parse_glue_tsv(FILES[(task, split)], task, split)
    spec = glue_task(task)
    assert examples and all(e.task == spec.name and e.split == split for e in examples)
    assert all(e.text_a.strip() for e in examples)
    assert all((e.text_b is None) == (spec.text_b is None) for e in examples)
    if split.startswith("test"):
        assert all(e.label is None for e in examples)
    else:
        assert all(e.label is not None for e in examples)


def test_label_values_and_text_columns():
    cola = parse_glue_tsv(FILES[("CoLA", "train")], "CoLA", "train")
    assert [e.label for e in cola] == [1, 0] and cola[1].text_a == 'They drank the pub "dry".'  # quotes kept verbatim
    assert parse_glue_tsv(FILES[("SST-2", "train")], "SST-2", "train")[1].text_a == 'it \'s a "charming" journey . '
    mrpc = parse_glue_tsv(FILES[("MRPC", "train")], "MRPC", "train")  # BOM stripped
    assert [e.label for e in mrpc] == [1, 0] and mrpc[0].text_b.startswith("Referring")
    qqp = parse_glue_tsv(FILES[("QQP", "train")], "QQP", "train")
    assert qqp[0].guid == "133273" and [e.label for e in qqp] == [0, 1]
    stsb = parse_glue_tsv(FILES[("STS-B", "train")], "STS-B", "train")
    assert [e.label for e in stsb] == [5.0, 3.8] and stsb[0].text_b == "An air plane is taking off."
    mnli = parse_glue_tsv(FILES[("MNLI", "dev_matched")], "MNLI", "dev_matched")
    assert mnli[0].label == 1 and mnli[0].text_a == "The new rights are nice enough"  # neutral = 1 (HF order)
    assert parse_glue_tsv(FILES[("MNLI", "train")], "MNLI", "train")[0].label == 1
    assert parse_glue_tsv(FILES[("QNLI", "train")], "QNLI", "train")[0].label == 0
    assert parse_glue_tsv(FILES[("RTE", "train")], "RTE", "train")[0].label == 1
    assert glue_task("sts-b").is_regression and glue_task("SST2").num_labels == 2 and glue_task("MNLI").num_labels == 3


def test_errors_name_file_line_and_problem():
    with pytest.raises(RecordError, match=r"CoLA/train\.tsv: record line 2: expected 4 tab-separated columns, got 3"):
        parse_glue_tsv("gj04\t1\t\tfine.\ngj04\t1\tbroken\n", "CoLA", "train")
    with pytest.raises(RecordError, match="line 1: expected header"):
        parse_glue_tsv("sentence\tlabel\tx\n", "SST-2", "train")
    with pytest.raises(RecordError, match=r"line 3: label '2' is not one of \['0', '1'\]"):
        parse_glue_tsv("sentence\tlabel\na\t1\nb\t2\n", "SST-2", "dev")
    with pytest.raises(RecordError, match="label 'maybe'"):
        parse_glue_tsv("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", "RTE", "dev")
    with pytest.raises(RecordError, match="outside"):
        parse_glue_tsv(FILES[("STS-B", "train")].replace("5.000", "7.5"), "STS-B", "train")
    with pytest.raises(RecordError, match="empty sentence"):
        parse_glue_tsv("index\tquestion\tsentence\tlabel\n0\t \tx\tentailment\n", "QNLI", "train")
    with pytest.raises(RecordError, match="CoLA test file"):
        parse_glue_tsv(FILES[("CoLA", "test")], "CoLA", "train")
    with pytest.raises(ValueError, match="splits"):
        parse_glue_tsv(FILES[("MNLI", "train")], "MNLI", "dev")
    with pytest.raises(ValueError, match="unknown GLUE task"):
        parse_glue_tsv("x", "WNLI", "train")


def test_release_directory_and_partitions(tmp_path):
    for (task, split), text in FILES.items():
        (tmp_path / task).mkdir(exist_ok=True)
        (tmp_path / task / f"{split}.tsv").write_text(text, encoding="utf-8")
    (tmp_path / "WNLI").mkdir()
    (tmp_path / "WNLI" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n")
    by_dir = read_glue_dir(tmp_path)
    assert set(by_dir) == {f"{t}/{s}" for t, s in FILES}
    assert read_glue_tsv(tmp_path / "RTE" / "train.tsv")[0].label == 1
    partitions = {f"{t}/{s}": (lambda text=text: text) for (t, s), text in FILES.items()}
    partitions["WNLI/train"] = lambda: "ignored"
    partitions["diagnostic/diagnostic"] = lambda: "ignored"
    parsed = parse_glue_partitions(partitions)
    assert set(parsed) == set(by_dir)
    assert parsed == by_dir


def test_generated_glue_files_for_all_tasks(tiny_world, tiny_root):
    parsed = read_glue_dir(tiny_root / "glue")
    expected = {f"{task}/{split}" for task, spec in GLUE_TASKS.items() for split in spec.splits}
    assert set(parsed) == expected
    cfg = tiny_world.config.glue
    for key, examples in parsed.items():
        split = key.split("/")[1]
        assert len(examples) == getattr(cfg, split.split("_")[0])
        spec = glue_task(key.split("/")[0])
        if not split.startswith("test") and not spec.is_regression:
            assert {e.label for e in examples} <= set(range(spec.num_labels))
    cola = (tiny_root / "glue" / "CoLA" / "train.tsv").read_text().splitlines()
    assert len(cola[0].split("\t")) == 4 and cola[0].split("\t")[1] in ("0", "1")  # headerless
    assert parse_glue_partitions(tiny_world.glue) == parsed  # in memory (catalog) == on disk
