"""ImageNet-1k fine-tuning and linear probing (docs/xfm.md#imagenet).

Both tasks use the vision encoder alone and classify the POOLED token ``V[:, 0]`` (the mean of the
``fc_norm``-ed patch tokens). The official model concatenates ``V[:, 0]`` with the mean of the patches,
which is the same vector twice; the pooled feature is used once here
(docs/xfm.md#fix-imagenet-head-and-metrics).

* ``FINETUNE`` (``imagenet``): the whole vision encoder is trained with a head (``options.head``:
  ``linear``, the default = ``BatchNorm1d(D, affine=False)`` + ``Linear(D, C)``; ``mlp`` = the paper's deep
  MLP D -> 2D -> 4D -> 2D -> D -> C with LayerNorm + GELU between the layers). The non-affine BatchNorm
  only standardises each feature with batch / running statistics (MAE's linear-probe head): at inference
  it is a fixed affine map folded into the Linear, so the classifier stays linear in the pooled feature.
  It matters: the pooled features of a pretrained encoder share a large common component (per-dimension
  spread across images ~0.1 vs. magnitude ~0.7 on the tiny preset), which a bare Linear learns slowly. Augmentation:
  :func:`~xfm_pipeline.data.transforms.imagenet_train_transform` per image (``augment: imagenet``;
  ``light`` = the eval transform + a horizontal flip, for tiny demo runs of a few hundred steps), then timm ``Mixup``/CutMix
  with label smoothing per batch at the start of the loss (the collate function does not know the class
  count) (``SoftTargetCrossEntropy``); with
  ``mixup = cutmix = 0`` it is label-smoothed cross-entropy. Mixup needs an even per-process batch.
* ``LINEAR_PROBE`` (``imagenet_linear_probe``): the backbone is frozen (every parameter
  ``requires_grad=False``, kept in eval mode, run under ``no_grad``) and only the head is trained, a TRUE
  linear classifier by default (``head: linear``, the standardised Linear above); ``head: mlp`` is the paper's deep-MLP "probe" (its
  "LP" is that 49M-parameter MLP). Label-smoothed CE, no Mixup, the eval transform
  for training images plus a horizontal flip (``lp_augment``). Features are computed on the fly.

Splits: the manifest (``data["manifest"]`` = ``[{"image": "<split>/<class>/<id>.jpg", "label", "split"}]``,
relative to the ImageFolder root ``options.image_root``, or the job's ``image_root`` when unset) holds
``train`` and ``val``. ImageNet-1k's official ``val`` split is the usual TEST set of the literature (the
test labels were never released), so it is reported as ``test``; model selection uses ``val`` = a
deterministic, class-stratified held-out slice of ``train`` (``options.val_fraction``, chosen by a hash
of the image path, independent of the seed), which is removed from training.

Metrics (:mod:`xfm_pipeline.metrics.classification`): ``top1`` (selection) and ``top5`` = the real
top-5 (the official "Acc@5" is top-2), capped at the number of classes. Values are fractions.
Classes are the sorted label names of the manifest (ImageFolder order), or ``options.classes``. The task
model's options hold the class names it was built with, so a task checkpoint names its predictions without the
manifest (``xfm_pipeline.predict``); checkpoints written before that have no ``options.classes``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from xfm_pipeline.data.transforms import seeded_transform
from xfm_pipeline.tasks.base import Task, TaskModel, TaskParams
from xfm_pipeline.tasks.common import model_device
from xfm_pipeline.tasks.spec import PaperResult, TaskPipeline, TaskSpec

TOPK = 5  # class ids (and scores) kept per prediction, enough for top-5


@dataclass
class ImagenetOptions:
    """Options of ``imagenet`` / ``imagenet_linear_probe`` (``params.options``)."""

    image_root: str | None = None  # ImageFolder root of the manifest paths (None = the job's image_root)
    val_fraction: float = 0.1  # share of each class of "train" held out as the selection split "val"
    head: str = "linear"  # "linear" (BatchNorm1d without affine + Linear(D, C)) or "mlp" (the paper's 5-layer MLP)
    classes: list[str] | None = None  # class names in label order (None = sorted labels of the manifest)
    label_smoothing: float = 0.1  # smoothing of the (soft) targets
    mixup: float = 0.8  # Mixup alpha (fine-tuning only; 0 = off)
    cutmix: float = 1.0  # CutMix alpha (fine-tuning only; 0 = off)
    mixup_prob: float = 1.0  # probability of mixing a batch
    mixup_switch_prob: float = 0.5  # probability of CutMix instead of Mixup when both are on
    crop_pct: float = 0.875  # eval transform: Resize(S / crop_pct) + CenterCrop(S)
    lp_augment: bool = True  # linear probe: random horizontal flip of the (eval-transformed) train images
    augment: str = "imagenet"  # fine-tune train transform: "imagenet" (timm recipe) or "light" (eval transform + flip)


def _deep_mlp(width: int, num_classes: int) -> nn.Sequential:
    """The paper's head: D -> 2D -> 4D -> 2D -> D -> C, LayerNorm + GELU after each hidden Linear."""
    dims = [width, 2 * width, 4 * width, 2 * width, width]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.LayerNorm(b), nn.GELU()]
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class ImagenetModel(TaskModel):
    """Vision encoder + classifier on the pooled token; ``frozen`` = linear probe."""

    def __init__(self, xfm: nn.Module, task: str, options: dict[str, Any], num_classes: int, frozen: bool):
        super().__init__(xfm, task, options)
        from xfm_pipeline.model.heads import init_weights

        width = xfm.config.vision.width
        self.frozen = frozen
        if options["head"] == "linear":  # standardise the features, then one linear map (MAE's probe head)
            self.head = nn.Sequential(nn.BatchNorm1d(width, affine=False, eps=1e-6), nn.Linear(width, num_classes))
        else:
            self.head = _deep_mlp(width, num_classes)
        init_weights(self.head)
        self.head_classes = num_classes
        for p in xfm.parameters():  # only the vision encoder (fine-tune) or nothing (probe) is trained
            p.requires_grad_(False)
        if not frozen:
            for p in xfm.vision_encoder.parameters():
                p.requires_grad_(True)
            xfm.vision_encoder.mask_token.requires_grad_(False)  # MIM only
        self.train(True)

    def train(self, mode: bool = True) -> ImagenetModel:
        super().train(mode)
        if self.frozen:
            self.xfm.eval()  # a probe never updates or drops out anything in the backbone
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, D) pooled vision feature (no graph for the frozen backbone)."""
        if self.frozen:
            with torch.no_grad():
                return self.xfm.encode_image(images)[:, 0]
        return self.xfm.encode_image(images)[:, 0]  # (B, D)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, C) class logits."""
        return self.head(self.features(images))


