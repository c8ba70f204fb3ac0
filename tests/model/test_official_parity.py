"""Parity of an imported official-format checkpoint with references written here by hand from the official
architecture (spec: fusion MLM decoder tied to the fusion encoder's own word table; the VQA decoder starting
from the whole fusion embedding block; relative position tables resized with interp2d's bicubic spline).

The checkpoint is fabricated: a tiny model with the official architecture, every tensor random, written in
the official key layout, so its fusion word table differs from the text word table.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.interpolate import RectBivariateSpline

from xfm_pipeline.model import XFM, build_config, load_official_checkpoint, save_pretrained
from xfm_pipeline.model.decoder import CausalDecoder
from xfm_pipeline.model.official import official_over_checkpoint

OWN = {"fusion": {"word_embeddings": "own"}}
FUSION_EMB = "fusion_encoder.roberta.embeddings."


@pytest.fixture(scope="module")
def official_state(tmp_path_factory):
    """(official-layout state dict, its file): a random tiny model in the official key names."""
    from test_official import _to_official_layout

    torch.manual_seed(11)
    source = XFM(build_config("tiny", OWN))
    with torch.no_grad():
        for tensor in source.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.5)
    state = _to_official_layout(source)
    path = tmp_path_factory.mktemp("parity") / "xfm_official.th"
    torch.save({"model": state}, path)
    return state, path


@pytest.fixture(scope="module")
def imported(official_state):
    torch.manual_seed(0)
    model = XFM(build_config("tiny", OWN)).eval()
    load_official_checkpoint(official_state[1], model)
    return model


@pytest.fixture(scope="module")
def fused(imported):
    """(B, L, D) fusion-encoder states of 2 random images and texts."""
    torch.manual_seed(3)
    ids = torch.randint(5, 1000, (2, 7))
    atts = torch.ones_like(ids)
    with torch.no_grad():
        return imported.fuse(imported.encode_text(ids, atts), atts, imported.encode_image(torch.randn(2, 3, 64, 64)))


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _official_mlm_decode(hidden, state, prefix, eps):
    """RoBERTa's LM head by hand: dense -> exact GELU -> LayerNorm -> decoder weight (the tied word table) + bias."""
    h = hidden @ state[f"{prefix}.dense.weight"].T + state[f"{prefix}.dense.bias"]
    h = 0.5 * h * (1 + torch.erf(h / 2**0.5))
    h = _layer_norm(h, state[f"{prefix}.layer_norm.weight"], state[f"{prefix}.layer_norm.bias"], eps)
    return h @ state[f"{prefix}.decoder.weight"].T + state[f"{prefix}.decoder.bias"]


def test_fusion_mlm_logits_decode_with_the_fusion_encoders_own_word_table(imported, official_state, fused):
    state, eps = official_state[0], imported.config.fusion.layer_norm_eps
    with torch.no_grad():
        logits = imported.fusion_mlm_logits(fused)  # (B, L, V)
    reference = _official_mlm_decode(fused, state, "fusion_encoder.lm_head", eps)
    assert (logits - reference).abs().max() <= 1e-4
    # decoding with the text table (what a model tying it to the text encoder does) is a different function
    text_table = dict(state, **{"fusion_encoder.lm_head.decoder.weight": imported.text_encoder.get_input_embeddings().weight.detach()})
    assert (logits - _official_mlm_decode(fused, text_table, "fusion_encoder.lm_head", eps)).abs().max() > 1.0


def test_the_decoder_starts_from_the_whole_fusion_embedding_block(imported, official_state, fused):
    state = official_state[0]
    decoder = CausalDecoder.from_xfm(imported, context_width=imported.text_encoder.config.hidden_size).eval()
    emb = decoder.embeddings
    assert torch.equal(emb.word_embeddings.weight, state[FUSION_EMB + "word_embeddings.weight"])
    assert torch.equal(emb.position_embeddings.weight, state[FUSION_EMB + "position_embeddings.weight"])
    assert torch.equal(emb.token_type_embedding, state[FUSION_EMB + "token_type_embeddings.weight"][0])
    assert torch.equal(emb.LayerNorm.weight, state[FUSION_EMB + "LayerNorm.weight"])
    assert torch.equal(emb.LayerNorm.bias, state[FUSION_EMB + "LayerNorm.bias"])
    # first decoder input by hand: LN(word + position (offset 0 for the BERT-family tiny text) + type 0)
    ids = torch.tensor([[101, 2023, 2003]])
    eps = imported.config.fusion.layer_norm_eps
    by_hand = _layer_norm(
        state[FUSION_EMB + "word_embeddings.weight"][ids]
        + state[FUSION_EMB + "position_embeddings.weight"][:3]
        + state[FUSION_EMB + "token_type_embeddings.weight"][0],
        state[FUSION_EMB + "LayerNorm.weight"],
        state[FUSION_EMB + "LayerNorm.bias"],
        eps,
    )
    with torch.no_grad():
        assert (emb(ids) - by_hand).abs().max() <= 1e-5
        # its LM head is the fusion MLM head, decoding with the same (fusion) word table
        assert (decoder.logits(fused) - _official_mlm_decode(fused, state, "fusion_encoder.lm_head", eps)).abs().max() <= 1e-4


