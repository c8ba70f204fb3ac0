"""Text normalisation and tokenisation exactly as X-FM prepares captions and questions (docs/xfm.md#inputs-and-augmentation).

``pre_caption`` / ``pre_question`` are the X-VLM/X-FM ``dataset/utils.py`` functions; ``tokenize`` pads and
truncates through any transformers tokenizer to ``[CLS/<s>] + tokens[:max_tokens-2] + [SEP/</s>]``;
``FixedLengthTokenizer`` does the same per sample of a data loader at a third of the cost.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

# The characters X-FM turns into spaces (``dataset/utils.py``: ``[,.'!?"()*#:;~]``, then ``-`` and ``/``).
_PUNCTUATION = re.compile(r"([,.'!?\"()*#:;~])")
_WHITESPACE = re.compile(r"\s+")


class EmptyTextError(ValueError):
    """Normalisation left nothing of a caption or question (X-FM skips such samples)."""


def _normalise(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}: {text!r}")
    out = _PUNCTUATION.sub(" ", text.lower()).replace("-", " ").replace("/", " ")
    return out


def _truncate(text: str, max_words: int) -> str:
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


def pre_caption(caption: str, max_words: int = 30) -> str:
    """X-FM caption normalisation (docs/xfm.md#inputs-and-augmentation).

    Lowercase; ``,.'!?"()*#:;~`` become spaces; ``-`` and ``/`` become spaces; ``<person>`` becomes
    ``person``; whitespace runs collapse to one space; strip; keep the first ``max_words`` words.
    (The original collapses only runs of two or more whitespace characters, so a lone tab or newline
    survived; here every whitespace run becomes one space, which tokenizers treat identically.)

    Raises:
        EmptyTextError: nothing is left after normalisation (the original raises ``ValueError`` too).
    """
    out = _normalise(caption, "caption").replace("<person>", "person")
    out = _WHITESPACE.sub(" ", out).strip(" ")
    out = _truncate(out, max_words)
    if not out:
        raise EmptyTextError(f"pre_caption yields empty text (raw: {caption!r})")
    return out


def pre_question(question: str, max_words: int = 30) -> str:
    """X-FM question normalisation (docs/xfm.md#vqa): as :func:`pre_caption` without the ``<person>`` rule.

    X-FM truncates questions to 30 words in training and 50 at test time.

    Raises:
        EmptyTextError: nothing is left after normalisation.
    """
    out = _WHITESPACE.sub(" ", _normalise(question, "question")).strip(" ")
    out = _truncate(out, max_words)
    if not out:
        raise EmptyTextError(f"pre_question yields empty text (raw: {question!r})")
    return out


@dataclass(frozen=True)
class TokenizedText:
    """A tokenised batch of texts."""

    text_ids: torch.Tensor  # (B, L) int64 token ids, padded with the tokenizer's pad id
    text_atts: torch.Tensor  # (B, L) int64 attention mask, 1 on real tokens, 0 on padding


def tokenize(
    tokenizer: Any,
    texts: str | list[str],
    max_tokens: int,
    padding: Literal["max_length", "longest"] = "max_length",
) -> TokenizedText:
    """Tokenise ``texts`` with a transformers tokenizer, truncating to ``max_tokens`` (special tokens included).

    Sequences are ``[<s>] + tokens[:max_tokens-2] + [</s>]`` (``[CLS] ... [SEP]`` for BERT vocabularies),
    padded to ``max_tokens`` (``padding="max_length"``, pretraining) or to the longest text of the batch
    (``padding="longest"``, fine-tuning).

    Returns:
        TokenizedText with ``text_ids`` and ``text_atts`` of shape (B, L), L = max_tokens or the longest.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise ValueError("tokenize needs at least one text")
    if max_tokens < 2:
        raise ValueError(f"max_tokens must leave room for the two special tokens, got {max_tokens}")
    if padding not in ("max_length", "longest"):
        raise ValueError(f"padding must be 'max_length' or 'longest', got {padding!r}")
    enc = tokenizer(
        list(texts),
        padding=padding,
        truncation=True,
        max_length=max_tokens,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    return TokenizedText(text_ids=enc["input_ids"].long(), text_atts=enc["attention_mask"].long())


class FixedLengthTokenizer:
    """``tokenize(tokenizer, texts, max_tokens)`` (``padding="max_length"``) for one tokenizer and length, faster.

    A fast tokenizer is called through a copy of its Rust backend with the truncation and padding that
    ``tokenizer(...)`` would set (same ids and mask); that skips the transformers wrapper, which costs
    about twice the encoding itself on a short caption. Other tokenizers go through :func:`tokenize`.
    """

    def __init__(self, tokenizer: Any, max_tokens: int):
        if max_tokens < 2:
            raise ValueError(f"max_tokens must leave room for the two special tokens, got {max_tokens}")
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self.backend = None
        if getattr(tokenizer, "is_fast", False) and tokenizer.pad_token is not None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: the original's settings are left alone
            backend.enable_truncation(max_tokens, stride=0, strategy="longest_first", direction=tokenizer.truncation_side)
            backend.enable_padding(
                direction=tokenizer.padding_side,
                pad_id=tokenizer.pad_token_id,
                pad_type_id=tokenizer.pad_token_type_id,
                pad_token=tokenizer.pad_token,
                length=max_tokens,
            )
            backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
            self.backend = backend

    def __call__(self, texts: str | list[str]) -> TokenizedText:
        """``texts`` as (B, max_tokens) ids and attention mask (B = 1 for one string)."""
        import torch

        if self.backend is None:
            return tokenize(self.tokenizer, texts, self.max_tokens)
        ids, atts = self.rows(texts)
        return TokenizedText(text_ids=torch.tensor(ids, dtype=torch.long), text_atts=torch.tensor(atts, dtype=torch.long))  # (B, max_tokens) each

    def rows(self, texts: str | list[str]) -> tuple[list[list[int]], list[list[int]]]:
        """(ids, attention mask) of ``texts`` as B lists of ``max_tokens`` ints (no tensors built)."""
        if self.backend is None:
            tok = tokenize(self.tokenizer, texts, self.max_tokens)
            return tok.text_ids.tolist(), tok.text_atts.tolist()
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("tokenize needs at least one text")
        # one text: the sequential call (encode_batch would hand it to the Rust thread pool)
        encodings = [self.backend.encode(texts[0])] if len(texts) == 1 else self.backend.encode_batch(texts)
        return [e.ids for e in encodings], [e.attention_mask for e in encodings]


def trim_padding(text_ids: torch.Tensor, text_atts: torch.Tensor, *aligned: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cut (B, L) ids/mask, and any (B, L) tensors ``aligned`` with them, to the longest real text of the
    batch (X-FM's ``padding='longest'``). Padding is masked out of attention, so the real positions keep
    their states; the encoders stop spending most of their work on it.

    Returns:
        ``(text_ids, text_atts, *aligned)``, each (B, L') with L' = the longest ``text_atts`` row sum.
    """
    length = max(1, int(text_atts.sum(dim=1).max()))
    return tuple(t[:, :length].contiguous() for t in (text_ids, text_atts, *aligned))


def text_key(text: str) -> int:
    """A 63-bit id of a text string: equal strings get equal ids in every process (blake2b, not ``hash``,
    which is salted per process); distinct strings collide with probability about 2**-63."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") >> 1
