"""The text encoder: real local from_pretrained of the packaged MiniLM, tokenizer, tied MLM head."""

import pytest
import torch
from safetensors.torch import load_file

from xfm_pipeline.model.config import TextConfig
from xfm_pipeline.model.text import build_text_encoder, load_tokenizer, mlm_head, resolve_pretrained


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder(TextConfig(pretrained="all-minilm-l6-v2")).eval()


def test_minilm_weights_are_the_shipped_ones(minilm):
    shipped = load_file(str(resolve_pretrained("all-minilm-l6-v2") / "model.safetensors"))
    ours = minilm.state_dict()
    word = next(k for k in shipped if k.endswith("embeddings.word_embeddings.weight"))
    torch.testing.assert_close(ours["bert.embeddings.word_embeddings.weight"], shipped[word])
    layer = next(k for k in shipped if k.endswith("encoder.layer.5.output.dense.weight"))
    torch.testing.assert_close(ours["bert.encoder.layer.5.output.dense.weight"], shipped[layer])
    assert minilm.config.hidden_size == 384 and minilm.config.num_hidden_layers == 6


def test_mlm_decoder_is_tied_to_word_embeddings(minilm):
    assert mlm_head(minilm).predictions.decoder.weight is minilm.get_input_embeddings().weight


def test_tokenizer_is_the_shipped_wordpiece():
    tok = load_tokenizer("all-minilm-l6-v2")
    ids = tok("a red circle left of a blue square")["input_ids"]
    assert ids == [101, 1037, 2417, 4418, 2187, 1997, 1037, 2630, 2675, 102]


def test_pretrained_encoder_knows_language(minilm):
    """Mean-pooled MiniLM embeddings put a paraphrase closer than an unrelated sentence."""
    tok = load_tokenizer("all-minilm-l6-v2")
    batch = tok(
        ["a red circle is left of a blue square", "a blue square is to the right of a red circle", "the stock market fell sharply today"],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        hidden = minilm.base_model(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3


def test_random_init_from_config_and_clear_errors():
    model = build_text_encoder(
        TextConfig(
            hf_config={"model_type": "bert", "vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
        )
    )
    assert model.config.vocab_size == 99
    with pytest.raises(ValueError, match="model_type"):
        build_text_encoder(TextConfig())
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_text_encoder(TextConfig(pretrained="/nonexistent/roberta-base"))
