"""Every command in the README is run by a test or by CI, so none goes stale.

Every line of the README's ```bash blocks (comments stripped, ``\\`` continuations joined) must be a key of
``COMMANDS`` below, which says how that exact string is exercised:

* ``Run``: run here, as written, in the project root (cheap and side-effect free);
* ``Help``: a long-running or heavy command, run here with ``--help`` appended: the subcommand must exist and
  every ``--flag`` of the README line must be listed in its help;
* ``Server``: started here as written (plus ``--host/--port``) in a temporary directory, polled, stopped;
* ``Sandbox``: run as written in a throw-away Git + DVC repository (placeholders such as the remote path
  replaced by temporary paths), in the order of ``step``;
* ``Check``: a function of this module that checks what the command does (parses it with the real CLI,
  resolves the configuration it would run with, ...);
* ``DryMake``: ``make -n <target>`` must succeed (the target exists and its recipe expands);
* ``CI``: ``.ci/run`` (the CI entry point) runs it;
* ``Covered``: the test that runs it; the file and the test function must exist (checked with ``ast``).

A README command missing from the table fails with a message saying to add it; a table entry no longer in the
README fails as stale. Commands run with the venv's ``bin`` first on ``PATH`` and the offline environment,
as the README's command convention says (venv active, telemetry off).
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BIN = Path(sys.executable).parent  # the venv's bin (the test runs on the venv's python)
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    "XFM_MLFLOW": "0",  # the offline environment comes from os.environ (tests/conftest.py)
    "OMP_NUM_THREADS": "1",
    "COLUMNS": "200",  # rich wraps Kedro's log lines at 80 columns otherwise
}

# ----------------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Run:
    """Run here as written, in the project root; ``expect``: substrings of the output."""

    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Help:
    """Run here with ``--help`` appended; every ``--flag`` of the command must appear in the help."""


@dataclass(frozen=True)
class Server:
    """Start as written + ``--host 127.0.0.1 --port <free>`` in a temporary directory; ``path`` must answer."""

    path: str
    expect: str


@dataclass(frozen=True)
class Sandbox:
    """Run as written (after ``substitute``) in the throw-away Git + DVC repository, at position ``step``."""

    step: int
    substitute: dict[str, str] = field(default_factory=dict)  # README text -> sandbox placeholder key


@dataclass(frozen=True)
class Check:
    """``function(command)`` of this module checks the command's effect without its cost."""

    function: str


@dataclass(frozen=True)
class DryMake:
    """``make -n <target>`` succeeds."""


@dataclass(frozen=True)
class CI:
    """``.ci/run`` runs the command."""


@dataclass(frozen=True)
class Covered:
    """``tests/<file>.py::<function>`` runs it (``what`` says how)."""

    test: str
    what: str


DVC_TEST = "tests/dvc/test_dvc_repro.py::test_dvc_repro_runs_the_chain_then_does_nothing_then_only_the_changed_task"
DVC_CHAIN = "`dvc repro` runs every stage (`kedro run --pipelines <name>` for every pipeline of the chain)"

PAPER_RUN = "tests/conf/test_paper_env.py::test_paper_environment_runs_pretraining_and_vqa_on_the_shapes_world"
PAPER_RUN_WHAT = "pretrain_shards, model_init, pretrain and finetune_vqa in the paper environment (shapes world, steps shrunk)"
PAPER_CONF = "tests/conf/test_paper_env.py::test_every_finetune_pipeline_validates_and_no_block_is_orphaned"
PAPER_CONF_WHAT = "the paper environment's blocks of every pipeline validate (its catalog, stages and steps: the module's other tests)"

SERVING_TEST = "tests/serving/test_vqa_serving.py::test_served_answers_equal_the_predictor"

