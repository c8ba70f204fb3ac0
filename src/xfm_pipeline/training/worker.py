"""Entry point of every torchrun rank: ``python -m xfm_pipeline.training.worker run_dir/job.json``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from xfm_pipeline.training.launch import RESULT_FILE, resolve_job


def main(job_file: str) -> None:
    """Run the job of ``job_file`` on this rank; rank 0 writes the result next to it (atomically)."""
    spec = json.loads(Path(job_file).read_text())
    result = resolve_job(spec["job"])(spec["config"])
    if int(os.environ.get("RANK", "0")) == 0:
        out = Path(job_file).with_name(RESULT_FILE)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1])
