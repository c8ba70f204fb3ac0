"""Image transforms of X-FM (docs/xfm.md#inputs-and-augmentation) on torchvision ``transforms.v2``.

Every transform takes an RGB ``PIL.Image`` and returns a float tensor (3, S, S) normalised with the
CLIP statistics (vision-language data) or the ImageNet statistics (ImageNet). The image size ``S`` is a
parameter: 224/384/480 in the paper, 64 for the tiny preset.

RandAugment is "X-FM's RandAugment(N=2, M=7)": the op list of ALBEF/X-FM's ``RandomAugment``
(Identity, AutoContrast, Equalize, Brightness, Sharpness, ShearX/Y, TranslateX/Y, Rotate), magnitude
7 on a 0-10 scale, each of the N ops applied with probability 0.5, built on torchvision's machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from PIL import Image
    from torchvision.transforms import v2

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def seeded_transform(transform, image: Image.Image | torch.Tensor, seed: int) -> torch.Tensor:
    """Apply a torchvision transform with its randomness drawn from ``seed`` (global CPU RNG restored after).

    Only the CPU generator is seeded, which is all a transform draws from: ``torch.manual_seed`` also queues
    a seed for every CUDA device, and where CUDA is not initialised that formats a Python traceback per call
    (1-4 ms a sample on a CPU: a fifth of an NLVR2 fine-tuning step on the tiny preset).
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed % (2**63))
        return transform(image)


# X-FM's RandomAugment: 2 ops, level 7 of 10 (ALBEF ``dataset/randaugment.py``).
RANDAUG_NUM_OPS = 2
RANDAUG_MAGNITUDE = 7
RANDAUG_MAX_LEVEL = 10
# ALBEF translates by at most 10 px at 256 px input; expressed here as a fraction of the image side.
_MAX_TRANSLATE_FRACTION = 10.0 / 256.0


def _xfm_randaugment_cls(color_only: bool):
    """A torchvision ``RandAugment`` subclass restricted to X-FM's op list (geometric ops optional)."""
    import torch
    from torchvision.transforms import v2

    space = {
        "Identity": (lambda num_bins, height, width: None, False),
        "AutoContrast": (lambda num_bins, height, width: None, False),
        "Equalize": (lambda num_bins, height, width: None, False),
        "Brightness": (lambda num_bins, height, width: torch.linspace(0.0, 0.9, num_bins), True),
        "Sharpness": (lambda num_bins, height, width: torch.linspace(0.0, 0.9, num_bins), True),
    }
    if not color_only:
        space.update(
            {
                "ShearX": (lambda num_bins, height, width: torch.linspace(0.0, 0.3, num_bins), True),
                "ShearY": (lambda num_bins, height, width: torch.linspace(0.0, 0.3, num_bins), True),
                "TranslateX": (
                    lambda num_bins, height, width: torch.linspace(0.0, _MAX_TRANSLATE_FRACTION * width, num_bins),
                    True,
                ),
                "TranslateY": (
                    lambda num_bins, height, width: torch.linspace(0.0, _MAX_TRANSLATE_FRACTION * height, num_bins),
                    True,
                ),
                "Rotate": (lambda num_bins, height, width: torch.linspace(0.0, 30.0, num_bins), True),
            }
        )

    class XFMRandAugment(v2.RandAugment):
        _AUGMENTATION_SPACE = space

    XFMRandAugment.__name__ = "XFMColorRandAugment" if color_only else "XFMRandAugment"
    return XFMRandAugment


def randaugment(color_only: bool = False) -> v2.Transform:
    """X-FM's RandAugment(2, 7): two ops drawn uniformly, each applied with probability 0.5.

    ``color_only=True`` keeps only photometric ops (used where boxes must stay valid: regions, grounding).
    """
    from torchvision.transforms import v2

    cls = _xfm_randaugment_cls(color_only)
    one_op = cls(num_ops=1, magnitude=RANDAUG_MAGNITUDE, num_magnitude_bins=RANDAUG_MAX_LEVEL + 1)
    return v2.Compose([v2.RandomApply([one_op], p=0.5) for _ in range(RANDAUG_NUM_OPS)])