COMMANDS: dict[str, tuple] = {
    # Quick start
    "make demo": (DryMake(), Covered(DVC_TEST, "the demo chain (every pipeline of `kedro run`) on a miniature world, stage by stage")),
    "make test": (DryMake(), CI()),
    "make gpu-check": (
        DryMake(),
        Covered("tests/gpu/test_gpu_chain.py::test_the_chain_trains_and_evaluates_on_the_gpu_in_bf16", "its GPU chain test (skipped without CUDA)"),
    ),
    # command convention
    "source .venv/bin/activate": (Check("check_activate"),),
    "export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1 GX_ANALYTICS_ENABLED=false": (
        Check("check_exports_match_the_makefile"),
    ),
    # results
    "mlflow ui --backend-store-uri sqlite:///mlflow.db": (Server("/health", "OK"),),
    "kedro viz run": (
        Help(),
        Covered(
            "tests/viz/test_kedro_viz_browser.py::test_kedro_viz_run_serves_every_registered_pipeline", "starts `kedro viz run` and asks it for every pipeline"
        ),
    ),
    # pipelines
    "kedro registry list": (Run(expect=("- __default__", "- report", "- finetune_vqa", "- linear_probe_imagenet")),),
    "kedro run --pipeline finetune_vqa": (
        Check("check_kedro_run"),
        Covered(DVC_TEST, "stage finetune_vqa runs `kedro run --pipelines finetune_vqa`"),
        Covered("tests/tasks/test_vqa.py::test_run_finetune_end_to_end", "the fine-tune job of finetune_vqa"),
    ),
    "kedro run": (Check("check_kedro_run"), Covered(DVC_TEST, DVC_CHAIN)),
    # DVC
    "dvc repro": (Covered(DVC_TEST, "two `dvc repro` runs: the whole chain, then nothing"),),
    "dvc repro --dry": (Covered(DVC_TEST, "`dvc repro --dry` after a parameter change lists only that task and the report"),),
    "dvc metrics show": (Run(),),
    "dvc dag": (Run(expect=("data_ingestion", "finetune_vqa", "report")),),
    "dvc remote add -d storage /mnt/shared/xfm-dvc": (Sandbox(4, {"/mnt/shared/xfm-dvc": "remote"}),),
    "dvc push": (Sandbox(5),),
    "dvc pull": (Sandbox(6),),
    "dvc add data/01_raw/coco": (Sandbox(1),),
    "git add data/01_raw/coco.dvc": (Sandbox(2),),
    'git commit -m "Track the COCO annotations with DVC"': (Sandbox(3),),
    # official checkpoint
    "kedro run --pipeline model_init": (
        Check("check_kedro_run"),
        Covered("tests/pipelines/test_model_init.py::test_kedro_session_writes_a_loadable_checkpoint", "runs the model_init pipeline in a Kedro session"),
        Covered("tests/model/test_official.py::test_official_file_round_trip", "imports an official-format .th file"),
    ),
    # reproducing the paper (conf/paper)
    "kedro run --env paper --pipeline data_validation": (Check("check_kedro_run"), Covered(PAPER_CONF, PAPER_CONF_WHAT)),
    "kedro run --env paper --pipeline pretrain_shards": (Check("check_kedro_run"), Covered(PAPER_RUN, PAPER_RUN_WHAT)),
    "kedro run --env paper --pipeline model_init": (Check("check_kedro_run"), Covered(PAPER_RUN, PAPER_RUN_WHAT)),
    "kedro run --env paper --pipeline pretrain --params pretrain.distributed.node_rank=1": (Check("check_kedro_run"), Covered(PAPER_RUN, PAPER_RUN_WHAT)),
    "kedro run --env paper --pipelines pretrain_bbox,finetune_grounding": (Check("check_kedro_run"), Covered(PAPER_CONF, PAPER_CONF_WHAT)),
    "kedro run --env paper --pipeline finetune_vqa": (Check("check_kedro_run"), Covered(PAPER_RUN, PAPER_RUN_WHAT)),
    "kedro run --env paper --pipelines finetune_nlvr,finetune_retrieval_coco,eval_retrieval_zeroshot,finetune_captioning": (
        Check("check_kedro_run"),
        Covered(PAPER_CONF, PAPER_CONF_WHAT),
    ),
    "kedro run --env paper --pipelines finetune_glue_cola,finetune_glue_sst2,finetune_glue_mrpc,finetune_glue_qqp,finetune_glue_stsb,finetune_glue_mnli,finetune_glue_qnli,finetune_glue_rte": (
        Check("check_kedro_run"),
        Covered(PAPER_CONF, PAPER_CONF_WHAT),
    ),
    "kedro run --env paper --pipelines finetune_imagenet,linear_probe_imagenet": (Check("check_kedro_run"), Covered(PAPER_CONF, PAPER_CONF_WHAT)),
    "kedro run --env paper --pipelines data_validation,finetune_retrieval_flickr": (Check("check_kedro_run"), Covered(PAPER_CONF, PAPER_CONF_WHAT)),
    "kedro run --env paper --pipeline report": (Check("check_kedro_run"), Covered(PAPER_CONF, PAPER_CONF_WHAT)),
    # use a trained model
    "kedro run --pipeline predict_vqa": (Check("check_kedro_run"),),
    "kedro run --pipeline evaluate_finetune_vqa": (Check("check_kedro_run"),),
    "mlflow models serve -m models:/xfm-vqa/latest --env-manager local -h 127.0.0.1 -p 5001": (
        Help(),
        Covered(SERVING_TEST, "starts this command (on a free port) for a tiny VQA model the finetune_vqa pipeline registered"),
    ),
    'curl -s http://127.0.0.1:5001/invocations -H \'Content-Type: application/json\' -d "{\\"dataframe_records\\": [{\\"image\\": \\"$(base64 -w0 data/01_raw/shapes_world/images/test/001801.jpg)\\", \\"question\\": \\"what color is the triangle?\\"}]}"': (
        Covered(SERVING_TEST, "posts dataframe_records (image as base64, question) to the server's /invocations"),
    ),
    "python benchmarks/serve_latency.py --checkpoint data/06_models/finetune_vqa": (Help(),),
    # scaling out
    "kedro run --pipeline pretrain --params pretrain.distributed.node_rank=1": (
        Check("check_multi_node_pretrain"),
        Covered("tests/jobs/test_pretrain_job.py::test_two_process_torchrun_equals_one_process", "a 2-process torchrun launch of the pretraining job"),
    ),
    "mlflow server --backend-store-uri sqlite:////srv/mlflow/mlflow.db --artifacts-destination /srv/mlflow/artifacts --host 0.0.0.0 --port 5000": (Help(),),
    "export MLFLOW_TRACKING_URI=http://10.0.0.1:5000": (
        Check("check_tracking_uri"),
        Covered(
            "tests/tracking/test_mlflow_hook.py::test_parent_and_nested_runs_with_params_metrics_and_artifacts",
            "runs logged to the store named by MLFLOW_TRACKING_URI",
        ),
    ),
    # notebook
    "jupyter execute notebooks/walkthrough.ipynb": (
        Help(),
        Covered(
            "tests/notebooks/test_walkthrough_notebook.py::test_notebook_runs_without_errors_on_the_venv_kernel",
            "executes the notebook with nbclient (what `jupyter execute` drives)",
        ),
    ),
    # benchmarks
    "python benchmarks/pretrain_step.py --preset tiny --batch 8": (Help(),),
    "python benchmarks/pretrain_step.py --preset base --batch 8 --steps 3": (Help(),),
    "python benchmarks/pretrain_step.py --preset base --batch 8 --steps 5 --reference beit": (
        Help(),
        Covered("tests/benchmarks/test_pretrain_step.py::test_steps_alternate_and_each_gets_its_own_window", "the interleaved timing of --reference"),
    ),
    "python benchmarks/paper_compute.py": (Help(),),
    "python benchmarks/vision_stem.py --steps 300": (Help(),),
    "python benchmarks/vqa_blind_baseline.py --checkpoint data/06_models/finetune_vqa --split test": (Help(),),
    "python benchmarks/blind_baselines.py --captioning-checkpoint data/06_models/finetune_captioning": (Help(),),
    "python benchmarks/fusion_attention.py --checkpoint data/06_models/pretrain": (
        Help(),
        Covered("tests/benchmarks/test_fusion_attention.py::test_recomputed_weights_are_the_ones_the_fusion_encoder_uses", "the attention weights it measures"),
    ),
}

