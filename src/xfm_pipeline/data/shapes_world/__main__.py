"""Write a shapes world to a directory without Kedro.

python -m xfm_pipeline.data.shapes_world --out /tmp/shapes --preset tiny --seed 3
"""

from __future__ import annotations

import argparse
import json
import time

from xfm_pipeline.data.shapes_world import generate_shapes_world, shapes_world_config, write_shapes_world
from xfm_pipeline.data.shapes_world.config import PRESETS


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write (the layout of docs/data_formats.md)")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    world = generate_shapes_world(shapes_world_config(args.preset, {"seed": args.seed}))
    files = write_shapes_world(world, args.out)
    size = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} files ({size / 1e6:.1f} MB) to {args.out} in {time.perf_counter() - start:.1f} s")
    print(json.dumps(world.metadata["baselines"], indent=2))


if __name__ == "__main__":
    main()
