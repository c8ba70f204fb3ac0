"""RoBERTa initialisation of the text encoder from a local directory: import report, values and hidden
states against transformers' own ``RobertaModel`` on the same directory, a ``RobertaModel``-only directory."""

import logging
import shutil

import pytest
import torch
from pretrained_files import write_roberta_dir
from safetensors.torch import load_file
from transformers import RobertaModel

from xfm_pipeline.model.config import TextConfig
from xfm_pipeline.model.text import build_text_encoder, load_tokenizer, text_import_report
from xfm_pipeline.model.tied_weights import tied_keys

SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}  # roberta-base otherwise
LM_HEAD = ["lm_head.bias", "lm_head.dense.weight", "lm_head.dense.bias", "lm_head.layer_norm.weight", "lm_head.layer_norm.bias"]
CAPTIONS = ["a red circle left of a blue square", "we see a green star"]


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory):
    return write_roberta_dir(tmp_path_factory.mktemp("roberta") / "roberta-small", **SMALL)


@pytest.fixture(scope="module")
def base_only_dir(roberta_dir, tmp_path_factory):
    """The same weights saved as a ``RobertaModel`` (no MLM head, a pooler), with the tokenizer."""
    path = tmp_path_factory.mktemp("roberta") / "roberta-base-model"
    RobertaModel.from_pretrained(roberta_dir, local_files_only=True).save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(roberta_dir / name, path / name)
    return path


def _hidden(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(CAPTIONS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state  # (B, L, 64)


def test_masked_lm_directory_loads_every_tensor(roberta_dir):
    encoder = build_text_encoder(TextConfig(pretrained=str(roberta_dir))).eval()
    report = text_import_report(encoder)
    assert report.missing == [] and report.unexpected == [] and report.skipped == {}
    tied = tied_keys(encoder)
    assert tied == {"lm_head.decoder.weight", "lm_head.decoder.bias"}  # word embeddings, lm_head.bias
    assert sorted(report.loaded) == sorted(k for k in encoder.state_dict() if k not in tied)
    shipped = load_file(str(roberta_dir / "model.safetensors"))
    ours = encoder.state_dict()
    for key in ("roberta.embeddings.word_embeddings.weight", "roberta.encoder.layer.1.attention.self.query.weight", "lm_head.dense.weight"):
        torch.testing.assert_close(ours[key], shipped[key], rtol=0, atol=0)
    assert encoder.config.vocab_size == 50265 and encoder.config.hidden_size == 64


def test_text_states_equal_transformers_roberta_model(roberta_dir):
    tokenizer = load_tokenizer(roberta_dir)
    ids = tokenizer(CAPTIONS[0])["input_ids"]
    assert ids[0] == tokenizer.cls_token_id == 0 and ids[-1] == tokenizer.sep_token_id == 2 and tokenizer.pad_token_id == 1
    ours = build_text_encoder(TextConfig(pretrained=str(roberta_dir))).eval()
    reference = RobertaModel.from_pretrained(roberta_dir, local_files_only=True, add_pooling_layer=False).eval()
    torch.testing.assert_close(_hidden(ours.base_model, tokenizer), _hidden(reference, tokenizer), rtol=1e-5, atol=1e-5)


def test_roberta_model_directory_gets_a_new_mlm_head(base_only_dir, roberta_dir, caplog):
    with caplog.at_level(logging.INFO, logger="xfm_pipeline.model.text"):
        encoder = build_text_encoder(TextConfig(pretrained=str(base_only_dir))).eval()
    report = text_import_report(encoder)
    assert report.missing == LM_HEAD  # newly initialised (lm_head.decoder.bias is lm_head.bias)
    assert report.unexpected == ["pooler.dense.bias", "pooler.dense.weight"]
    assert "6 tensors newly initialised (lm_head.bias, lm_head.decoder.bias" in caplog.text
    tokenizer = load_tokenizer(base_only_dir)
    reference = build_text_encoder(TextConfig(pretrained=str(roberta_dir))).eval()
    torch.testing.assert_close(_hidden(encoder.base_model, tokenizer), _hidden(reference.base_model, tokenizer), rtol=0, atol=0)


def test_random_text_encoder_has_no_import_report():
    encoder = build_text_encoder(TextConfig(hf_config={"model_type": "roberta", "vocab_size": 99, **SMALL}))
    assert text_import_report(encoder) is None
