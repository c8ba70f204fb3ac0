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


def test_texts_carry_string_keys_and_the_batch_is_cut_to_its_longest_text(setup):
    from xfm_pipeline.data.text import text_key

    ds = dataset(setup, texts_per_image=5)  # four candidate texts at most: one is drawn twice
    sample = ds[(0, 3)]
    tokenizer = setup[2]
    strings = [tokenizer.decode(ids[atts.bool()][1:-1]) for ids, atts in zip(sample["texts"]["text_ids"], sample["texts"]["text_atts"])]
    assert sample["text_key"].tolist() == [text_key(s) for s in strings]
    assert len(set(sample["text_key"].tolist())) < 5
    batch = pd.collate("region_text")([sample, ds[(0, 4)]])
    longest = int(batch["text_atts"].sum(1).max())
    assert batch["text_ids"].shape == batch["text_ids_masked"].shape == (10, longest) and longest < 16
    assert batch["text_key"].shape == (10,)


def test_without_augmentation_every_element_is_a_region_of_the_whole_image(setup):
    from xfm_pipeline.data.transforms import eval_transform

    records, root, tokenizer = setup
    text = pd.TextSettings(max_words=30, max_tokens=16)
    ds = pd.RegionTextDataset(records, root, 64, 8, eval_transform(64), tokenizer, TextMasker(tokenizer, 0.5, 4), text, texts_per_image=4, augment=False)
    for seed in range(5):
        sample = ds[(0, seed)]
        boxes = sorted(tuple(round(v, 4) for v in b) for b in sample["target_bbox"].tolist())
        # the 96 px image unchanged: element i spans x 8+20i .. 24+20i, y 8 .. 24; the caption is the whole image
        want = sorted([(0.5, 0.5, 1.0, 1.0)] + [(round((16 + 20 * i) / 96, 4), round(16 / 96, 4), round(16 / 96, 4), round(16 / 96, 4)) for i in range(3)])
        assert boxes == want
        torch.testing.assert_close(sample["images"], eval_transform(64)(Image.open(root / "a.png").convert("RGB").resize((64, 64), Image.BICUBIC)))
