"""Every scheduler yields PyTorch's learning-rate sequence (to the last bit), also after a
state-dict round trip (through JSON) in the middle of the schedule."""

import json

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as torch_sched

import minigrad as mg
from minigrad import optim
from minigrad.optim import lr_scheduler as sched

STEPS = 50
OPTIMIZERS = {
    "sgd": lambda lib, params: lib.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda lib, params: lib.Adam(params, lr=0.01, betas=(0.9, 0.99)),
}


def _params(lib):
    if lib is torch.optim:
        return [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    return [mg.zeros(2, requires_grad=True), mg.zeros(3, requires_grad=True)]


def _optimizer(lib, kind: str):
    """An optimizer of ``lib`` (ours or torch.optim) with two groups of different lr."""
    first, second = _params(lib)
    opt = OPTIMIZERS[kind](lib, [first])
    opt.add_param_group({"params": [second], "lr": opt.param_groups[0]["lr"] * 3})
    return opt, [first, second]


def _optimizer_step(opt, params) -> None:
    for p in params:
        p.grad = torch.ones_like(p) if isinstance(p, torch.Tensor) else mg.ones_like(p)
    opt.step()


def _group_values(opt) -> list:
    """What each group's schedule sets: its lr, and momentum or beta1."""
    values = []
    for group in opt.param_groups:
        momentum = group["betas"][0] if "betas" in group else group["momentum"]
        values.append((group["lr"], momentum))
    return values


CASES = {
    "StepLR": (lambda m, o: m.StepLR(o, step_size=7, gamma=0.5), "sgd"),
    "MultiStepLR": (lambda m, o: m.MultiStepLR(o, milestones=[3, 10, 10, 31], gamma=0.3), "sgd"),
    "ExponentialLR": (lambda m, o: m.ExponentialLR(o, gamma=0.93), "adam"),
    "CosineAnnealingLR": (lambda m, o: m.CosineAnnealingLR(o, T_max=20, eta_min=1e-3), "sgd"),
    "LinearLR": (
        lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=12),
        "adam",
    ),
    "SequentialLR": (
        lambda m, o: m.SequentialLR(
            o,
            [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=30)],
            milestones=[5],
        ),
        "sgd",
    ),
    "SequentialLR-3": (
        lambda m, o: m.SequentialLR(
            o,
            [
                m.ExponentialLR(o, 0.9),
                m.StepLR(o, 4),
                m.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
            ],
            milestones=[6, 20],
        ),
        "adam",
    ),
    "OneCycleLR-sgd": (lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=STEPS), "sgd"),
    "OneCycleLR-adam": (
        lambda m, o: m.OneCycleLR(
            o, max_lr=0.02, epochs=5, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear"
        ),
        "adam",
    ),
    "OneCycleLR-three-phase": (
        lambda m, o: m.OneCycleLR(
            o, max_lr=0.3, total_steps=STEPS, three_phase=True, base_momentum=0.8, max_momentum=0.9
        ),
        "sgd",
    ),
}


def _run(lib, module, case: str, steps: int, resume_at: int | None = None):
    """The (lr, momentum) of each group after building and after each of ``steps`` steps;
    with ``resume_at``, the optimizer and scheduler are rebuilt there from their state dicts
    (the scheduler's through JSON, as a checkpoint keeps it)."""
    make, kind = CASES[case]
    opt, params = _optimizer(lib, kind)
    scheduler = make(module, opt)
    values = [(_group_values(opt), scheduler.get_last_lr())]
    for step in range(steps):
        if step == resume_at:
            opt_state = opt.state_dict()
            scheduler_state = json.loads(json.dumps(scheduler.state_dict()))
            opt, params = _optimizer(lib, kind)
            scheduler = make(module, opt)
            opt.load_state_dict(opt_state)
            scheduler.load_state_dict(scheduler_state)
        _optimizer_step(opt, params)
        scheduler.step()
        values.append((_group_values(opt), scheduler.get_last_lr()))
    return values


