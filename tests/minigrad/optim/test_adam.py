"""Adam and AdamW follow torch.optim step for step, with every option, and resume bit for bit."""

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import optim

ADAM_OPTIONS = [
    {},
    {"amsgrad": True},
    {"weight_decay": 0.1},
    {"maximize": True},
    {"betas": (0.3, 0.9), "eps": 1e-3},
    {"decoupled_weight_decay": True, "weight_decay": 0.2},
    {"amsgrad": True, "weight_decay": 0.1, "maximize": True, "betas": (0.6, 0.95)},
]
ADAM_IDS = ["plain", "amsgrad", "decay", "maximize", "betas-eps", "decoupled", "all"]
ADAMW_OPTIONS = [{}, {"weight_decay": 0.3, "amsgrad": True}, {"maximize": True, "amsgrad": True}]
ADAMW_IDS = ["plain", "decay-amsgrad", "maximize-amsgrad"]


def _sign(options: dict) -> float:
    return -1.0 if options.get("maximize") else 1.0


@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=ADAM_IDS)
def test_adam_follows_torch_for_200_steps(trajectory, device, options):
    trajectory(optim.Adam, torch.optim.Adam, device, lr=0.01, sign=_sign(options), **options)


@pytest.mark.parametrize("options", ADAMW_OPTIONS, ids=ADAMW_IDS)
def test_adamw_follows_torch_for_200_steps(trajectory, device, options):
    trajectory(optim.AdamW, torch.optim.AdamW, device, lr=0.01, sign=_sign(options), **options)


def test_adam_in_any_chunk_size(trajectory, chunk_bytes):
    trajectory(
        optim.Adam, torch.optim.Adam, "cpu", np.float64, steps=30, sign=-1.0, **ADAM_OPTIONS[-1]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cls,options",
    [(optim.Adam, {}), (optim.Adam, ADAM_OPTIONS[-1]), (optim.AdamW, ADAMW_OPTIONS[1])],
    ids=["adam", "adam-all", "adamw"],
)
def test_adam_resumes_from_its_state_dict_bit_for_bit(resume, device, dtype, cls, options):
    resume(cls, device, dtype, sign=_sign(options), **options)


def test_adamw_is_adam_with_decoupled_decay_and_keeps_it_on_load():
    p = mg.zeros(3, requires_grad=True)
    adamw = optim.AdamW([p])
    assert adamw.defaults["weight_decay"] == 1e-2
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True
    state = adamw.state_dict()
    state["param_groups"][0]["decoupled_weight_decay"] = False
    adamw.load_state_dict(state)
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"lr": -1}, "Invalid learning rate: -1"),
        ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
        ({"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0: 1.0"),
        ({"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
        ({"weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
    ],
)
def test_adam_rejects_bad_hyperparameters_as_torch(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([mg.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=message):
        getattr(torch.optim, cls.__name__)([torch.zeros(2, requires_grad=True)], **kwargs)
