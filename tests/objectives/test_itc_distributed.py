"""gather_features / itc_loss across 2 gloo processes equal the 1-process computation on the global batch."""

import pytest
import torch
import torch.nn.functional as F
from gloo_workers import spawn_and_collect

from xfm_pipeline.objectives import gather_features, itc_loss, rank_and_world

WORLD, LOCAL_BATCH, DIM_IN, DIM = 2, 3, 5, 4
IDX = torch.tensor([0, 1, 2, 2, 0, 5])  # ties inside a rank and across ranks


def _setup():
    """Shared towers (same init on every rank) and the global batch of inputs."""
    torch.manual_seed(0)
    image_tower = torch.nn.Linear(DIM_IN, DIM).double()
    text_tower = torch.nn.Linear(DIM_IN, DIM).double()
    x_image = torch.randn(WORLD * LOCAL_BATCH, DIM_IN, dtype=torch.float64)
    x_text = torch.randn(WORLD * LOCAL_BATCH, DIM_IN, dtype=torch.float64)
    return image_tower, text_tower, x_image, x_text


def _step(image_tower, text_tower, x_image, x_text, idx):
    """Loss, gradients of the tower weights, and gradients of the (local) input features."""
    x_image, x_text = x_image.clone().requires_grad_(), x_text.clone().requires_grad_()
    image_tower.zero_grad(), text_tower.zero_grad()
    loss = itc_loss(F.normalize(image_tower(x_image), dim=-1), F.normalize(text_tower(x_text), dim=-1), 0.1, idx)
    loss.backward()
    params = [p.grad.clone() for p in (*image_tower.parameters(), *text_tower.parameters())]
    return loss.detach(), params, x_image.grad


def _compute(rank):
    import torch.distributed as dist

    torch.set_num_threads(1)
    image_tower, text_tower, x_image, x_text = _setup()
    local = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    result = {"rank_and_world": rank_and_world(), "gathered_idx": gather_features(IDX[local])}
    for name, idx in (("hard", None), ("soft", IDX[local])):
        loss, params, x_grad = _step(image_tower, text_tower, x_image[local], x_text[local], idx)
        for g in params:  # what DDP does: average the parameter gradients over ranks
            dist.all_reduce(g)
            g /= WORLD
        result[name] = {"loss": loss, "params": params, "x_grad": x_grad}
    return result


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    return spawn_and_collect(_compute, tmp_path_factory.mktemp("gloo"), WORLD)


def test_one_process_gather_is_the_identity():
    x = torch.randn(3, 2)
    assert rank_and_world() == (0, 1)
    assert gather_features(x) is x


@pytest.mark.system  # two spawned gloo processes
@pytest.mark.parametrize("name", ["hard", "soft"])
def test_two_rank_itc_equals_the_global_batch_computation(two_rank_results, name):
    image_tower, text_tower, x_image, x_text = _setup()
    ref_loss, ref_params, ref_x_grad = _step(image_tower, text_tower, x_image, x_text, None if name == "hard" else IDX)
    for rank, result in enumerate(two_rank_results):
        assert result["rank_and_world"] == (rank, WORLD)
        torch.testing.assert_close(result["gathered_idx"], IDX)
        got = result[name]
        torch.testing.assert_close(got["loss"], ref_loss, atol=1e-6, rtol=0)  # identical on every rank
        for g, want in zip(got["params"], ref_params, strict=True):  # after DDP averaging
            torch.testing.assert_close(g, want, atol=1e-6, rtol=0)
        # every rank backpropagates the same global loss, so the local feature gradient is W x the slice
        local = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        torch.testing.assert_close(got["x_grad"], WORLD * ref_x_grad[local], atol=1e-6, rtol=0)
