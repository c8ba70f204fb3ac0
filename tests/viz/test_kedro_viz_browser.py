"""Kedro-Viz checked in a real browser.

``kedro viz build`` runs on the project; its static output is served on 127.0.0.1 and opened in headless
Chromium (Debian's ``chromium``, installed by ``make browser``; no Playwright browser download). The flowchart
must render, the pipeline selector must list every registered pipeline, and the task nodes of selected
pipelines must be drawn. The built JSON (``api/main``, ``api/pipelines/<id>``) is checked against the
registered pipelines, and ``kedro viz run`` is started as a server and asked for every pipeline.

The registered pipelines are read in a separate process (``bootstrap_project`` + ``pipelines``), so the
truth the UI is compared with does not come from Kedro-Viz itself.

Nothing leaves the machine: telemetry is off, the Kedro-Viz PyPI version check goes to a dead proxy
(``kedro viz run`` asks PyPI for the latest version at start and on ``/api/version``), and the browser
aborts every request that is not to the local server (the UI asks Google Fonts for a font).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from kedro_project import make_project
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
KEDRO = Path(sys.executable).with_name("kedro")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Pipelines whose nodes are looked for in the drawn flowchart: a plain one and a namespaced one (its node sits
# in a modular pipeline, drawn collapsed unless every modular pipeline is expanded).
SHOWN_PIPELINES = ("pretrain", "finetune_vqa")
# A dead local proxy: requests to PyPI fail at once instead of reaching it (the local server is exempt).
DEAD_PROXY = "http://127.0.0.1:9"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        XFM_MLFLOW="0",
        OMP_NUM_THREADS="1",
        HTTP_PROXY=DEAD_PROXY,
        HTTPS_PROXY=DEAD_PROXY,
        http_proxy=DEAD_PROXY,
        https_proxy=DEAD_PROXY,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        COLUMNS="200",  # rich wraps Kedro's log lines at 80 columns otherwise
    )
    return env


def _local_get(url: str, timeout: float = 10.0) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


@pytest.fixture(scope="module")
def registered_pipelines() -> dict[str, list[str]]:
    """{pipeline name: sorted node names} from the project's pipeline registry, read in a fresh process."""
    code = (
        "import json, pathlib\n"
        "from kedro.framework.startup import bootstrap_project\n"
        "bootstrap_project(pathlib.Path.cwd())\n"
        "from kedro.framework.project import pipelines\n"
        "print('PIPELINES=' + json.dumps({k: sorted(n.name for n in p.nodes) for k, p in pipelines.items()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("PIPELINES="))
    pipelines = json.loads(line.removeprefix("PIPELINES="))
    assert set(SHOWN_PIPELINES) <= set(pipelines) and "__default__" in pipelines
    return pipelines


@pytest.fixture(scope="module")
def project_view(tmp_path_factory) -> Path:
    """A temporary copy of the project (``kedro_project.make_project``: conf, pyproject.toml, src linked).

    ``kedro viz build`` writes ``build/`` into the working directory, which must be the project root, and
    Kedro-Viz keeps its own files in ``.viz/``; run here, both land in the tmp dir and never in (or over a
    ``build/`` of) the shared working tree.
    """
    return make_project(tmp_path_factory.mktemp("viz") / "project")


@pytest.fixture(scope="module")
def viz_build(project_view) -> Path:
    """The output directory of ``kedro viz build`` on the project."""
    project = project_view
    started = time.monotonic()
    result = subprocess.run([str(KEDRO), "viz", "build"], cwd=project, env=_env(), capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    # The command prints its errors and still exits 0: success is the message and the files.
    assert result.returncode == 0 and "Success!" in output, output[-4000:]
    build = project / "build"
    for name in ("index.html", "api/main"):
        assert (build / name).is_file(), f"kedro viz build wrote no {name}:\n{output[-4000:]}"
    print(f"kedro viz build: {time.monotonic() - started:.1f} s")
    return build


def _task_names(pipeline_json: dict) -> list[str]:
    return sorted(n.get("full_name") or n["name"] for n in pipeline_json["nodes"] if n["type"] == "task")


def test_built_json_has_every_registered_pipeline_and_its_nodes(viz_build, registered_pipelines):
    main = json.loads((viz_build / "api" / "main").read_text())
    assert [p["id"] for p in main["pipelines"]] == list(registered_pipelines)
    assert main["selected_pipeline"] == "__default__"
    assert _task_names(main) == registered_pipelines["__default__"]
    for name, nodes in registered_pipelines.items():
        path = viz_build / "api" / "pipelines" / name
        assert path.is_file(), f"no api/pipelines/{name} in the build"
        data = json.loads(path.read_text())
        assert data["selected_pipeline"] == name
        assert _task_names(data) == nodes, name


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass

    def guess_type(self, path):
        # the build's API files have no extension: serve them as JSON, like the Kedro-Viz server does
        if "/api/" in str(path).replace(os.sep, "/"):
            return "application/json"
        return super().guess_type(path)


@contextlib.contextmanager
def _serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _shown_names(name: str) -> set[str]:
    """How Kedro-Viz may label a node: its short name, raw or pretty (``Finetune Vqa``)."""
    short = name.rsplit(".", 1)[-1]
    return {short, short.replace("_", " ").title(), short.replace("_", " ").capitalize()}


def _select_pipeline(page, name: str) -> None:
    selector = page.locator('[data-test="kedro-pipeline-selector"]')
    selector.locator(".dropdown__label").click()
    option = selector.locator(".menu-option", has=page.locator(f'[title="{name}"]')).first
    option.click()
    page.wait_for_function(
        """name => document.querySelector('[data-test="kedro-pipeline-selector"] .dropdown__label')
                   ?.textContent.trim() === name""",
        arg=name,
        timeout=15_000,
    )


def _drawn_tasks(page, ids: dict[str, str], expected: list[str]) -> dict[str, str]:
    """{full name: label} of the task nodes drawn in the flowchart, once those are the expected ones (the
    previous pipeline's nodes leave in a transition).

    A drawn node carries the build's node id (``data-id``); ``ids`` maps those to full node names (the
    ``data-node-fullname`` attribute of a namespaced task is its short name, ``finetune`` for every
    ``<task>.finetune``).
    """
    wanted = sorted(i for i, name in ids.items() if name in set(expected))
    with contextlib.suppress(PlaywrightTimeoutError):  # on a timeout, the caller's comparison says what is drawn
        page.wait_for_function(
            """ids => {
                const drawn = new Set([...document.querySelectorAll('g.pipeline-node--task')]
                    .map(g => g.getAttribute('data-id')));
                return drawn.size === ids.length && ids.every(i => drawn.has(i));
            }""",
            arg=wanted,
            timeout=20_000,
        )
    drawn = page.locator("g.pipeline-node--task").evaluate_all(
        "gs => gs.map(g => [g.getAttribute('data-id'), g.querySelector('text.pipeline-node__text')?.textContent])"
    )
    return {ids.get(i, f"<unknown id {i}>"): (label or "").strip() for i, label in drawn}


def test_kedro_viz_build_renders_in_chromium(viz_build, registered_pipelines, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: Debian's chromium could not be installed (`make browser`)")

    main = json.loads((viz_build / "api" / "main").read_text())
    ids = {n["id"]: n.get("full_name") or n["name"] for n in main["nodes"] if n["type"] == "task"}
    errors: list[str] = []
    bad_local: list[str] = []  # local requests that failed or got an error status
    with _serve(viz_build) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # offline and hermetic: only the local server is reachable (the UI asks Google Fonts for a font)
            page.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/]|data:|blob:).*"), lambda route: route.abort())
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda req: bad_local.append(f"{req.url} failed") if req.url.startswith(url) else None)
            page.on(
                "response",
                lambda res: bad_local.append(f"{res.url} {res.status}") if res.url.startswith(url) and res.status >= 400 else None,
            )
            # expandAllPipelines: nodes inside modular pipelines (namespaces) are drawn, not one collapsed box
            response = page.goto(f"{url}/?expandAllPipelines=true", wait_until="domcontentloaded")
            assert response is not None and response.ok
            page.wait_for_selector("g.pipeline-node--task", timeout=30_000)
            with contextlib.suppress(PlaywrightTimeoutError):  # the feature-hints pop-up covers part of the flowchart
                page.locator(".feature-hints__close").click(timeout=2_000)

            # the pipeline selector lists every registered pipeline
            selector = page.locator('[data-test="kedro-pipeline-selector"]')
            assert selector.locator(".dropdown__label").inner_text().strip() == "__default__"
            titles = selector.locator(".menu-option .menu-option__content").evaluate_all("els => els.map(e => e.getAttribute('title'))")
            missing = set(registered_pipelines) - set(titles)
            assert not missing, f"pipelines missing from the selector: {sorted(missing)} (listed: {titles})"

            # the default pipeline's flowchart holds every node of the project; then the selected pipelines'
            for name in ("__default__", *SHOWN_PIPELINES):
                if name != "__default__":
                    _select_pipeline(page, name)
                expected = registered_pipelines[name]
                drawn = _drawn_tasks(page, ids, expected)
                assert sorted(drawn) == expected, f"{name}: drawn {sorted(drawn)}, registered {expected}"
                for node, label in drawn.items():
                    assert label in _shown_names(node), f"{name}: node {node} drawn with the label {label!r}"
                page.mouse.move(1590, 60)  # off the nodes: no hover highlight in the picture
                page.wait_for_timeout(1500)  # let the sidebar and zoom-to-fit transitions finish
                page.screenshot(path=str(tmp_path / f"kedro_viz_{name}.png"))
        finally:
            browser.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    # api/metadata is not part of a static build (404): the UI asks for it and does without
    assert all(u.startswith(f"{url}/api/metadata ") for u in bad_local), bad_local
    assert (tmp_path / f"kedro_viz_{SHOWN_PIPELINES[0]}.png").stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")