# ------------------------------------------------------------------------------------------- README parsing


def _fenced_blocks(text: str, language: str) -> list[list[str]]:
    """The lines of every ```<language> block."""
    blocks, current = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if current is None and stripped == f"```{language}":
            current = []
        elif current is not None and stripped.startswith("```"):
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, f"unterminated ```{language} block in README.md"
    return blocks


def _commands(block: list[str]) -> list[str]:
    """Command lines of a bash block: continuations joined, comments and blank lines dropped."""
    commands, pending = [], ""
    for line in block:
        line = pending + line.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        line = re.sub(r"(^|\s)#.*$", "", line).strip()  # a comment starts at a '#' after whitespace
        if line:
            commands.append(line)
    return commands


README_TEXT = README.read_text()
BASH_BLOCKS = [_commands(block) for block in _fenced_blocks(README_TEXT, "bash")]
README_COMMANDS = list(dict.fromkeys(c for block in BASH_BLOCKS for c in block))


def _yaml_block(header: str) -> dict:
    """The README ```yaml block whose first line is ``# <header>``, parsed."""
    for block in _fenced_blocks(README_TEXT, "yaml"):
        if block and block[0].strip() == f"# {header}":
            return yaml.safe_load("\n".join(block))
    raise AssertionError(f"README.md has no ```yaml block starting with '# {header}'")


