"""Entry point of every torchrun rank: ``python -m xfm_pipeline.training.worker job.json``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from xfm_pipeline.training.launch import RESULT_FILE, resolve_job


def node_ordered_rank(node_rank: int, env: Mapping[str, str]) -> int:
    """This process's global rank counted node by node: ``node_rank x LOCAL_WORLD_SIZE + LOCAL_RANK``.

    torchrun's c10d rendezvous numbers the nodes in the order of their host names and process ids, so its
    ``RANK`` 0 may be on any node; counted by node rank, global rank 0 (checkpoints, MLflow metrics, the
    result) is on node 0, whose Kedro run saves the outputs. ``env`` is torchrun's worker environment.

    Raises:
        RuntimeError: the launch does not fit this numbering: nodes with different process counts, a node
            rank outside the rendezvous, or workers that do not use torchrun's agent store (rank 0 would then
            host the process group's store at ``MASTER_ADDR``, the address of another node).
    """
    local_rank, local_world = int(env["LOCAL_RANK"]), int(env["LOCAL_WORLD_SIZE"])
    nodes, world = int(env["GROUP_WORLD_SIZE"]), int(env["WORLD_SIZE"])
    if world != nodes * local_world or not 0 <= node_rank < nodes:
        raise RuntimeError(
            f"node {node_rank}: the rendezvous has {world} processes on {nodes} nodes, this node {local_world}; "
            "every node needs the same nproc_per_node and a node_rank in 0..nnodes-1"
        )
    if nodes > 1 and env.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        raise RuntimeError("multi-node ranks are numbered by node_rank, which needs torchrun's agent store: unset TORCH_DISABLE_SHARE_RDZV_TCP_STORE")
    return node_rank * local_world + local_rank


def main(job_file: str) -> None:
    """Run the job of ``job_file`` on this rank; global rank 0 writes the result next to it (atomically)."""
    spec = json.loads(Path(job_file).read_text())
    if "LOCAL_WORLD_SIZE" in os.environ:  # under torchrun (a lone worker runs as rank 0)
        os.environ["RANK"] = str(node_ordered_rank(int(spec.get("node_rank", 0)), os.environ))
    result = resolve_job(spec["job"])(spec["config"])
    if int(os.environ.get("RANK", "0")) == 0:
        out = Path(job_file).with_name(RESULT_FILE)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1])
