"""The X-FM composite: vision, text and fusion encoders with projections and heads (docs/xfm.md#architecture).

The model returns features, never losses: objectives and tasks combine these helpers. Checkpoint I/O
sits above this module: ``model.checkpoint.save_pretrained(model, directory)`` and
``load_pretrained(directory)``.

    image -> vision_encoder -> V (B, 1+N, Dv)          V[:, 0] = mean-pooled token
    text  -> text_encoder   -> T (B, L, Dt)            T[:, 0] = <s>/[CLS]
    (T, V) -> fusion_encoder -> F (B, L, Dt)           F[:, 0] = fusion CLS (ITM, boxes)
    (F[:, 0], V[:, 1:]) -> bbox_pointer -> patch scores (B, N) and a box (B, 4)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xfm_pipeline.model.box_heads import BOX_HEADS, PatchPointer
from xfm_pipeline.model.config import XFMConfig
from xfm_pipeline.model.embeddings import position_offset
from xfm_pipeline.model.fusion import FusionEncoder
from xfm_pipeline.model.heads import build_mlp, init_weights
from xfm_pipeline.model.text import build_text_encoder, mlm_head
from xfm_pipeline.model.vision import VisionEncoder


class XFM(nn.Module):
    """X-FM foundation model (no task heads; tasks add their own)."""

    def __init__(self, config: XFMConfig):
        super().__init__()
        self.config = config
        self.vision_encoder = VisionEncoder(config.vision)
        self.text_encoder = build_text_encoder(config.text)
        text_cfg = self.text_encoder.config
        vision_width, text_width = config.vision.width, text_cfg.hidden_size
        self.fusion_encoder = FusionEncoder(
            config.fusion, text_width, vision_width, text_cfg.vocab_size, text_cfg.max_position_embeddings, position_offset(text_cfg)
        )
        self.vision_proj = nn.Linear(vision_width, config.embed_dim)
        self.text_proj = nn.Linear(text_width, config.embed_dim)
        self.temp = nn.Parameter(torch.tensor(float(config.temp)))
        self.itm_head = build_mlp(text_width, 2)
        self.bbox_head = build_mlp(text_width, 4)
        fresh = [self.fusion_encoder, self.vision_proj, self.text_proj, self.itm_head, self.bbox_head]
        if config.mim_target == "pixels":
            self.mim_head = nn.Linear(vision_width, 3 * config.vision.patch_size**2)  # token -> patch pixels
            fresh.append(self.mim_head)
        for module in fresh:
            init_weights(module)
        # Not in X-FM (model.box_heads). Built last, so the modules above draw the same initial weights
        # from a seeded generator as they would without it.
        self.bbox_pointer = PatchPointer(text_width, vision_width)
        if config.activation_checkpointing:
            self.set_activation_checkpointing(True)

    def set_activation_checkpointing(self, enable: bool) -> None:
        """Recompute the activations of every vision, text and fusion block in the backward pass instead of
        keeping them (training only; the largest batch per GPU grows, a step costs about one more forward)."""
        self.vision_encoder.set_grad_checkpointing(enable)
        if enable:
            self.text_encoder.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            self.text_encoder.activation_checkpointing_disable()
        self.fusion_encoder.gradient_checkpointing = enable

    def fsdp_units(self) -> list[nn.Module]:
        """The transformer blocks that FSDP shards one by one (vision, text and fusion layers)."""
        return [*self.vision_encoder.blocks, *self.text_encoder.base_model.encoder.layer, *self.fusion_encoder.layer]

    # ------------------------------------------------------------------ encoders
    def encode_image(self, images: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, H, W) [+ (B, N) bool MIM mask] -> (B, 1+N, Dv)."""
        return self.vision_encoder(images, patch_mask)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids and mask -> (B, L, Dt) last hidden state of the text encoder."""
        return self.text_encoder.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def fuse(
        self,
        text_embeds: torch.Tensor,
        text_atts: torch.Tensor,
        image_embeds: torch.Tensor,
        image_atts: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-modal fusion: (B, L, Dt) text states x (B, M, Dv) image tokens -> (B, L, Dt).

        With ``image_index`` (B,), ``image_embeds`` / ``image_atts`` hold U distinct images and text row b
        attends to image ``image_index[b]`` (see ``FusionEncoder.forward``).
        """
        return self.fusion_encoder(text_embeds, text_atts, image_embeds, image_atts, image_index)

    # ------------------------------------------------------------------ ITC
    @property
    def temperature(self) -> torch.Tensor:
        """The ITC temperature clamped to [temp_min, temp_max] (functional; the parameter is not edited)."""
        return self.temp.clamp(self.config.temp_min, self.config.temp_max)

    def image_features(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """(B, 1+N, Dv) -> (B, E) L2-normalised projection of token 0."""
        return F.normalize(self.vision_proj(image_embeds[:, 0]), dim=-1)

    def text_features(self, text_embeds: torch.Tensor) -> torch.Tensor:
        """(B, L, Dt) -> (B, E) L2-normalised projection of token 0."""
        return F.normalize(self.text_proj(text_embeds[:, 0]), dim=-1)

    def similarity(self, image_feats: torch.Tensor, text_feats: torch.Tensor) -> torch.Tensor:
        """(Bi, E) x (Bt, E) -> (Bi, Bt) ITC logits, cosine / temperature."""
        return image_feats @ text_feats.t() / self.temperature

    # ------------------------------------------------------------------ heads
    def itm_logits(self, fused: torch.Tensor) -> torch.Tensor:
        """(B, L, Dt) fused states -> (B, 2) match logits; index 1 = match."""
        return self.itm_head(fused[:, 0])

    def itm_score(self, fused: torch.Tensor) -> torch.Tensor:
        """(B, L, Dt) -> (B,) positive-class ITM logit (the retrieval re-ranking score)."""
        return self.itm_logits(fused)[:, 1]

    def predict_bbox(self, fused: torch.Tensor) -> torch.Tensor:
        """(B, L, Dt) -> (B, 4) normalised (cx, cy, w, h) in [0, 1]."""
        return self.bbox_head(fused[:, 0]).sigmoid()

    def predict_box(self, fused: torch.Tensor, image_embeds: torch.Tensor, box_head: str) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Boxes from the head ``box_head`` (``model.box_heads.BOX_HEADS``): (B, L, Dt) fused states, (B, 1+N, Dv)
        image tokens -> (B, N) patch scores (None for ``"cls"``), (B, 4) normalised (cx, cy, w, h).

        ``"cls"``: :meth:`predict_bbox` (X-FM); ``"pointer"``: ``bbox_pointer`` on the CLS and the patch tokens.
        """
        if box_head == "cls":
            return None, self.predict_bbox(fused)
        if box_head == "pointer":
            return self.bbox_pointer(fused[:, 0], image_embeds[:, 1:])
        raise ValueError(f"box_head must be one of {BOX_HEADS}, got {box_head!r}")

    def predict_pixels(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """(B, 1+N, Dv) -> (B, N, 3*p*p) pixels of every patch (MIM with ``mim_target="pixels"``)."""
        if self.config.mim_target != "pixels":
            raise ValueError(f"predict_pixels needs mim_target 'pixels' (this model has {self.config.mim_target!r})")
        return self.mim_head(image_embeds[:, 1:])

    def text_mlm_logits(self, text_hidden: torch.Tensor) -> torch.Tensor:
        """(..., Dt) text-encoder states -> (..., V) logits of the text MLM head."""
        return mlm_head(self.text_encoder)(text_hidden)

    def fusion_word_table(self) -> torch.Tensor:
        """(V, Dt) the word table the fusion MLM head decodes with: the text encoder's (``fusion.word_embeddings:
        text``) or the fusion encoder's own (``own``, official X-FM; docs/xfm.md#fix-fusion-mlm-decoder)."""
        if self.config.fusion.word_embeddings == "own":
            return self.fusion_encoder.embeddings.word_embeddings.weight
        return self.text_encoder.get_input_embeddings().weight

    def fusion_mlm_logits(self, fused: torch.Tensor) -> torch.Tensor:
        """(..., Dt) fused states -> (..., V) image-conditioned MLM logits (decoder tied to :meth:`fusion_word_table`)."""
        return self.fusion_encoder.lm_head(fused, self.fusion_word_table())
