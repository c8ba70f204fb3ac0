"""Run directories: the key ignores where and how a job runs; old runs are pruned, the current one never."""

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


def test_run_key_depends_on_the_code(tmp_path, monkeypatch):
    first = run_directory(tmp_path / "out", {"lr": 1e-4}, [])
    monkeypatch.setattr(resume, "code_fingerprint", lambda: "other code")
    assert run_directory(tmp_path / "out", {"lr": 1e-4}, []) != first


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