@pytest.mark.parametrize("case", list(CASES))
def test_scheduler_yields_torchs_sequence(case):
    ours = _run(optim, sched, case, STEPS)
    theirs = _run(torch.optim, torch_sched, case, STEPS)
    assert ours == theirs


@pytest.mark.parametrize("case", list(CASES))
def test_scheduler_resumes_mid_schedule_from_its_state_dict(case):
    ours = _run(optim, sched, case, STEPS, resume_at=17)
    theirs = _run(torch.optim, torch_sched, case, STEPS)
    assert ours == theirs


@pytest.mark.parametrize("case", ["StepLR", "SequentialLR", "OneCycleLR-adam", "MultiStepLR"])
def test_state_dict_has_torchs_keys(case):
    make, kind = CASES[case]
    ours = make(sched, _optimizer(optim, kind)[0]).state_dict()
    theirs = make(torch_sched, _optimizer(torch.optim, kind)[0]).state_dict()
    assert set(ours) == set(theirs)
    if "_schedulers" in ours:
        for a, b in zip(ours["_schedulers"], theirs["_schedulers"], strict=True):
            assert set(a) == set(b)


def test_optimizer_groups_keep_the_scheduler_keys_torch_adds():
    opt, _ = _optimizer(optim, "sgd")
    sched.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    topt, _ = _optimizer(torch.optim, "sgd")
    torch_sched.OneCycleLR(topt, max_lr=1.0, total_steps=10)
    for ours, theirs in zip(opt.param_groups, topt.param_groups, strict=True):
        for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            assert ours[key] == theirs[key], key


PLATEAU = [
    {},
    {"patience": 2, "factor": 0.5},
    {"patience": 1, "cooldown": 2, "threshold": 0.05, "threshold_mode": "abs"},
    {"mode": "max", "patience": 0, "min_lr": [0.05, 0.2], "eps": 1e-3},
    {"mode": "max", "patience": 3, "threshold_mode": "rel", "threshold": 0.01, "factor": 0.2},
]


@pytest.mark.parametrize(
    "kwargs", PLATEAU, ids=["default", "patience", "cooldown-abs", "max-min_lr", "max-rel"]
)
def test_reduce_lr_on_plateau_follows_torch_on_a_metric_sequence(kwargs):
    rng = np.random.default_rng(3)
    metrics = np.concatenate([np.linspace(1.0, 0.5, 10), 0.5 + 0.02 * rng.standard_normal(40)])
    runs = []
    for lib, module in ((optim, sched), (torch.optim, torch_sched)):
        opt, params = _optimizer(lib, "sgd")
        scheduler = module.ReduceLROnPlateau(opt, **kwargs)
        lrs = []
        for step, metric in enumerate(metrics):
            if step == 25:
                state = json.loads(json.dumps(scheduler.state_dict()))
                scheduler = module.ReduceLROnPlateau(opt, **kwargs)
                scheduler.load_state_dict(state)
            _optimizer_step(opt, params)
            value = mg.tensor(metric) if lib is optim else float(metric)
            scheduler.step(value)
            lrs.append(scheduler.get_last_lr())
        runs.append((lrs, scheduler.num_bad_epochs, scheduler.best))
    assert runs[0] == runs[1]
    assert len({tuple(lr) for lr in runs[0][0]}) > 1 or not kwargs, "the lr never changed"


def test_step_with_an_epoch_uses_the_closed_form_and_warns():
    values = []
    for lib, module in ((optim, sched), (torch.optim, torch_sched)):
        opt, params = _optimizer(lib, "sgd")
        scheduler = module.CosineAnnealingLR(opt, T_max=10)
        _optimizer_step(opt, params)
        with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
            scheduler.step(7)
        values.append(scheduler.get_last_lr())
    assert values[0] == values[1]


def test_warnings_as_torch():
    opt, params = _optimizer(optim, "sgd")
    scheduler = sched.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        scheduler.step()
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        scheduler.get_lr()