# ---------------------------------------------------------------------------------------------- data
def _holdout_key(image: str) -> str:
    return hashlib.sha1(image.encode("utf-8")).hexdigest()


def split_records(manifest: list[dict[str, Any]], split: str, val_fraction: float) -> list[dict[str, Any]]:
    """Records of a task split: ``train`` minus the held-out slice, ``val`` = that slice, ``test`` = official val.

    The held-out slice takes ``round(n * val_fraction)`` images of every class (at least one when the
    fraction is positive and the class has two or more), those with the smallest SHA-1 of their path.
    """
    if split == "test":
        return sorted((r for r in manifest if r["split"] == "val"), key=lambda r: r["image"])
    if split not in ("train", "val"):
        raise ValueError(f"ImageNet splits are train, val and test, got {split!r}")
    by_class: dict[str, list[dict[str, Any]]] = {}
    for r in manifest:
        if r["split"] == "train":
            by_class.setdefault(r["label"], []).append(r)
    held, kept = [], []
    for label in sorted(by_class):
        rows = sorted(by_class[label], key=lambda r: _holdout_key(r["image"]))
        n = int(round(len(rows) * val_fraction))
        if val_fraction > 0 and n == 0 and len(rows) >= 2:
            n = 1
        held += rows[:n]
        kept += rows[n:]
    out = held if split == "val" else kept
    return sorted(out, key=lambda r: r["image"])


class ImagenetDataset(torch.utils.data.Dataset):
    """Images + labels; training items ``(index, sample_seed)`` draw all randomness from the seed."""

    def __init__(self, records, classes, root: str, transform, train: bool, source: str):
        self.records = records
        self.class_to_idx = {c: i for i, c in enumerate(classes)}
        self.root = root
        self.transform = transform
        self.train = train
        self.source = source
        unknown = sorted({r["label"] for r in records} - set(self.class_to_idx))
        if unknown:
            raise ValueError(f"{source}: labels {unknown[:5]} are not among the {len(classes)} classes")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item) -> dict[str, Any]:
        from xfm_pipeline.data.images import load_image

        if self.train:
            index, seed = item
        else:
            index, seed = int(item), 0
        record = self.records[index]
        image = load_image(self.root, record["image"], f"{self.source} record {index}")
        rng = random.Random(seed)
        pixels = seeded_transform(self.transform, image, rng.getrandbits(62))  # (3, S, S)
        return {"images": pixels, "label": self.class_to_idx[record["label"]], "image": record["image"], "mix_seed": rng.getrandbits(31)}


