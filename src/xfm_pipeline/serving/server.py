"""``mlflow models serve`` of a logged model as a context manager, and a JSON client for its ``/invocations``.

The server is the README's command, ``mlflow models serve -m <model uri> --env-manager local -h 127.0.0.1 -p
<port>``, started in its own process group (it starts uvicorn workers) and stopped as a whole. Requests bypass
any HTTP proxy of the environment (the server is on loopback).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def encode_image(path: str | Path) -> str:
    """An image file's bytes as base64 text (what a served record's image field holds)."""
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ScoringServer:
    """The MLflow scoring server of ``model_uri`` on ``host:port`` (a free port unless given).

    ``with ScoringServer(uri, env=...) as server:`` starts it and waits until ``/ping`` answers (up to
    ``startup_s``); leaving the block stops it, also after an error. ``env``: the server's environment (its
    ``MLFLOW_TRACKING_URI`` says where ``models:/`` URIs are resolved); default: this process's, in both
    cases with this Python's ``bin`` directory first on ``PATH`` (as with the venv active). The server's
    output goes to ``log_path`` (default: discarded).
    """

    def __init__(
        self,
        model_uri: str,
        port: int | None = None,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        log_path: str | Path | None = None,
        startup_s: float = 120.0,
    ):
        self.model_uri, self.host = model_uri, host
        self.port = port or free_port(host)
        self.env = dict(os.environ if env is None else env)
        bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` runs `uvicorn` from PATH: the venv's
        self.env["PATH"] = os.pathsep.join([bin_dir, self.env.get("PATH", "")])
        self.log_path = Path(log_path) if log_path else None
        self.startup_s = startup_s
        self.process: subprocess.Popen | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The server's command line (the venv's ``mlflow`` next to this Python)."""
        mlflow = Path(sys.executable).with_name("mlflow")
        return [str(mlflow), "models", "serve", "-m", self.model_uri, "--env-manager", "local", "-h", self.host, "-p", str(self.port)]

    def __enter__(self) -> ScoringServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait until ``/ping`` answers.

        Raises:
            RuntimeError: the server exited or did not answer within ``startup_s`` (the message holds the end
                of its log when there is one); the server is stopped first.
        """
        with open(self.log_path, "w") if self.log_path else contextlib.nullcontext(subprocess.DEVNULL) as out:
            self.process = subprocess.Popen(self.command(), env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_s
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                status = f"exited with {self.process.returncode}" if self.process.poll() is not None else f"did not answer /ping in {self.startup_s:.0f} s"
                self.stop()
                tail = self.log_path.read_text()[-3000:] if self.log_path and self.log_path.is_file() else "(no log kept)"
                raise RuntimeError(f"`{' '.join(self.command())}` {status}:\n{tail}")
            time.sleep(0.5)

    def ping(self) -> bool:
        """Whether ``/ping`` answers 200."""
        with contextlib.suppress(OSError):
            with self._opener.open(f"{self.url}/ping", timeout=5) as response:
                return response.status == 200
        return False

    def invoke(self, records: list[dict[str, Any]] | Any, timeout: float = 120.0) -> tuple[int, Any]:
        """POST ``{"dataframe_records": records}`` to ``/invocations``: ``(HTTP status, parsed JSON body)``
        (the body as text when it is not JSON). A non-list ``records`` is sent as the whole JSON body."""
        payload = {"dataframe_records": records} if isinstance(records, list) else records
        return self.post(json.dumps(payload).encode(), timeout=timeout)

    def post(self, body: bytes, content_type: str = "application/json", timeout: float = 120.0) -> tuple[int, Any]:
        """POST raw ``body`` to ``/invocations``: ``(HTTP status, parsed JSON body or text)``."""
        request = urllib.request.Request(f"{self.url}/invocations", data=body, headers={"Content-Type": content_type}, method="POST")
        try:
            with self._opener.open(request, timeout=timeout) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    def stop(self) -> None:
        """End the server's process group, workers included (SIGTERM, then SIGKILL after 15 s)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