def _to_normalised_tensor(mean: tuple[float, ...], std: tuple[float, ...]) -> list:
    import torch
    from torchvision.transforms import v2

    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]


def _check_size(image_size: int) -> None:
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")


def pretrain_transform(image_size: int) -> v2.Compose:
    """Pretraining: RandomResizedCrop(scale 0.2-1, bicubic), HFlip, RandAugment(2,7), CLIP norm.

    As in docs/xfm.md#inputs-and-augmentation. Returns a callable PIL.Image -> (3, image_size, image_size)
    float tensor.
    """
    return _vl_train_transform(image_size, scale=(0.2, 1.0), hflip=True)


def train_transform(image_size: int, hflip: bool = True) -> v2.Compose:
    """Fine-tuning train: RandomResizedCrop(scale 0.5-1, bicubic), HFlip, RandAugment(2,7), CLIP norm.

    As in docs/xfm.md#fine-tuning-setup. ``hflip=False`` is X-FM's ``train_transform_wohflip`` (VQA
    questions that mention left/right).
    """
    return _vl_train_transform(image_size, scale=(0.5, 1.0), hflip=hflip)


def _vl_train_transform(image_size: int, scale: tuple[float, float], hflip: bool) -> v2.Compose:
    from torchvision.transforms import v2

    _check_size(image_size)
    steps = [
        v2.ToImage(),  # PIL -> uint8 tensor (3, H, W)
        v2.RandomResizedCrop(image_size, scale=scale, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
    ]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    steps.append(randaugment())
    steps += _to_normalised_tensor(CLIP_MEAN, CLIP_STD)  # (3, S, S) float32
    return v2.Compose(steps)


def eval_transform(image_size: int) -> v2.Compose:
    """Vision-language evaluation (docs/xfm.md#fine-tuning-setup): Resize((S, S), bicubic) + CLIP normalisation."""
    from torchvision.transforms import v2

    _check_size(image_size)
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((image_size, image_size), interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            *_to_normalised_tensor(CLIP_MEAN, CLIP_STD),
        ]
    )


def imagenet_train_transform(image_size: int) -> v2.Compose:
    """ImageNet fine-tuning (docs/xfm.md#imagenet, timm ``create_transform``): RandomResizedCrop (bicubic), HFlip,
    RandAugment(2, 9), ImageNet normalisation, RandomErasing(p=0.25, random pixels).

    Mixup/CutMix act on batches and belong to the collate function, not here.
    """
    from torchvision.transforms import v2

    _check_size(image_size)
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(image_size, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandAugment(num_ops=2, magnitude=9),
            *_to_normalised_tensor(IMAGENET_MEAN, IMAGENET_STD),
            v2.RandomErasing(p=0.25, value="random"),
        ]
    )


def imagenet_eval_transform(image_size: int, crop_pct: float = 0.875) -> v2.Compose:
    """ImageNet evaluation (docs/xfm.md#imagenet): Resize(S / crop_pct, bicubic) + CenterCrop(S), ImageNet stats.

    With S = 224 this is the paper's Resize(256) + CenterCrop(224).
    """
    from torchvision.transforms import v2

    _check_size(image_size)
    if not 0.0 < crop_pct <= 1.0:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(int(round(image_size / crop_pct)), interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            v2.CenterCrop(image_size),
            *_to_normalised_tensor(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def randaugment_color_transform() -> v2.Compose:
    """X-FM's ``box_transform`` (docs/xfm.md#inputs-and-augmentation): colour-only RandAugment(2, 7) + CLIP normalisation.

    For images already cropped around a box and resized (region-text pretraining, grounding), where
    geometric ops would move the box. PIL.Image (S, S) -> (3, S, S) float tensor.
    """
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), randaugment(color_only=True), *_to_normalised_tensor(CLIP_MEAN, CLIP_STD)])