def _stack(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "images": torch.stack([it["images"] for it in items]),  # (B, 3, S, S)
        "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),  # (B,)
        "paths": [it["image"] for it in items],
        "mix_seed": torch.tensor([it["mix_seed"] for it in items], dtype=torch.long),  # (B,) Mixup seeds
    }


def mix_batch(images: torch.Tensor, labels: torch.Tensor, mix_seeds: torch.Tensor, num_classes: int, options: ImagenetOptions):
    """timm Mixup/CutMix (batch mode) with label smoothing: (B, 3, S, S), (B,) -> mixed images, (B, C) targets.

    timm draws from numpy's global generator: it is seeded from the samples' ``mix_seed`` and restored,
    so a batch mixes the same way on any rank or after a restart. Needs an even per-process batch.
    """
    from timm.data import Mixup

    if len(images) % 2:
        raise ValueError(f"Mixup/CutMix needs an even per-process batch, got {len(images)}")
    mixup = Mixup(
        mixup_alpha=options.mixup, cutmix_alpha=options.cutmix, prob=options.mixup_prob,
        switch_prob=options.mixup_switch_prob, mode="batch", label_smoothing=options.label_smoothing,
        num_classes=num_classes,
    )  # fmt: skip
    state = np.random.get_state()
    try:
        np.random.seed(int(mix_seeds.sum().item()) % (2**32))
        images, targets = mixup(images.clone(), labels)
    finally:
        np.random.set_state(state)
    return images, targets


def from_options(options: dict[str, Any]) -> ImagenetOptions:
    """A model's stored options back as :class:`ImagenetOptions`."""
    from xfm_pipeline.config import from_dict

    return from_dict(ImagenetOptions, options)


