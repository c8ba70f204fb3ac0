"""Benchmark of the pretraining data path: samples/s per core, peak RSS against corpus size, validation images/s.

Throughput: image-text samples through decode + the pretraining transforms (RandomResizedCrop, flip,
RandAugment, normalise) + tokenise and mask the caption + the MIM patch mask, collated into batches, on ONE
core (``torch.set_num_threads(1)``, no DataLoader workers), from

* ``shards``: WebDataset shards through the training stream (``training.streams``, 2 lanes);
* ``loose``: the same images as loose JPEG files and JSON-lines records, through the same stream;
* ``torchvision``: a plain ``torchvision.datasets.ImageFolder`` + ``DataLoader`` over the same loose files
  with the same image transforms, and the same tokenisation of the image's first caption;
* ``torchvision_images``: the same without text (images only).

The two streams also draw the MLM mask of the caption and the MIM patch mask (the baselines do not);
``shards_no_masks`` is the shard stream without them: the same work as ``torchvision``, the like-for-like ratio.
The streams decode JPEGs with ``torchvision.io.decode_jpeg`` and tokenise through the tokenizer's Rust backend
(``data.text.FixedLengthTokenizer``): the same pixels and ids as the baseline's PIL loader and ``tokenizer(...)``
call, which are what a plain loader uses.

The three run in alternating rounds (the machine is shared; its speed drifts) and the median round counts.
"Per core" is samples per second of the process's CPU time; wall-clock samples/s are printed beside it.

Peak RSS: a fresh process streams ``--rss-batches`` batches from a shard corpus of ``--samples`` samples and
one of ``--large`` (a shapes-world corpus written straight to shards by ``xfm_pipeline.data.shapes_world.corpus``);
memory must not grow with the corpus.

Validation: the shard corpus validated as a sharded raw corpus (``data.validation.shards``, 2 processes).

    python benchmarks/data_throughput.py --work /tmp/xfm_bench --samples 10000
    python -m xfm_pipeline.data.shapes_world.corpus --out /tmp/xfm_bench/corpus_200k --samples 200000 --workers 2
    python benchmarks/data_throughput.py --work /tmp/xfm_bench --samples 10000 --large /tmp/xfm_bench/corpus_200k
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from xfm_pipeline.offline import use_offline_environment

use_offline_environment()

IMAGE_SIZE = 64  # the tiny preset's image size and patch grid (the shapes world's images are 96 px)
GRID = 8
BATCH = 32
LANES = 2
SHUFFLE_BUFFER = 1000


def _prepare(work: Path, n: int) -> tuple[Path, Path]:
    """``work/corpus_<n>`` (shards of 1,000 samples) and ``work/loose_<n>`` (images/c0/<key>.jpg + records.jsonl)."""
    from xfm_pipeline.data.shapes_world.corpus import write_corpus
    from xfm_pipeline.data.shards import iter_samples

    shards, loose = work / f"corpus_{n}", work / f"loose_{n}"
    if not (shards / "index.json").is_file():
        write_corpus(shards, n, max_samples=1000, workers=2)
    if not (loose / "records.jsonl").is_file():
        from xfm_pipeline.data.shards import open_shards

        (loose / "images" / "c0").mkdir(parents=True, exist_ok=True)
        with open(loose / "records.jsonl", "w") as fh:
            for sample in iter_samples(open_shards(shards)):
                (loose / "images" / "c0" / f"{sample.key}.jpg").write_bytes(sample.image)
                fh.write(json.dumps({"image": f"c0/{sample.key}.jpg", **sample.record}) + "\n")
    return shards, loose


class _NoTextMask:
    """Stands in for the MLM masker (``shards_no_masks``): nothing masked."""

    def mask_rows(self, id_rows, att_rows, rng=None, word_rows=None):
        return [list(ids) for ids in id_rows], [[0] for _ in id_rows], [[-100] for _ in id_rows]


class _NoPatchMask:
    """Stands in for the MIM masker (``shards_no_masks``): no patch masked."""

    def sample(self, rng=None):
        import torch

        return torch.zeros(GRID * GRID, dtype=torch.bool)


def _builder(masks: bool = True):
    from xfm_pipeline.data import pretrain_datasets as pd
    from xfm_pipeline.data.masking import BlockMaskGenerator, TextMasker, scaled_mask_sizes
    from xfm_pipeline.data.transforms import pretrain_transform
    from xfm_pipeline.model.text import load_tokenizer

    tokenizer = load_tokenizer("all-minilm-l6-v2")
    masked, block = scaled_mask_sizes(GRID * GRID)
    text_masker = TextMasker(tokenizer, 0.5, 15) if masks else _NoTextMask()
    patch_masker = BlockMaskGenerator(GRID, masked, block) if masks else _NoPatchMask()
    return pd.ImageTextDataset([], None, pretrain_transform(IMAGE_SIZE), tokenizer, text_masker, patch_masker, pd.TextSettings())


def _stream(source, masks: bool = True):
    from xfm_pipeline.data import pretrain_datasets as pd
    from xfm_pipeline.training.streams import LaneDataset, LaneLoader, StreamLayout, StreamPosition, assign_indices

    assign_indices([source])
    layout = StreamLayout(LANES, BATCH, SHUFFLE_BUFFER, seed=0)
    return iter(LaneLoader(LaneDataset([source], layout, _builder(masks), StreamPosition()), pd.collate("image_text")))


def _loaders(shards: Path, loose: Path) -> dict:
    import torch
    import torchvision

    from xfm_pipeline.data.formats.pretrain import read_corpus
    from xfm_pipeline.data.text import pre_caption, tokenize
    from xfm_pipeline.data.transforms import pretrain_transform
    from xfm_pipeline.model.text import load_tokenizer
    from xfm_pipeline.training.stream_sources import StreamSource

    records = read_corpus(loose / "records.jsonl", "image_text")
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    captions = {Path(r.image).stem: r.desc[0] for r in records}

    class CaptionedFolder(torchvision.datasets.ImageFolder):
        """ImageFolder whose target is the tokenised first caption of the image (same tokenizer, 30 tokens)."""

        def __getitem__(self, index):
            image, _ = super().__getitem__(index)
            text = tokenize(tokenizer, pre_caption(captions[Path(self.samples[index][0]).stem]), 30)
            return image, text.text_ids[0]

    def folder_loader(dataset):
        return iter(torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=0, generator=torch.Generator().manual_seed(0)))

    transform = pretrain_transform(IMAGE_SIZE)
    return {
        "shards": _stream(StreamSource.from_shards("shards", "image_text", shards)),
        "shards_no_masks": _stream(StreamSource.from_shards("shards", "image_text", shards), masks=False),
        "loose": _stream(StreamSource.from_records("loose", "image_text", records, str(loose / "images"))),
        "torchvision": folder_loader(CaptionedFolder(str(loose / "images"), transform=transform)),
        "torchvision_images": folder_loader(torchvision.datasets.ImageFolder(str(loose / "images"), transform=transform)),
    }


def throughput(shards: Path, loose: Path, batches: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median samples per CPU-second and per wall-second of each loader over ``rounds`` alternating rounds."""
    import torch

    torch.set_num_threads(1)
    loaders = _loaders(shards, loose)
    for it in loaders.values():  # warm-up: open files, fill the first shuffle windows
        next(it)
    cpu: dict[str, list[float]] = {k: [] for k in loaders}
    wall: dict[str, list[float]] = {k: [] for k in loaders}
    for _ in range(rounds):
        for name, it in loaders.items():
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(batches):
                next(it)
            cpu[name].append(batches * BATCH / (time.process_time() - c0))
            wall[name].append(batches * BATCH / (time.perf_counter() - w0))
    return {k: {"per_cpu_second": statistics.median(cpu[k]), "per_wall_second": statistics.median(wall[k])} for k in loaders}