# --------------------------------------------------------------------------------------------- helpers


def _run(command: str, cwd: Path = REPO, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, executable="/bin/bash", cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout)


def _ok(proc: subprocess.CompletedProcess, command: str) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"`{command}` exited with {proc.returncode}:\n{output[-3000:]}"
    return output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """End the process group started for a server (it was started in its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def _kedro_run_args(command: str):
    """The README's `kedro run ...` parsed by Kedro's own `run` command (options validated, nothing run)."""
    from kedro.framework.cli.project import run

    words = shlex.split(command)
    assert words[:2] == ["kedro", "run"], command
    return run.make_context("run", words[2:]).params


# ------------------------------------------------------------------------------------------------ checks


def check_activate(command: str) -> None:
    """After the README's activation, `kedro`, `dvc`, `mlflow`, `jupyter` and `python` are the venv's."""
    venv = REPO / ".venv"
    assert (venv / "bin" / "activate").is_file(), ".venv/bin/activate missing: `make demo`/`make test` create it"
    env = {k: v for k, v in ENV.items() if k not in ("VIRTUAL_ENV", "PATH")} | {"PATH": "/usr/bin:/bin"}
    names = ("kedro", "dvc", "mlflow", "jupyter", "python")
    found = _ok(_run(f"{command} && command -v {' '.join(names)}", env=env), command).split()
    assert found == [str(venv / "bin" / name) for name in names], found


def check_exports_match_the_makefile(command: str) -> None:
    """The README's offline/telemetry exports are exactly the Makefile's and the package's (values included)."""
    from xfm_pipeline.offline import OFFLINE_ENVIRONMENT

    makefile = dict(re.findall(r"^export\s+(\w+)\s*:=\s*(\S+)\s*$", (REPO / "Makefile").read_text(), flags=re.M))
    makefile.pop("TRANSFORMERS_VERBOSITY", None)  # log verbosity, not an offline/telemetry setting
    assert makefile == OFFLINE_ENVIRONMENT, f"Makefile exports {makefile}, xfm_pipeline.offline has {OFFLINE_ENVIRONMENT}"
    words = shlex.split(command)
    assert words[0] == "export", command
    exported = dict(word.split("=", 1) for word in words[1:])
    assert exported == makefile, f"README exports {exported}, Makefile exports {makefile}"
    out = _ok(_run(f"{command} && env", env={"PATH": ENV["PATH"]}), command)
    assert all(f"{k}={v}" in out.splitlines() for k, v in exported.items())


