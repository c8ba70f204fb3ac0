"""A BERT/RoBERTa embedding block: the decoders' input (``decoder``) and, for official X-FM weights, the fusion
encoder's own block whose word table is the fusion MLM decoder (``fusion``; docs/xfm.md#fusion-encoder)."""

from __future__ import annotations

import torch
from torch import nn

from xfm_pipeline.model.dropout import Dropout


def position_offset(hf_config) -> int:
    """The first position id of a transformers text config: RoBERTa's positions start at ``pad_token_id + 1``."""
    return hf_config.pad_token_id + 1 if hf_config.model_type in ("roberta", "xlm-roberta") else 0


class TokenEmbeddings(nn.Module):
    """word + absolute position + token-type-0 embeddings, LayerNorm, dropout (BERT/RoBERTa layout)."""

    def __init__(self, vocab_size: int, width: int, max_positions: int, position_offset: int, eps: float, dropout: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, width)
        self.position_embeddings = nn.Embedding(max_positions, width)
        self.token_type_embedding = nn.Parameter(torch.zeros(width))  # row 0 of the type table
        self.LayerNorm = nn.LayerNorm(width, eps=eps)
        self.dropout = Dropout(dropout)
        self.position_offset = position_offset  # RoBERTa positions start at padding_idx + 1

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, D); positions 0..L-1 (right padding)."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device) + self.position_offset
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None] + self.token_type_embedding
        return self.dropout(self.LayerNorm(x))

    @torch.no_grad()
    def copy_from_hf(self, hf_embeddings: nn.Module) -> None:
        """Copy a transformers ``BertEmbeddings``/``RobertaEmbeddings`` block."""
        self.word_embeddings.weight.copy_(hf_embeddings.word_embeddings.weight)
        self.position_embeddings.weight.copy_(hf_embeddings.position_embeddings.weight)
        type_table = getattr(hf_embeddings, "token_type_embeddings", None)
        self.token_type_embedding.copy_(type_table.weight[0] if type_table is not None else torch.zeros_like(self.token_type_embedding))
        self.LayerNorm.load_state_dict(hf_embeddings.LayerNorm.state_dict())