def peak_rss_child(corpus: str, batches: int) -> None:
    """(In a fresh process) stream ``batches`` batches from the shard corpus and print the peak RSS in MiB."""
    import torch

    from xfm_pipeline.training.stream_sources import StreamSource

    torch.set_num_threads(1)
    it = _stream(StreamSource.from_shards("corpus", "image_text", corpus))
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": rss, "seconds": time.perf_counter() - start}))


def peak_rss(corpus: Path, batches: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(corpus), "--rss-batches", str(batches)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def validation(shards: Path, workers: int) -> dict[str, float]:
    """Validate the shard corpus as a sharded raw corpus (no evaluation index): images/s of wall time."""
    from xfm_pipeline.config import from_dict
    from xfm_pipeline.data.validation import ValidationParams, validate_task

    params = from_dict(ValidationParams, {"shard_workers": workers})
    start = time.perf_counter()
    outcomes = validate_task("pretrain", {"pretrain_image_text": [{"name": "corpus", "path": str(shards), "weight": 1.0}]}, params, {})
    seconds = time.perf_counter() - start
    n = sum(o.n_records for o in outcomes)
    return {"images": n, "failed": sum(len(o.reasons) for o in outcomes), "seconds": seconds, "images_per_s": n / seconds, "workers": workers}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/xfm_bench"), help="where the corpora are written (reused when present)")
    parser.add_argument("--samples", type=int, default=10000, help="samples of the small corpus (shards and loose files)")
    parser.add_argument("--large", type=Path, help="a large shard corpus to compare peak RSS with (see the module docstring)")
    parser.add_argument("--batches", type=int, default=20, help="batches per loader and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss-batches", type=int, default=150)
    parser.add_argument("--validation-workers", type=int, default=2)
    parser.add_argument("--parts", default="throughput,rss,validation", help="which measurements to run (comma-separated)")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        peak_rss_child(args.rss_child, args.rss_batches)
        return
    parts = set(args.parts.split(","))
    shards, loose = _prepare(args.work, args.samples)
    results: dict = {"image_size": IMAGE_SIZE, "batch": BATCH}
    if "throughput" in parts:
        results["throughput"] = throughput(shards, loose, args.batches, args.rounds)
        base = results["throughput"]["torchvision"]["per_cpu_second"]
        for name, row in results["throughput"].items():
            per_core, wall = row["per_cpu_second"], row["per_wall_second"]
            print(f"{name:18s} {per_core:7.1f} samples/s per core ({wall:7.1f} wall)  ratio to torchvision {per_core / base:.2f}")
    if "rss" in parts:
        results["peak_rss"] = {str(args.samples): peak_rss(shards, args.rss_batches)}
        if args.large:
            from xfm_pipeline.data.shards import open_shards

            results["peak_rss"][str(open_shards(args.large).samples)] = peak_rss(args.large, args.rss_batches)
        for n, row in results["peak_rss"].items():
            print(f"peak RSS streaming {args.rss_batches} batches of a {n}-sample corpus: {row['peak_rss_mib']:.0f} MiB")
    if "validation" in parts:
        results["validation"] = v = validation(shards, args.validation_workers)
        print(
            f"validation: {v['images']} images in {v['seconds']:.1f} s with {v['workers']} processes = {v['images_per_s']:.0f} images/s ({v['failed']} failed)"
        )
    (args.work / "data_throughput.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
