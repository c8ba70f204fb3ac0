"""The GPU check's device guard, on the CPU: it must flag what is not on the expected device."""

import pytest
import torch
from device_guard import WrongDevice, only_on


def test_a_model_on_the_wrong_device_is_reported_with_its_parameters_and_inputs():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    with pytest.raises(WrongDevice, match=r"Linear\.weight on cpu") as caught:
        with only_on("cuda"):
            model(torch.randn(4, 3))
    assert "Linear input (4, 3) on cpu" in str(caught.value)


def test_everything_on_the_expected_device_passes_and_the_hook_is_removed():
    model = torch.nn.Linear(3, 2)
    with only_on("cpu") as problems:
        model(torch.randn(4, 3))
    assert problems == []
    with only_on("cpu"):
        pass
    model(torch.randn(1, 3))  # no hook left behind
    assert not torch.nn.modules.module._global_forward_pre_hooks