class ImagenetTask(Task):
    """ImageNet-style classification on the pooled vision token (``frozen`` = linear probe)."""

    splits = ("train", "val", "test")
    selection_metric = "top1"
    new_param_prefixes = ("head.",)
    options_class = ImagenetOptions

    def __init__(self, name: str, frozen: bool):
        self.name = name
        self.frozen = frozen

    def __repr__(self) -> str:
        return f"ImagenetTask({self.name!r})"

    def options(self, params: TaskParams, where: str = "") -> ImagenetOptions:
        """The validated task options (unknown keys or bad values raise)."""
        from xfm_pipeline.config import ConfigError

        options = super().options(params, where)
        where = f"{where or 'finetune_' + self.name}.options"
        if options.augment not in ("imagenet", "light"):
            raise ConfigError(f"{where}.augment must be 'imagenet' or 'light', got {options.augment!r}")
        if options.head not in ("linear", "mlp"):
            raise ConfigError(f"{where}.head must be 'linear' or 'mlp', got {options.head!r}")
        if not 0.0 <= options.val_fraction < 1.0:
            raise ConfigError(f"{where}.val_fraction must be in [0, 1), got {options.val_fraction}")
        if not 0.0 <= options.label_smoothing < 1.0:
            raise ConfigError(f"{where}.label_smoothing must be in [0, 1), got {options.label_smoothing}")
        if min(options.mixup, options.cutmix, options.mixup_prob, options.mixup_switch_prob) < 0:
            raise ConfigError(f"{where}: mixup, cutmix and their probabilities must be >= 0")
        return options

    @staticmethod
    def classes(options: ImagenetOptions, data: dict[str, Any]) -> list[str]:
        """Class names in label order."""
        if options.classes is not None:
            return list(options.classes)
        manifest = data.get("manifest")
        if not manifest:
            raise ValueError("ImageNet needs data['manifest'] (or options.classes) to know its classes")
        return sorted({r["label"] for r in manifest if r["split"] == "train"})

    # ------------------------------------------------------------------ data
    def dataset(self, split, data, tokenizer, params, image_root, train):
        from torchvision.transforms import v2

        from xfm_pipeline.data.transforms import imagenet_eval_transform, imagenet_train_transform

        options = self.options(params)
        if params.image_size is None:
            raise ValueError("params.image_size must be resolved (the job sets it from the checkpoint)")
        if "manifest" not in data:
            raise KeyError(f"{self.name}: data has no 'manifest' (keys: {sorted(data)})")
        records = split_records(data["manifest"], split, options.val_fraction)
        if not records:
            raise ValueError(f"{self.name}: split {split!r} is empty")
        if not train:
            transform = imagenet_eval_transform(params.image_size, options.crop_pct)
        elif self.frozen or options.augment == "light":
            transform = imagenet_eval_transform(params.image_size, options.crop_pct)
            if options.lp_augment or not self.frozen:
                transform = v2.Compose([v2.RandomHorizontalFlip(), transform])
        else:
            transform = imagenet_train_transform(params.image_size)
        root = options.image_root or image_root
        return ImagenetDataset(records, self.classes(options, data), root, transform, train, f"imagenet/{split}")

    def collate(self, split, train):
        return _stack

    # ------------------------------------------------------------------ model
    def build_model(self, xfm, params, data):
        options = self.options(params)
        options.classes = self.classes(options, data)  # stored with the model's options, hence in its checkpoint
        return ImagenetModel(xfm, self.name, vars(options), len(options.classes), self.frozen)

    def loss(self, model, batch):
        import torch.nn.functional as F

        options = from_options(model.options)
        images, labels = batch["images"], batch["labels"]
        if not model.frozen and (options.mixup_prob > 0 and (options.mixup > 0 or options.cutmix > 0)):
            from timm.loss import SoftTargetCrossEntropy

            images, targets = mix_batch(images, labels, batch["mix_seed"], model.head_classes, options)  # targets (B, C)
            return {"loss": SoftTargetCrossEntropy()(model(images).float(), targets)}
        logits = model(images).float()  # (B, C)
        return {"loss": F.cross_entropy(logits, labels, label_smoothing=options.label_smoothing)}

    @torch.no_grad()
    def predict(self, model, loader, params):
        device = model_device(model)
        was_training = model.training
        model.eval()
        out = []
        for batch in loader:
            logits = model(batch["images"].to(device)).float().cpu()  # (B, C)
            k = min(TOPK, logits.shape[1])
            scores, ids = logits.topk(k, dim=1)
            for path, label, s, i in zip(batch["paths"], batch["labels"].tolist(), scores.tolist(), ids.tolist()):
                out.append({"image": path, "label": label, "topk": i, "topk_scores": s})
        model.train(was_training)
        return out

    def evaluate(self, predictions, split, data):
        from xfm_pipeline.metrics.classification import topk_accuracy

        if not predictions:
            raise ValueError(f"{self.name} {split}: no predictions")
        manifest = data.get("manifest") or []
        num_classes = max(
            len({r["label"] for r in manifest if r["split"] == "train"}),
            1 + max(max(p["topk"]) for p in predictions),
            1 + max(p["label"] for p in predictions),
        )
        total, hits = 0, {1: 0.0, 5: 0.0}
        chunk = 4096
        for start in range(0, len(predictions), chunk):
            part = predictions[start : start + chunk]
            scores = np.full((len(part), num_classes), -np.inf)  # (n, C): only the kept top-k scores are known
            for row, p in enumerate(part):
                scores[row, p["topk"]] = p["topk_scores"]
            acc = topk_accuracy(scores, np.array([p["label"] for p in part], dtype=np.int64), ks=(1, TOPK))
            hits[1] += acc[1] * len(part)
            hits[5] += acc[TOPK] * len(part)
            total += len(part)
        return {"top1": hits[1] / total, "top5": hits[5] / total}


FINETUNE = ImagenetTask("imagenet", frozen=False)
LINEAR_PROBE = ImagenetTask("imagenet_linear_probe", frozen=True)

FINETUNE_SPEC = TaskSpec(
    FINETUNE,
    pipelines=(
        TaskPipeline(
            "finetune_imagenet",
            data={"manifest": "imagenet_json_validated"},
            param_groups=("finetune_imagenet_common",),
            paper={"test/top1": PaperResult(85.3, 85.5, "ImageNet-1k fine-tune top-1")},
        ),
    ),
    fraction=True,
)
LINEAR_PROBE_SPEC = TaskSpec(
    LINEAR_PROBE,
    pipelines=(
        TaskPipeline(
            "linear_probe_imagenet",
            data={"manifest": "imagenet_json_validated"},
            param_groups=("finetune_imagenet_common",),
            paper={"test/top1": PaperResult(81.0, 81.2, "ImageNet-1k linear eval top-1")},
        ),
    ),
    fraction=True,
)
