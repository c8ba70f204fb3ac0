"""How selective the fusion encoder's cross-attention is: entropy of each text token's attention over the
image tokens, per layer and head, on captions of their own images.

Uniform attention over M image tokens has entropy ln M (4.17 nats for the tiny preset's 65 tokens): the
fusion encoder then sees only the mean of the image tokens, which tells colours and rough counts but not
which shape is where. A fusion encoder that localises phrases has clearly lower entropy and a largest
weight well above 1/M. In the shapes-world demo the pretraining checkpoint is near uniform and the
grounding fine-tune is not (README, NLVR2). Usage:

    python benchmarks/fusion_attention.py --checkpoint data/06_models/pretrain
    python benchmarks/fusion_attention.py --checkpoint data/06_models/finetune_grounding

``--checkpoint`` is a pretraining checkpoint or a task checkpoint (its X-FM part is measured).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from xfm_pipeline.offline import use_offline_environment

use_offline_environment()
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def attention_entropy(weights, text_mask):
    """(B, H, L, M) attention weights (rows sum to 1) and (B, L) text mask -> per head (H,) tensors:
    mean entropy of the CLS rows (token 0), mean entropy of every unmasked row, mean largest CLS weight."""
    import torch

    entropy = -(weights * weights.clamp_min(torch.finfo(weights.dtype).tiny).log()).sum(-1)  # (B, H, L)
    rows = text_mask.bool().unsqueeze(1).expand_as(entropy)  # (B, H, L)
    tokens = (entropy * rows).sum((0, 2)) / rows.sum((0, 2))  # (H,)
    return entropy[:, :, 0].mean(0), tokens, weights[:, :, 0].amax(-1).mean(0)


def cross_attention_weights(xfm, text_embeds, text_atts, image_embeds):
    """One fusion pass; returns per layer the (B, H, L, M) cross-attention weights over all image tokens."""
    import torch

    inputs: dict[int, torch.Tensor] = {}
    layers = xfm.fusion_encoder.layer
    hooks = [layer.attention.register_forward_hook(lambda _m, _i, out, i=i: inputs.__setitem__(i, out)) for i, layer in enumerate(layers)]
    try:
        xfm.fuse(text_embeds, text_atts, image_embeds)
    finally:
        for hook in hooks:
            hook.remove()
    out = []
    for i, layer in enumerate(layers):
        attention = layer.crossattention
        q, k = attention.self.query(inputs[i]), attention.self.key(image_embeds)  # (B, L, D), (B, M, D)
        b, length, d = q.shape
        heads = attention.num_heads
        q = q.view(b, length, heads, d // heads).transpose(1, 2)  # (B, H, L, d/H)
        k = k.view(b, -1, heads, d // heads).transpose(1, 2)  # (B, H, M, d/H)
        out.append((q @ k.transpose(-1, -2) * (d // heads) ** -0.5).softmax(-1))  # (B, H, L, M)
    return out


def load_xfm(directory: str):
    """The X-FM model of a pretraining checkpoint, or the X-FM part of a task checkpoint."""
    from xfm_pipeline.model.checkpoint import load_pretrained
    from xfm_pipeline.tasks.checkpoint import load_task_checkpoint

    meta = json.loads((Path(directory) / "config.json").read_text())
    return load_task_checkpoint(directory).xfm if "task" in meta else load_pretrained(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="data/06_models/pretrain")
    parser.add_argument("--captions", default="data/02_intermediate/retrieval/test.json", help="retrieval-format records: image + captions")
    parser.add_argument("--image-root", default="data/01_raw/shapes_world/images")
    parser.add_argument("--limit", type=int, default=64, help="images measured (each with its first caption)")
    args = parser.parse_args()

    import torch

    from xfm_pipeline.data.images import load_image
    from xfm_pipeline.data.transforms import eval_transform
    from xfm_pipeline.model.checkpoint import load_checkpoint_tokenizer

    xfm = load_xfm(args.checkpoint).eval()
    tokenizer = load_checkpoint_tokenizer(args.checkpoint)
    records = json.loads(Path(args.captions).read_text())[: args.limit]
    transform = eval_transform(xfm.config.vision.image_size)
    images = torch.stack([transform(load_image(args.image_root, r["image"], f"{args.captions} record {i}")) for i, r in enumerate(records)])
    captions = [r["caption"][0] if isinstance(r["caption"], list) else r["caption"] for r in records]
    text = tokenizer(captions, padding="longest", truncation=True, max_length=40, return_tensors="pt")
    with torch.no_grad():
        image_embeds = xfm.encode_image(images)  # (B, M, Dv)
        text_embeds = xfm.encode_text(text.input_ids, text.attention_mask)  # (B, L, Dt)
        weights = cross_attention_weights(xfm, text_embeds, text.attention_mask, image_embeds)
    m = image_embeds.shape[1]
    print(f"{args.checkpoint}: {len(records)} captions; uniform attention over {m} image tokens: entropy {math.log(m):.2f} nats, largest weight {1 / m:.3f}")
    for i, w in enumerate(weights):
        cls, tokens, largest = attention_entropy(w, text.attention_mask)
        print(
            f"layer {i}: CLS entropy per head {[round(x, 2) for x in cls.tolist()]}, all tokens {[round(x, 2) for x in tokens.tolist()]}, "
            f"largest CLS weight {[round(x, 3) for x in largest.tolist()]}"
        )


if __name__ == "__main__":
    main()
