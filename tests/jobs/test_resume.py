"""Run directories: the key ignores where and how a job runs and the code; a run records its code and is resumed or
reused by its rules; old runs are pruned, the current one never."""

from __future__ import annotations

import os

import pytest

from xfm_pipeline.jobs import resume
from xfm_pipeline.jobs.resume import code_fingerprint, prune_runs, run_directory

pytestmark = pytest.mark.unit  # run-directory bookkeeping on small files, no job runs


def _runs(root, names_and_mtimes):
    for name, mtime in names_and_mtimes:
        (root / name / "checkpoint-0000001").mkdir(parents=True)
        os.utime(root / name, (mtime, mtime))


def test_prune_keeps_the_current_run_and_the_newest_others(tmp_path):
    _runs(tmp_path, [("run-a", 100), ("run-b", 400), ("run-c", 300), ("run-current", 50)])
    (tmp_path / "job").mkdir()

    deleted = prune_runs(tmp_path / "run-current", keep=2)

    assert sorted(d.name for d in deleted) == ["run-a", "run-c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job", "run-b", "run-current"]  # nothing hidden left


def test_prune_keep_one_leaves_only_the_current_run_and_zero_keeps_all(tmp_path):
    _runs(tmp_path, [("run-a", 100), ("run-b", 200)])
    current = tmp_path / "run-new"
    current.mkdir()

    assert prune_runs(current, keep=0) == []
    assert len(list(tmp_path.iterdir())) == 3
    prune_runs(current, keep=1)
    assert [p.name for p in tmp_path.iterdir()] == ["run-new"]


def test_prune_of_a_run_whose_directory_does_not_exist_yet_is_a_no_op(tmp_path):
    assert prune_runs(tmp_path / "absent" / "run-x", keep=1) == []


def test_run_key_depends_on_parameters_and_file_bytes(tmp_path):
    data = tmp_path / "data.json"
    data.write_text("[1]")
    first = run_directory(tmp_path / "out", {"lr": 1e-4}, [data])
    assert run_directory(tmp_path / "out", {"lr": 1e-4}, [data]) == first
    assert run_directory(tmp_path / "out", {"lr": 2e-4}, [data]) != first
    data.write_text("[2]")
    assert run_directory(tmp_path / "out", {"lr": 1e-4}, [data]) != first


def test_code_fingerprint_follows_python_sources_only(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    first = code_fingerprint.__wrapped__(package)
    (package / "notes.txt").write_text("not code")
    assert code_fingerprint.__wrapped__(package) == first
    (package / "sub" / "b.py").write_text("y = 3\n")
    assert code_fingerprint.__wrapped__(package) != first
    assert len(code_fingerprint()) == 64  # the installed package's own sources


def _code(monkeypatch, fingerprint: str) -> None:
    monkeypatch.setattr(resume, "code_fingerprint", lambda: fingerprint)


def test_run_key_ignores_the_code(tmp_path, monkeypatch):
    first = run_directory(tmp_path / "out", {"lr": 1e-4}, [])
    _code(monkeypatch, "other code")
    assert run_directory(tmp_path / "out", {"lr": 1e-4}, []) == first


def test_an_unfinished_run_resumes_under_changed_code_and_records_both(tmp_path, monkeypatch, caplog):
    run = tmp_path / "run-k"
    _code(monkeypatch, "a" * 64)
    assert resume.start_run(run, is_main=True).resumed_code is None
    (run / "checkpoint-0000005").mkdir()
    _code(monkeypatch, "b" * 64)
    with caplog.at_level("WARNING"):
        started = resume.start_run(run, is_main=True)
    assert (started.resumed_code, started.discarded_code) == ("a" * 64, None)
    assert (run / "checkpoint-0000005").is_dir()  # kept for resuming
    assert "aaaaaaaaaaaa" in caplog.text and "bbbbbbbbbbbb" in caplog.text
    assert resume.read_run_record(run) == {"code": "b" * 64, "finished": False, "code_history": ["a" * 64, "b" * 64]}


def test_a_finished_run_is_reused_by_the_same_code_and_discarded_by_other_code(tmp_path, monkeypatch):
    run = tmp_path / "run-k"
    _code(monkeypatch, "a" * 64)
    resume.start_run(run, is_main=True)
    for name in ("best", "checkpoint-0000002", "checkpoint-0000004"):
        (run / name).mkdir()
        (run / name / "training_state.pt").write_bytes(b"optimizer")
        (run / name / "model.safetensors").write_bytes(b"weights")
    resume.finish_run(run, run / "best")
    assert sorted(p.name for p in run.iterdir()) == ["best", "run.json"]  # other checkpoints freed
    assert [p.name for p in (run / "best").iterdir()] == ["model.safetensors"]  # optimizer state freed
    same = resume.start_run(run, is_main=True)
    assert (same.resumed_code, same.discarded_code, same.selected) == (None, None, run / "best")
    _code(monkeypatch, "b" * 64)
    other = resume.start_run(run, is_main=True)
    assert other.discarded_code == "a" * 64 and not (run / "best").exists()
    assert resume.read_run_record(run) == {"code": "b" * 64, "finished": False, "code_history": ["b" * 64]}
    assert [p.name for p in tmp_path.iterdir()] == ["run-k"]  # nothing hidden left behind


def test_the_selected_checkpoint_must_belong_to_the_run(tmp_path):
    with pytest.raises(ValueError, match="not a directory of the run"):
        resume.finish_run(tmp_path / "run-k", tmp_path / "elsewhere" / "best")


def test_other_ranks_take_the_same_decision_and_write_nothing(tmp_path, monkeypatch):
    run = tmp_path / "run-k"
    _code(monkeypatch, "a" * 64)
    resume.start_run(run, is_main=True)
    (run / "checkpoint-0000001").mkdir()
    resume.finish_run(run, run / "checkpoint-0000001")
    _code(monkeypatch, "b" * 64)
    assert resume.start_run(run, is_main=False).discarded_code == "a" * 64
    assert resume.read_run_record(run)["finished"] is True  # rank 0 acts, not this rank