def check_kedro_run(command: str) -> None:
    """Kedro accepts the options, and every named pipeline is registered (`kedro registry list`)."""
    params = _kedro_run_args(command)
    names = ([params["pipeline"]] if params["pipeline"] else []) + list(params["pipelines"] or [])
    missing = set(names) - set(_registered_pipelines())
    assert not missing, f"`{command}` names unregistered pipelines {missing}"


def check_multi_node_pretrain(command: str) -> None:
    """The README's conf/local/parameters_pretrain.yml + this command resolve (with the project's config
    loader settings) to valid pretraining parameters and the multi-node torchrun command line."""
    import tempfile

    from kedro.config import OmegaConfigLoader

    from xfm_pipeline.config import from_dict
    from xfm_pipeline.jobs.pretrain import PretrainParams
    from xfm_pipeline.settings import CONFIG_LOADER_ARGS
    from xfm_pipeline.training.launch import DistributedConfig, torchrun_command
    from xfm_pipeline.training.loop import LoopConfig

    runtime = _kedro_run_args(command)["params"]
    local = _yaml_block("conf/local/parameters_pretrain.yml")
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "conf"
        shutil.copytree(REPO / "conf" / "base", conf / "base", ignore=shutil.ignore_patterns("*credentials*"))
        (conf / "local").mkdir()
        (conf / "local" / "parameters_pretrain.yml").write_text(yaml.safe_dump(local))
        params = OmegaConfigLoader(str(conf), runtime_params=runtime, **CONFIG_LOADER_ARGS)["parameters"]["pretrain"]
    base = yaml.safe_load((REPO / "conf/base/parameters_pretrain.yml").read_text())["pretrain"]
    assert params["image_text"] == base["image_text"] and params["loop"]["max_steps"] == base["loop"]["max_steps"], "conf/local dropped base keys"
    pretrain = from_dict(PretrainParams, params, path="pretrain")
    from_dict(LoopConfig, pretrain.loop, path="pretrain.loop")
    dist = from_dict(DistributedConfig, pretrain.distributed, path="pretrain.distributed")
    assert dist.node_rank == 1 and dist.nnodes == local["pretrain"]["distributed"]["nnodes"] > 1
    cmd = torchrun_command(dist, Path("job.json"))
    flags = (f"--nproc-per-node={dist.nproc_per_node}", f"--nnodes={dist.nnodes}", f"--rdzv-endpoint={dist.rdzv_endpoint}", "--rdzv-conf=is_host=false")
    for flag in flags:  # node 1 joins node 0's rendezvous; the worker numbers the ranks by node_rank
        assert flag in cmd, (flag, cmd)
    assert "--standalone" not in cmd


def check_tracking_uri(command: str) -> None:
    """After the export, the project's tracking URI (hook and step logger) is the server's."""
    code = "from xfm_pipeline.tracking import tracking_uri; print(tracking_uri())"
    out = _ok(_run(f"{command} && python -c {shlex.quote(code)}"), command)
    assert out.strip().splitlines()[-1] == command.split("=", 1)[1]


_REGISTERED: list[str] = []


def _registered_pipelines() -> list[str]:
    if not _REGISTERED:
        out = _ok(_run("kedro registry list"), "kedro registry list")
        _REGISTERED.extend(m.group(1) for m in re.finditer(r"^- (\S+)$", out, flags=re.M))
    return _REGISTERED


# -------------------------------------------------------------------------------------------- the sandbox