def _beit_reference_table(table: np.ndarray, dst_side: int) -> np.ndarray:
    """BEiT's relative-position resize transcribed step by step (its bisection, its offsets loop), with
    interp2d(kind="cubic") written as the equivalent RectBivariateSpline."""
    src_side = int(round((table.shape[0] - 3) ** 0.5))

    def geometric_progression(a, r, n):
        return a * (1.0 - r**n) / (1.0 - r)

    left, right = 1.01, 1.5
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if geometric_progression(1, q, src_side // 2) > dst_side // 2:
            right = q
        else:
            left = q
    dis, cur = [], 1
    for i in range(src_side // 2):
        dis.append(cur)
        cur += q ** (i + 1)
    x = [-d for d in reversed(dis)] + [0] + dis
    t = dst_side // 2.0
    dx = np.arange(-t, t + 0.1, 1.0)
    heads = []
    for h in range(table.shape[1]):
        z = table[: src_side**2, h].reshape(src_side, src_side)
        heads.append(RectBivariateSpline(x, x, z.T, kx=3, ky=3, s=0)(dx, dx).T.reshape(-1))
    return np.concatenate([np.stack(heads, 1), table[src_side**2 :]], 0)


def test_tables_imported_at_a_larger_image_size_match_the_official_cubic_resize(official_state):
    state, path = official_state
    model = XFM(build_config("tiny", {"vision": {"image_size": 96}, **OWN}))
    load_official_checkpoint(path, model)
    for i, block in enumerate(model.vision_encoder.blocks):
        source = state[f"vision_encoder.blocks.{i}.attn.relative_position_bias_table"].double().numpy()
        reference = torch.from_numpy(_beit_reference_table(source, 2 * 12 - 1)).float()
        assert (block.attn.relative_position_bias_table.detach() - reference).abs().max() <= 1e-5


def test_official_weights_over_a_task_checkpoint_keep_its_pointer_head(official_state, tiny_model, tmp_path):
    state, path = official_state
    directory = save_pretrained(tiny_model, tmp_path / "init")  # a checkpoint trained here: text-tied table
    model, report = official_over_checkpoint(directory, path)
    assert model.config.fusion.word_embeddings == "own"
    assert report.missing == [] and report.unexpected == []
    assert torch.equal(model.fusion_word_table(), state[FUSION_EMB + "word_embeddings.weight"])
    pointer = {k: v for k, v in tiny_model.state_dict().items() if k.startswith("bbox_pointer.")}
    assert pointer and all(torch.equal(model.state_dict()[k], v) for k, v in pointer.items())


def test_a_checkpoint_with_its_own_fusion_table_round_trips(imported, tmp_path):
    from xfm_pipeline.model import load_pretrained

    reloaded = load_pretrained(save_pretrained(imported, tmp_path / "own"))
    assert reloaded.config.fusion.word_embeddings == "own"
    assert torch.equal(reloaded.fusion_word_table(), imported.fusion_word_table())
    assert not torch.equal(reloaded.fusion_word_table(), reloaded.text_encoder.get_input_embeddings().weight)


def test_gelu_reference_is_the_exact_erf_form():
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(0.5 * x * (1 + torch.erf(x / 2**0.5)), F.gelu(x))


def test_model_init_builds_the_official_architecture_for_an_official_checkpoint(official_state):
    from xfm_pipeline.pipelines.model_init.nodes import initialise_model

    state, path = official_state
    checkpoint, summary = initialise_model({"preset": "tiny", "official_checkpoint": str(path)})
    assert summary["config"]["fusion"]["word_embeddings"] == "own"
    assert summary["official_import"]["missing"] == [] and summary["official_import"]["unexpected"] == []
    assert torch.equal(checkpoint.model.fusion_word_table(), state[FUSION_EMB + "word_embeddings.weight"])
    with pytest.raises(ValueError, match="word_embeddings: own"):  # an explicit text tie cannot take official weights
        initialise_model({"preset": "tiny", "official_checkpoint": str(path), "overrides": {"fusion": {"word_embeddings": "text"}}})