@pytest.mark.parametrize(
    "make,error,message",
    [
        (lambda o: sched.StepLR(object(), 3), TypeError, "object is not an Optimizer"),
        (lambda o: sched.LinearLR(o, start_factor=0), ValueError, "Starting multiplicative factor"),
        (lambda o: sched.LinearLR(o, end_factor=1.5), ValueError, "Ending multiplicative factor"),
        (
            lambda o: sched.StepLR(o, 3, last_epoch=4),
            KeyError,
            "param 'initial_lr' is not specified",
        ),
        (lambda o: sched.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0"),
        (lambda o: sched.ReduceLROnPlateau(o, mode="low"), ValueError, "mode low is unknown"),
        (
            lambda o: sched.ReduceLROnPlateau(o, min_lr=[0.1]),
            ValueError,
            "expected 2 min_lrs, got 1",
        ),
        (lambda o: sched.OneCycleLR(o, 1.0), ValueError, "You must define either total_steps"),
        (
            lambda o: sched.OneCycleLR(o, 1.0, total_steps=0),
            ValueError,
            "positive integer total_steps",
        ),
        (
            lambda o: sched.OneCycleLR(o, 1.0, 10, pct_start=1),
            ValueError,
            "Expected float between 0 and 1",
        ),
        (lambda o: sched.OneCycleLR(o, [1.0], 10), ValueError, "max_lr must have the same length"),
        (
            lambda o: sched.SequentialLR(o, [sched.StepLR(o, 2)], milestones=[3]),
            ValueError,
            "one more",
        ),
        (
            lambda o: sched.SequentialLR(o, [sched.ReduceLROnPlateau(o), sched.StepLR(o, 2)], [3]),
            ValueError,
            "does not support `ReduceLROnPlateau`",
        ),
    ],
)
def test_bad_arguments_are_named(make, error, message):
    opt, _ = _optimizer(optim, "sgd")
    with pytest.raises(error, match=message):
        make(opt)


def test_one_cycle_refuses_to_step_past_its_total():
    opt, params = _optimizer(optim, "adam")
    scheduler = sched.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        _optimizer_step(opt, params)
        scheduler.step()
    with pytest.raises(
        ValueError, match="Tried to step 4 times. The specified number of total steps is 3"
    ):
        scheduler.step()


def test_one_cycle_needs_a_momentum_to_cycle():
    class Plain(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        sched.OneCycleLR(Plain([mg.zeros(1, requires_grad=True)]), max_lr=1.0, total_steps=5)


ARGUMENT_CASES = {
    "step-size-zero": (
        lambda o: sched.StepLR(o, 0),
        ValueError,
        "StepLR: step_size must be an integer >= 1, got 0",
    ),
    "step-size-float": (
        lambda o: sched.StepLR(o, 2.5),
        TypeError,
        "StepLR: step_size must be an integer >= 1, got 2.5",
    ),
    "step-size-bool": (
        lambda o: sched.StepLR(o, True),
        TypeError,
        "StepLR: step_size must be an integer >= 1, got True",
    ),
    "step-gamma": (
        lambda o: sched.StepLR(o, 2, gamma="x"),
        TypeError,
        "StepLR: gamma must be a number, got 'x'",
    ),
    "last-epoch": (
        lambda o: sched.StepLR(o, 2, last_epoch=-2),
        ValueError,
        "StepLR: last_epoch must be an integer >= -1, got -2",
    ),
    "milestones-int": (
        lambda o: sched.MultiStepLR(o, 5),
        TypeError,
        "MultiStepLR: milestones must be a list of integers, got 5",
    ),
    "milestones-float": (
        lambda o: sched.MultiStepLR(o, [2, 3.5]),
        TypeError,
        "MultiStepLR: milestones[1] must be an integer, got 3.5",
    ),
    "multistep-gamma": (
        lambda o: sched.MultiStepLR(o, [2], gamma=None),
        TypeError,
        "MultiStepLR: gamma must be a number, got None",
    ),
    "exponential-gamma": (
        lambda o: sched.ExponentialLR(o, "0.9"),
        TypeError,
        "ExponentialLR: gamma must be a number, got '0.9'",
    ),
    "t-max-zero": (
        lambda o: sched.CosineAnnealingLR(o, T_max=0),
        ValueError,
        "CosineAnnealingLR: T_max must be an integer >= 1, got 0",
    ),
    "eta-min": (
        lambda o: sched.CosineAnnealingLR(o, T_max=10, eta_min="0"),
        TypeError,
        "CosineAnnealingLR: eta_min must be a number, got '0'",
    ),
    "total-iters-zero": (
        lambda o: sched.LinearLR(o, total_iters=0),
        ValueError,
        "LinearLR: total_iters must be an integer >= 1, got 0",
    ),
    "start-factor": (
        lambda o: sched.LinearLR(o, start_factor="a"),
        TypeError,
        "LinearLR: start_factor must be a number, got 'a'",
    ),
    "patience": (
        lambda o: sched.ReduceLROnPlateau(o, patience=-1),
        ValueError,
        "ReduceLROnPlateau: patience must be an integer >= 0, got -1",
    ),
    "cooldown": (
        lambda o: sched.ReduceLROnPlateau(o, cooldown=1.5),
        TypeError,
        "ReduceLROnPlateau: cooldown must be an integer >= 0, got 1.5",
    ),
    "factor": (
        lambda o: sched.ReduceLROnPlateau(o, factor="x"),
        TypeError,
        "ReduceLROnPlateau: factor must be a number, got 'x'",
    ),
    "min-lr": (
        lambda o: sched.ReduceLROnPlateau(o, min_lr=[0, "x"]),
        TypeError,
        "ReduceLROnPlateau: min_lr[1] must be a number, got 'x'",
    ),
    "max-lr": (
        lambda o: sched.OneCycleLR(o, "x", 10),
        TypeError,
        "OneCycleLR: max_lr must be a non-negative number, got 'x'",
    ),
    "div-factor": (
        lambda o: sched.OneCycleLR(o, 1.0, 10, div_factor=0),
        ValueError,
        "OneCycleLR: div_factor must be a positive number, got 0",
    ),
    "pct-start-str": (
        lambda o: sched.OneCycleLR(o, 1.0, 10, pct_start="x"),
        ValueError,
        "Expected float between 0 and 1 pct_start, but got x",
    ),
    "sequential-milestones": (
        lambda o: sched.SequentialLR(o, [sched.StepLR(o, 2), sched.StepLR(o, 2)], [1.5]),
        TypeError,
        "SequentialLR: milestones[0] must be an integer, got 1.5",
    ),
}


@pytest.mark.parametrize("make,error,message", ARGUMENT_CASES.values(), ids=list(ARGUMENT_CASES))
def test_a_bad_argument_fails_in_the_constructor_naming_it_and_its_value(make, error, message):
    """Counts of 0 used to build and then divide by zero at the first step()."""
    opt, _ = _optimizer(optim, "sgd")
    with pytest.raises(error) as caught:
        make(opt)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "make",
    [
        lambda m, o: m.StepLR(o, step_size=np.int64(3), gamma=np.float32(0.5)),
        lambda m, o: m.CosineAnnealingLR(o, T_max=np.int32(4)),
        lambda m, o: m.MultiStepLR(o, milestones=np.array([2, 5])),
    ],
    ids=["step", "cosine", "multistep"],
)
def test_numpy_integers_and_floats_are_accepted_as_torch_does(make):
    ours, our_params = _optimizer(optim, "sgd")
    theirs, their_params = _optimizer(torch.optim, "sgd")
    our_sched, their_sched = make(sched, ours), make(torch_sched, theirs)
    for _ in range(8):
        _optimizer_step(ours, our_params)
        _optimizer_step(theirs, their_params)
        our_sched.step()
        their_sched.step()
        assert _group_values(ours) == _group_values(theirs)