@pytest.fixture(scope="module")
def dvc_sandbox(tmp_path_factory) -> dict[str, str]:
    """The Sandbox commands, run in order in a fresh Git + DVC repository with the project's ignore files.

    A small annotation folder stands for the real dataset; before `dvc pull` the workspace copy and the
    local cache are deleted, so the pull must bring the data back from the remote. Returns each command's
    output (or raises with it).
    """
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("sandbox")
    repo, remote = root / "project", root / "remote"
    repo.mkdir()
    remote.mkdir()
    for name in (".gitignore", ".dvcignore"):
        shutil.copy2(REPO / name, repo / name)
    (repo / "data" / "01_raw").mkdir(parents=True)
    (repo / "data" / "01_raw" / ".gitkeep").touch()
    env = ENV | {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(root),
    }
    for setup in ("git init -q", "git add -A", "git commit -qm init", "dvc init -q"):
        _ok(_run(setup, repo, env), setup)
    dataset = repo / "data" / "01_raw" / "coco" / "annotations" / "captions.json"
    dataset.parent.mkdir(parents=True)
    dataset.write_text('[{"image": "train2014/1.jpg", "caption": "a cat"}]')
    placeholders = {"remote": str(remote)}
    steps = sorted((e.step, command, e) for command, entry in COMMANDS.items() for e in entry if isinstance(e, Sandbox))
    outputs = {}
    for _, command, entry in steps:
        if command == "dvc pull":
            shutil.rmtree(repo / "data" / "01_raw" / "coco")
            shutil.rmtree(repo / ".dvc" / "cache")
        actual = command
        for text, key in entry.substitute.items():
            actual = actual.replace(text, placeholders[key])
        outputs[command] = _ok(_run(actual, repo, env), actual)
    assert dataset.read_text().startswith('[{"image"'), "dvc pull did not restore the dataset"
    tracked = _ok(_run("git ls-files", repo, env), "git ls-files").split()
    assert "data/01_raw/coco.dvc" in tracked, tracked
    assert any(remote.rglob("*")), "dvc push wrote nothing to the remote"
    return outputs


# --------------------------------------------------------------------------------------------------- tests


def test_quick_start_is_exactly_the_two_set_up_commands():
    assert BASH_BLOCKS and BASH_BLOCKS[0] == ["make demo", "make test"], BASH_BLOCKS[:1]


def test_every_readme_command_is_in_the_table():
    missing = [c for c in README_COMMANDS if c not in COMMANDS]
    assert not missing, (
        "README.md has commands that no test exercises; add each to COMMANDS in tests/readme/test_readme_commands.py "
        "with how it is run (Run/Help/Server/Sandbox/Check here, or Covered by an existing test, or CI):\n  " + "\n  ".join(missing)
    )


def test_every_table_entry_is_still_in_the_readme():
    stale = [c for c in COMMANDS if c not in README_COMMANDS]
    assert not stale, "COMMANDS has entries no longer in README.md; remove them:\n  " + "\n  ".join(stale)


def test_every_referenced_test_exists():
    for command, entry in COMMANDS.items():
        for e in entry:
            if isinstance(e, Covered):
                path, _, function = e.test.partition("::")
                file = REPO / path
                assert file.is_file(), f"{command!r}: {path} does not exist"
                names = {n.name for n in ast.parse(file.read_text()).body if isinstance(n, ast.FunctionDef)}
                assert function in names, f"{command!r}: {path} has no test function {function}"
            elif isinstance(e, CI):
                lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
                assert command in lines, f"{command!r}: .ci/run does not run it"
            elif isinstance(e, Check):
                assert callable(globals().get(e.function)), f"{command!r}: no check function {e.function}"


@pytest.fixture(scope="module", autouse=True)
def servers(tmp_path_factory):
    """The Server commands, started when this module starts (MLflow needs ~20 s to create its store), so
    they boot while the other commands are checked; their tests, parametrized last, poll them."""
    started = {}
    for command, entry in COMMANDS.items():
        for e in entry:
            if isinstance(e, Server) and command in README_COMMANDS:
                started[command] = _start(command, tmp_path_factory.mktemp("server"))
    yield started
    for process, _, _ in started.values():
        _stop(process)


# servers last: they had the whole module to start
ORDERED = sorted(README_COMMANDS, key=lambda c: any(isinstance(e, Server) for e in COMMANDS.get(c, ())))