def _free_port(start: int = 20_000) -> int:
    """A free port below 49152 (``kedro viz run`` refuses higher ones, where the kernel's ephemeral ports lie)."""
    for port in range(start + os.getpid() % 10_000, 49_000, 7):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def test_kedro_viz_run_serves_every_registered_pipeline(registered_pipelines, project_view, tmp_path):
    port = _free_port()
    log = tmp_path / "kedro_viz_run.log"
    started = time.monotonic()
    with open(log, "w") as out:
        # own session: `kedro viz run` serves from a spawned child, so the whole group is ended at the end
        process = subprocess.Popen(
            [str(KEDRO), "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project_view,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        main = None
        while time.monotonic() - started < 90:
            # `kedro viz run` moves to the next port when the chosen one got taken meanwhile
            match = re.search(r"running at\s+http://127\.0\.0\.1:(\d+)", log.read_text())
            if match:
                port = int(match.group(1))
            with contextlib.suppress(OSError, ValueError):
                main = json.loads(_local_get(f"http://127.0.0.1:{port}/api/main", timeout=5))
                break
            assert process.poll() is None, f"kedro viz run exited ({process.returncode}):\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        assert main is not None, f"kedro viz run did not answer /api/main in 90 s:\n{log.read_text()[-4000:]}"
        print(f"kedro viz run answered after {time.monotonic() - started:.1f} s")

        assert [p["id"] for p in main["pipelines"]] == list(registered_pipelines)
        assert _task_names(main) == registered_pipelines["__default__"]
        for name, nodes in registered_pipelines.items():
            data = json.loads(_local_get(f"http://127.0.0.1:{port}/api/pipelines/{name}"))
            assert data["selected_pipeline"] == name
            assert _task_names(data) == nodes, name
        assert b"<html" in _local_get(f"http://127.0.0.1:{port}/").lower()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
