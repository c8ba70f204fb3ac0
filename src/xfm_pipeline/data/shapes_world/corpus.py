"""A large image-text pretraining corpus of the shapes world, written straight to WebDataset shards.

For scale tests and benchmarks (benchmarks/data_throughput.py): no loose image files, and memory flat in
the corpus size (scenes are drawn, rendered, encoded and written one at a time; shards in parallel processes). The same
arguments give byte-identical shards, whatever the number of processes.

    python -m xfm_pipeline.data.shapes_world.corpus --out /tmp/corpus_200k --samples 200000 --workers 2
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from xfm_pipeline.data.images import jpeg_bytes
from xfm_pipeline.data.shapes_world.language import captions
from xfm_pipeline.data.shapes_world.render import render_scene
from xfm_pipeline.data.shapes_world.scenes import derive_rng, sample_scene
from xfm_pipeline.data.shards import KEY_DIGITS, SHARD_PATTERN, Sample, ShardInfo, ShardSet, write_index, write_shards


def corpus_samples(start: int, stop: int, seed: int = 0, image_size: int = 96, captions_per_image: int = 2, jpeg_quality: int = 90) -> Iterator[Sample]:
    """Samples ``start .. stop-1``: a random scene's JPEG and ``captions_per_image`` captions of it. Sample
    ``i`` depends on ``(seed, i)`` only, so any range can be written by any process."""
    for i in range(start, stop):
        rng = derive_rng(seed, "corpus", i)
        scene = sample_scene(rng, i + 1, "pretrain", image_size, 2, 5, 0.5)
        yield Sample(f"{i:0{KEY_DIGITS}d}", {"desc": captions(scene, rng, captions_per_image)}, jpeg_bytes(render_scene(scene), jpeg_quality))


def _write_shard(out: Path, shard: int, start: int, stop: int, seed: int, image_size: int) -> ShardInfo:
    """Write samples ``start .. stop-1`` as shard number ``shard`` of ``out``."""
    part = out / f".part-{shard:06d}"
    part.mkdir()
    (info,) = write_shards(corpus_samples(start, stop, seed, image_size), part, "image_text", max_samples=stop - start).shards
    name = SHARD_PATTERN % shard
    (part / info.file).rename(out / name)
    shutil.rmtree(part)
    return ShardInfo(name, info.samples, info.bytes, info.sha256)


def write_corpus(out: str | Path, n: int, seed: int = 0, image_size: int = 96, max_samples: int = 10000, workers: int = 1) -> ShardSet:
    """Write ``n`` samples of :func:`corpus_samples` as shards of ``max_samples`` into ``out`` (created),
    ``workers`` processes writing one shard each at a time, then ``index.json``."""
    from concurrent.futures import ProcessPoolExecutor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=False)
    starts = list(range(0, n, max_samples))
    jobs = [(out, i, start, min(start + max_samples, n), seed, image_size) for i, start in enumerate(starts)]
    if workers <= 1:
        shards = [_write_shard(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            shards = list(pool.map(_write_shard, *zip(*jobs)))
    shard_set = ShardSet(str(out), "xfm", "image_text", tuple(shards))
    write_index(shard_set)
    return shard_set


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="new directory for the shards and index.json")
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--max-samples", type=int, default=10000, help="samples per shard")
    parser.add_argument("--workers", type=int, default=1, help="processes writing shards")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    shards = write_corpus(args.out, args.samples, args.seed, args.image_size, args.max_samples, args.workers)
    print(f"wrote {shards.samples} samples in {len(shards.shards)} shards to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