@pytest.mark.parametrize("command", ORDERED, ids=lambda c: c if len(c) <= 60 else c[:57] + "...")
def test_readme_command(command, request):
    entry = COMMANDS.get(command)
    if entry is None:
        pytest.fail(f"{command!r} is not in COMMANDS: add it (see test_every_readme_command_is_in_the_table)")
    for e in entry:
        if isinstance(e, Run):
            out = _ok(_run(command), command)
            for text in e.expect:
                assert text in out, f"`{command}`: {text!r} not in its output:\n{out[-3000:]}"
        elif isinstance(e, Help):
            out = _ok(_run(f"{command} --help"), f"{command} --help")
            for flag in (w.split("=", 1)[0] for w in shlex.split(command) if w.startswith("--")):
                assert flag in out, f"`{command}`: {flag} is not an option of the command:\n{out[-3000:]}"
        elif isinstance(e, Server):
            _poll(command, e, *request.getfixturevalue("servers")[command])
        elif isinstance(e, Sandbox):
            assert command in request.getfixturevalue("dvc_sandbox")
        elif isinstance(e, Check):
            globals()[e.function](command)
        elif isinstance(e, DryMake):
            words = command.split()
            assert words[0] == "make" and len(words) == 2, command
            _ok(_run(f"make -n {words[1]}"), f"make -n {words[1]}")


def _start(command: str, cwd: Path) -> tuple[subprocess.Popen, int, Path]:
    """Start the server as written + ``--host 127.0.0.1 --port <free>`` in ``cwd`` (relative store paths land there)."""
    port = _free_port()
    with open(cwd / "server.log", "w") as out:
        process = subprocess.Popen(
            shlex.split(command) + ["--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, ended as a whole by _stop
        )
    return process, port, cwd


def _poll(command: str, server: Server, process: subprocess.Popen, port: int, cwd: Path) -> None:
    """Wait up to 90 s for ``server.path`` to answer with ``server.expect``."""
    log = cwd / "server.log"
    started, body = time.monotonic(), None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() - started < 90:
        with contextlib.suppress(OSError):
            with opener.open(f"http://127.0.0.1:{port}{server.path}", timeout=5) as response:
                body = response.read().decode()
            break
        assert process.poll() is None, f"`{command}` exited ({process.returncode}):\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    assert body is not None, f"`{command}` did not answer {server.path} in 90 s:\n{log.read_text()[-3000:]}"
    assert server.expect in body, body[:500]
    if "sqlite:///" in command:  # the command's relative store is created where it is started
        store = command.split("sqlite:///", 1)[1].split()[0]
        assert (cwd / store).is_file(), f"{store} not created in the working directory"


def _check_model_init_yaml(block: dict) -> None:
    from xfm_pipeline.config import from_dict
    from xfm_pipeline.model.presets import PRESETS
    from xfm_pipeline.pipelines.model_init.nodes import ModelInitParams

    params = from_dict(ModelInitParams, block["model_init"], path="model_init")
    assert params.preset in PRESETS and params.official_checkpoint and params.tokenizer, params


def _check_catalog_yaml(block: dict) -> None:
    base = {}
    for path in sorted((REPO / "conf" / "base").glob("catalog*.yml")):
        base.update(yaml.safe_load(path.read_text()) or {})
    for name, entry in block.items():
        assert name in base, f"conf/local/catalog.yml in README: {name} is not a dataset of conf/base/catalog*.yml"
        assert entry["type"] == base[name]["type"], (name, entry["type"], base[name]["type"])


CONF_LOCAL_CHECKS = {
    "parameters_model_init.yml": _check_model_init_yaml,
    "parameters_pretrain.yml": lambda block: None,  # resolved and validated by check_multi_node_pretrain
    "catalog.yml": _check_catalog_yaml,
}


def test_readme_conf_local_yaml_blocks_are_valid():
    """The README's ```yaml blocks headed `# conf/local/<file>` use only existing keys and datasets."""
    seen = []
    for block in _fenced_blocks(README_TEXT, "yaml"):
        header = block[0].strip() if block else ""
        if not header.startswith("# conf/local/"):
            continue
        name = header.removeprefix("# conf/local/")
        assert name in CONF_LOCAL_CHECKS, f"README yaml block for conf/local/{name}: add a check to CONF_LOCAL_CHECKS"
        CONF_LOCAL_CHECKS[name](yaml.safe_load("\n".join(block)))
        seen.append(name)
    assert "parameters_pretrain.yml" not in seen or any(
        isinstance(e, Check) and e.function == "check_multi_node_pretrain" for entry in COMMANDS.values() for e in entry
    )
