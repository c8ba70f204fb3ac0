"""The region-text pretraining dataset: texts per image, the texts that also go through the fusion encoder."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from xfm_pipeline.data import pretrain_datasets as pd
from xfm_pipeline.data.formats.pretrain import RegionElem, RegionTextRecord
from xfm_pipeline.data.masking import TextMasker
from xfm_pipeline.model.text import load_tokenizer


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("regions")
    Image.new("RGB", (96, 96), (30, 60, 90)).save(root / "a.png")
    elems = tuple(RegionElem(bb=(8 + 20 * i, 8, 16, 16), caption=(f"shape {i}",)) for i in range(3))
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    return [RegionTextRecord(elems=elems, caption="three shapes", image="a.png")], root, tokenizer


def dataset(setup, **kwargs):
    records, root, tokenizer = setup
    text = pd.TextSettings(max_words=30, max_tokens=16)
    from xfm_pipeline.data.transforms import randaugment_color_transform

    return pd.RegionTextDataset(records, root, 64, 8, randaugment_color_transform(), tokenizer, TextMasker(tokenizer, 0.5, 4), text, **kwargs)


def test_fusion_rows_mark_the_first_texts_of_each_image(setup):
    ds = dataset(setup, texts_per_image=4, fusion_texts_per_image=1)
    batch = pd.collate("region_text")([ds[(0, 1)], ds[(0, 2)]])
    assert batch["fusion_rows"].tolist() == [True, False, False, False] * 2
    assert batch["text_ids"].shape[0] == batch["image_atts"].shape[0] == 8 and batch["images"].shape[0] == 2
    assert dataset(setup, texts_per_image=3)[(0, 1)]["fusion_rows"].all()  # default: every text


@pytest.mark.parametrize("fusion", [0, 5])
def test_fusion_texts_per_image_is_validated(setup, fusion):
    with pytest.raises(ValueError, match="fusion_texts_per_image must be in 1..texts_per_image"):
        dataset(setup, texts_per_image=4, fusion_texts_per_image=fusion)
