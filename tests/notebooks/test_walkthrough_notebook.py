"""notebooks/walkthrough.ipynb runs top to bottom on the tiny checkpoint and shows what it promises.

The notebook's ``parameters`` cell is replaced (no papermill) so that it uses the session's tiny
checkpoint and a temporary task-checkpoint directory holding two untrained task checkpoints (grounding
and VQA, written with ``write_task_checkpoint``): every other task must then be reported as skipped
with the command that produces it. The notebook runs in the session's temporary Kedro project
(``shapes_world``): its catalog reads the generated world there, and nothing is written into the repository.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"
PRESENT = ("finetune_grounding", "finetune_vqa")  # task checkpoints written for the run


@pytest.fixture(scope="module")
def task_checkpoints(tmp_path_factory, tiny_checkpoint_without_dropout, shapes_world):
    """A directory with untrained grounding and VQA task checkpoints built on the tiny backbone (VQA with the
    shapes world's answer list, which its checkpoint stores)."""
    import torch

    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer, load_pretrained
    from xfm_pipeline.tasks.base import TaskParams
    from xfm_pipeline.tasks.checkpoint import write_task_checkpoint
    from xfm_pipeline.tasks.registry import get_task

    root = tmp_path_factory.mktemp("task_checkpoints")
    tokenizer = load_checkpoint_tokenizer(tiny_checkpoint_without_dropout)
    settings = {
        "finetune_grounding": ("grounding", {"augment": False}, {}),
        "finetune_vqa": ("vqa", {"augment": False, "k_test": 8}, {"answer_list": shapes_world.records("vqa/answer_list.json")}),
    }
    torch.manual_seed(0)
    for pipeline, (task_name, options, data) in settings.items():
        params = TaskParams(image_size=64, eval_batch_size=8, max_tokens=30, options=options)
        model = get_task(task_name).build_model(load_pretrained(tiny_checkpoint_without_dropout), params, data)
        directory = root / pipeline
        directory.mkdir()
        write_task_checkpoint(model.eval(), directory, params, tokenizer)
    return root


def _venv_jupyter_path(tmp_path_factory) -> str:
    """A JUPYTER_PATH whose ``python3`` kernel runs this interpreter (the venv's), or "" when the installed spec already does.

    jupyter_client runs a spec whose argv[0] is ``python``/``python3`` with ``sys.executable``; a missing spec or a
    user-level one pointing at another Python is overridden by a spec in a temporary directory (JUPYTER_PATH comes first).
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    aliases = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}", sys.executable}
    try:
        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
    except NoSuchKernel:
        argv0 = None
    if argv0 not in aliases:  # missing, or a user-level spec running another Python: put ours first on JUPYTER_PATH
        spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / "python3"
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3 (venv)", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        return str(spec_dir.parents[1])
    return ""


@pytest.fixture(scope="module")
def executed(tiny_checkpoint_without_dropout, task_checkpoints, shapes_world, tmp_path_factory):
    """The notebook executed with nbclient; (notebook, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    mp = pytest.MonkeyPatch()
    for key, value in {"XFM_MLFLOW": "0", "OMP_NUM_THREADS": "1"}.items():
        mp.setenv(key, value)
    jupyter_path = _venv_jupyter_path(tmp_path_factory)
    if jupyter_path:
        mp.setenv("JUPYTER_PATH", jupyter_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    tagged[0].source = f"CHECKPOINT_DIR = {str(tiny_checkpoint_without_dropout)!r}\nTASK_CHECKPOINTS = {str(task_checkpoints)!r}\nN_EXAMPLES = 2\n"
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(shapes_world.root)}}).execute()
    finally:
        mp.undo()
    return nb, time.perf_counter() - start


def _outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _text(nb) -> str:
    parts = []
    for out in _outputs(nb):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "text/plain" in out.get("data", {}):
            parts.append(out.data["text/plain"])
    return "\n".join(parts)


def test_committed_notebook_has_no_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_notebook_runs_without_errors_on_the_venv_kernel(executed):
    nb, seconds = executed
    errors = [out for out in _outputs(nb) if out.output_type == "error"]
    assert not errors, errors
    text = _text(nb)
    assert f"kernel python:    {sys.executable}" in text  # the venv's interpreter ran the notebook
    assert seconds < 120, f"the notebook took {seconds:.0f} s"


def test_notebook_shows_model_data_retrieval_and_tasks(executed, tiny_checkpoint_without_dropout):
    nb, _ = executed
    text = _text(nb)
    # (a) the injected parameters were used
    assert f"checkpoint:       {tiny_checkpoint_without_dropout}" in text
    # (b) parameter counts per encoder (tiny preset: 29.9M in total)
    for part in ("vision_encoder", "text_encoder", "fusion_encoder", "total"):
        assert part in text
    assert re.search(r"^  total +\d{1,3}(,\d{3})+$", text.split("parameters per encoder:")[1], re.MULTILINE)
    # (d) the ITC matrix and the ITM scores
    assert "ITC similarity matrix" in text and "ITM match probability" in text
    # (e) the two task checkpoints ran; every absent one says how to produce it
    assert "finetune_grounding: task 'grounding'" in text and "IoU" in text
    assert "finetune_vqa: task 'vqa'" in text and "predicted:" in text
    from xfm_pipeline.tasks.registry import PIPELINES

    for pipeline in PIPELINES:
        if pipeline not in PRESENT:
            assert f"[skipped] {pipeline}" in text and f"kedro run --pipeline {pipeline}" in text, pipeline
    images = [out for out in _outputs(nb) if out.output_type in ("display_data", "execute_result") and "image/png" in out.get("data", {})]
    assert len(images) >= 4, f"{len(images)} images: shapes, ITC heat map, VQA, grounding expected"
