"""Latency and throughput of a registered VQA model behind ``mlflow models serve``.

Starts the scoring server as the README does (``mlflow models serve -m <uri> --env-manager local -h 127.0.0.1
-p <free port>``), sends a few warm-up requests, then one-question requests built from VQA records (image as
base64): ``--requests`` sequentially, then ``--requests`` from ``--threads`` threads at once. Prints p50/p95
latency and requests per second of each phase, as JSON. Usage:

    python benchmarks/serve_latency.py --model-uri models:/xfm-vqa/latest
    python benchmarks/serve_latency.py --checkpoint data/06_models/finetune_vqa

``--model-uri`` resolves in the tracking store of ``MLFLOW_TRACKING_URI`` (default: the project's
``mlflow.db``). ``--checkpoint`` first logs and registers that task checkpoint as ``xfm-vqa`` in a throw-away
store in a temporary directory (the project's store is not touched) and serves it from there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xfm_pipeline.offline import use_offline_environment

use_offline_environment()
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def register_in_temporary_store(checkpoint: str, directory: Path) -> str:
    """Log and register ``checkpoint`` (a VQA task checkpoint) in a new sqlite store in ``directory``; its URI."""
    from mlflow.tracking import MlflowClient

    from xfm_pipeline.serving import log_task_model

    uri = f"sqlite:///{directory / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("serve-latency", artifact_location=str(directory / "mlruns"))
    run = client.create_run(experiment, run_name="serve_latency")
    log_task_model(checkpoint, "finetune_vqa", run.info.run_id, uri)
    client.set_terminated(run.info.run_id)
    return uri


def vqa_records(data: Path, image_root: Path, count: int) -> list[dict]:
    """``count`` one-question records (cycling through ``data``), images as base64 text."""
    from xfm_pipeline.serving import encode_image

    questions = json.loads(data.read_text())
    if not questions:
        raise ValueError(f"{data}: no VQA records")
    images: dict[str, str] = {}
    records = []
    for i in range(count):
        q = questions[i % len(questions)]
        if q["image"] not in images:
            images[q["image"]] = encode_image(image_root / q["image"])
        records.append({"id": str(q.get("question_id", i)), "image": images[q["image"]], "question": q["question"]})
    return records


def timed_request(server, record: dict) -> float:
    """Seconds for one single-record request (raises on a non-200 answer)."""
    start = time.perf_counter()
    status, body = server.invoke([record])
    elapsed = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"request for question {record['id']} got HTTP {status}: {body}")
    return elapsed


def summary(latencies: list[float], wall_s: float) -> dict:
    """p50/p95/max latency (ms) and requests per second over the phase's wall time."""
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "requests_per_s": round(len(ordered) / wall_s, 2),
        "wall_s": round(wall_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", default="models:/xfm-vqa/latest", help="the registered model to serve")
    parser.add_argument("--checkpoint", help="register this VQA task checkpoint in a temporary store and serve it instead")
    parser.add_argument("--data", default="data/02_intermediate/vqa/test.json", help="VQA records the questions come from")
    parser.add_argument("--image-root", default="data/01_raw/shapes_world/images")
    parser.add_argument("--requests", type=int, default=50, help="requests per phase (one question each)")
    parser.add_argument("--threads", type=int, default=8, help="client threads of the concurrent phase")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first")
    args = parser.parse_args()

    from xfm_pipeline.serving import ScoringServer
    from xfm_pipeline.tracking import tracking_uri

    records = vqa_records(Path(args.data), Path(args.image_root), args.requests)
    with tempfile.TemporaryDirectory(prefix="serve-latency-") as tmp:
        uri, model_uri = tracking_uri(), args.model_uri
        if args.checkpoint:
            uri, model_uri = register_in_temporary_store(args.checkpoint, Path(tmp)), "models:/xfm-vqa/latest"
        started = time.perf_counter()
        with ScoringServer(model_uri, env={**os.environ, "MLFLOW_TRACKING_URI": uri}, log_path=Path(tmp) / "server.log") as server:
            startup_s = time.perf_counter() - started
            for record in records[: args.warmup]:
                timed_request(server, record)
            start = time.perf_counter()
            sequential = [timed_request(server, record) for record in records]
            sequential_s = time.perf_counter() - start
            start = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                concurrent = list(pool.map(lambda record: timed_request(server, record), records))
            concurrent_s = time.perf_counter() - start
    report = {
        "model_uri": model_uri,
        "server_startup_s": round(startup_s, 1),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "sequential": summary(sequential, sequential_s),
        f"concurrent_{args.threads}_threads": summary(concurrent, concurrent_s),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
