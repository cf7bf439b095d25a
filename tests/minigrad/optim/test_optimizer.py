"""The Optimizer base: param groups, state dicts in PyTorch's layout (both ways), devices,
in-place updates and the errors for bad input."""

import json

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import backend, optim
from minigrad.testing import fake_cupy

CONFIGS = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
]
IDS = ["sgd", "sgd-nesterov", "adam", "adam-amsgrad", "adamw", "rmsprop", "rmsprop-all"]


def _pair(kit, name: str, kwargs: dict, dtype=np.float64, device="cpu", steps: int = 3):
    """Our optimizer and torch's on the test problem, after ``steps`` steps each."""
    problem = kit.Problem.make(dtype)
    our_params, our_loss = problem.ours(device)
    their_params, their_loss = problem.theirs()
    lr = kwargs["lr"]
    ours = getattr(optim, name)(kit.groups(our_params, lr), **kwargs)
    theirs = getattr(torch.optim, name)(kit.groups(their_params, lr), **kwargs)
    for _ in range(steps):
        kit.one_step(ours, our_loss)
        kit.one_step(theirs, their_loss)
    return ours, theirs, our_params, their_params, our_loss, their_loss


def _to_torch(state_dict: dict) -> dict:
    """Our state dict with torch tensors in place of our Tensors."""
    state = {
        i: {k: torch.from_numpy(np.array(v.numpy())) for k, v in entry.items()}
        for i, entry in state_dict["state"].items()
    }
    return {"state": state, "param_groups": state_dict["param_groups"]}


def _assert_params_close(kit, ours, theirs, dtype) -> None:
    rtol, atol = kit.tolerance(dtype)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


# ---- state dict layout and interchange with PyTorch ---------------------------------------


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_state_dict_has_torchs_layout_and_keys(kit, name, kwargs):
    ours, theirs, *_ = _pair(kit, name, kwargs)
    our_sd, their_sd = ours.state_dict(), theirs.state_dict()
    assert list(our_sd) == list(their_sd) == ["state", "param_groups"]
    assert list(our_sd["state"]) == list(their_sd["state"])
    for index, entry in their_sd["state"].items():
        assert list(our_sd["state"][index]) == list(entry)
        for key, value in entry.items():
            ours_value = our_sd["state"][index][key]
            assert isinstance(ours_value, mg.Tensor)
            assert ours_value.shape == tuple(value.shape), key
            assert ours_value.dtype == value.numpy().dtype, key
    for our_group, their_group in zip(
        our_sd["param_groups"], their_sd["param_groups"], strict=True
    ):
        assert set(our_group) == set(their_group) - kit.TORCH_IMPLEMENTATION_FLAGS
        for key, value in our_group.items():
            assert value == their_group[key], key


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_torchs_state_dict_loads_into_ours_and_both_continue_alike(kit, name, kwargs):
    _, theirs, _, their_params, _, their_loss = _pair(kit, name, kwargs, steps=4)
    problem = kit.Problem.make(np.float64)
    our_params, our_loss = problem.ours("cpu", start=4)
    for p, t in zip(our_params, their_params, strict=True):
        p.data[...] = t.detach().numpy()
    ours = getattr(optim, name)(kit.groups(our_params, 1.0), lr=1.0)
    ours.load_state_dict(theirs.state_dict())
    for _ in range(20):
        kit.one_step(ours, our_loss)
        kit.one_step(theirs, their_loss)
    _assert_params_close(kit, our_params, their_params, np.float64)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_our_state_dict_loads_into_torch_and_both_continue_alike(kit, name, kwargs):
    ours, _, our_params, _, our_loss, _ = _pair(kit, name, kwargs, steps=4)
    problem = kit.Problem.make(np.float64)
    their_params, their_loss = problem.theirs(start=4)
    with torch.no_grad():
        for t, p in zip(their_params, our_params, strict=True):
            t.copy_(torch.from_numpy(p.detach().numpy()))
    theirs = getattr(torch.optim, name)(kit.groups(their_params, 1.0), lr=1.0)
    theirs.load_state_dict(_to_torch(ours.state_dict()))
    for _ in range(20):
        kit.one_step(ours, our_loss)
        kit.one_step(theirs, their_loss)
    _assert_params_close(kit, our_params, their_params, np.float64)


def test_state_dict_survives_a_json_round_trip_of_its_structure(kit):
    """Checkpoints keep the state tensors apart and the rest as JSON: string state keys and
    list betas load as ints and a tuple-like pair."""
    ours, _, params, _, loss, _ = _pair(kit, "Adam", {"lr": 0.01})
    state = ours.state_dict()
    tensors = state["state"]
    restored = json.loads(json.dumps({**state, "state": {}}))
    restored["state"] = {str(i): entry for i, entry in tensors.items()}
    copy = optim.Adam(kit.groups(params, 1.0))
    copy.load_state_dict(restored)
    assert copy.param_groups[0]["betas"] == [0.9, 0.999]
    assert sorted(copy.state_dict()["state"]) == sorted(tensors)
    kit.one_step(copy, loss)


def test_state_dict_holds_the_optimizers_own_tensors_and_loading_copies_them(kit):
    ours, _, params, _, loss, _ = _pair(kit, "Adam", {"lr": 0.01})
    saved = ours.state_dict()
    assert saved["state"][0]["exp_avg"] is ours.state[params[0]]["exp_avg"]
    fresh = optim.Adam(kit.groups(params, 1.0))
    fresh.load_state_dict(saved)
    assert fresh.state[params[0]]["exp_avg"].data is not saved["state"][0]["exp_avg"].data


def test_load_state_dict_moves_state_to_each_parameters_device(kit, device):
    ours, *_ = _pair(kit, "Adam", {"lr": 0.01})
    params, _ = kit.Problem.make(np.float32).ours(device)
    moved = optim.Adam(kit.groups(params, 0.01))
    moved.load_state_dict(ours.state_dict())
    state = moved.state[params[0]]
    assert state["exp_avg"].device == backend.canonical_device(device)
    assert state["exp_avg"].dtype == np.float32
    assert state["step"].device == "cpu" and state["step"].dtype == np.float32


# ---- groups, steps and gradients ----------------------------------------------------------


def test_add_param_group_fills_defaults_and_steps_the_new_group(device):
    a = mg.tensor(np.ones(3), device=device, requires_grad=True)
    b = mg.tensor(np.ones(2), device=device, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["params"] == [b] or opt.param_groups[1]["params"][0] is b
    (a.sum() + (b * b).sum()).backward()
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), 0.9)
    np.testing.assert_allclose(b.detach().numpy(), 0.0)
    assert opt.state_dict()["param_groups"][1]["params"] == [1]


def test_zero_grad_sets_none_or_zeros_in_place():
    p = mg.zeros(3, requires_grad=True)
    opt = optim.SGD([p])
    (p * 2).sum().backward()
    grad = p.grad.data
    opt.zero_grad(set_to_none=False)
    assert p.grad.data is grad and not grad.any()
    opt.zero_grad()
    assert p.grad is None


def test_step_runs_the_closure_with_grad_enabled_and_returns_its_loss():
    p = mg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    q = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    ours, theirs = optim.Adam([p], lr=0.1), torch.optim.Adam([q], lr=0.1)

    def closure(opt, x):
        def run():
            opt.zero_grad()
            loss = (x * x).sum()
            loss.backward()
            return loss

        return run

    with mg.no_grad():
        loss = ours.step(closure(ours, p))
    their_loss = theirs.step(closure(theirs, q))
    assert float(loss) == float(their_loss.detach()) == 5.0
    np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)


def test_updates_are_in_place_and_views_follow(device):
    p = mg.tensor(np.arange(6.0).reshape(2, 3), device=device, requires_grad=True)
    data, row = p.data, p.data[1]
    opt = optim.SGD([p], lr=0.5)
    p.sum().backward()
    opt.step()
    assert p.data is data
    np.testing.assert_allclose(backend.to_host(row), [2.5, 3.5, 4.5])


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_large_and_transposed_parameters_match_torch(kit, name, kwargs):
    """A 2**20-element parameter (many chunks, over the thread pool) and a transposed one
    (updated whole, in its own layout) after two steps with fixed gradients."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(1 << 20, dtype=np.float32), rng.standard_normal((5, 3)).T]
    grads = [rng.standard_normal(a.shape).astype(a.dtype) for a in arrays]
    ours = [mg.tensor(a, requires_grad=True) for a in arrays]
    ours[1].data = np.asfortranarray(ours[1].data)
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_opt, their_opt = (
        getattr(optim, name)(ours, **kwargs),
        getattr(torch.optim, name)(theirs, **kwargs),
    )
    for step in range(2):
        for o, t, g in zip(ours, theirs, grads, strict=True):
            o.grad, t.grad = mg.tensor(g * (step + 1)), torch.tensor(g * (step + 1))
        our_opt.step()
        their_opt.step()
    assert not ours[1].data.flags.c_contiguous
    for o, t in zip(ours, theirs, strict=True):
        rtol, atol = kit.tolerance(o.dtype)
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_a_gpu_step_copies_nothing_between_host_and_device(kit, name, kwargs):
    if backend.gpu_module() is not fake_cupy:
        pytest.skip("counts the stand-in's transfers")
    params, loss = kit.Problem.make(np.float32).ours("gpu")
    opt = getattr(optim, name)(kit.groups(params, kwargs["lr"]), **kwargs)
    kit.one_step(opt, loss)
    loss().backward()
    with fake_cupy.count_transfers() as transfers:
        opt.step()
    assert transfers.to_host_calls == 0 and transfers.to_device_calls == 0


# ---- errors -------------------------------------------------------------------------------


def test_a_parameter_moved_to_another_device_than_its_state_is_named():
    p = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    q = mg.tensor(np.ones(2, np.float32), requires_grad=True)
    opt = optim.Adam([q, p])
    (p.sum() + q.sum()).backward()
    opt.step()
    p.data = backend.to_device(p.data, "gpu")
    p.grad = mg.ones(3, device="gpu")
    with pytest.raises(
        backend.DeviceError,
        match=r"parameter 1 is on gpu but its optimizer state 'exp_avg' is on cpu",
    ):
        opt.step()
    opt.load_state_dict(opt.state_dict())
    opt.step()
    assert opt.state[p]["exp_avg"].device == "gpu" and opt.state[p]["step"].item() == 2


def test_a_parameter_changed_dtype_after_its_state_is_named():
    p = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.RMSprop([p])
    p.sum().backward()
    opt.step()
    p.data, p.grad = p.data.astype(np.float64), mg.ones(3, dtype=mg.float64)
    with pytest.raises(TypeError, match=r"parameter 0 is float64 .* state 'square_avg' is float32"):
        opt.step()


@pytest.mark.parametrize(
    "grad,error,message",
    [
        (
            mg.ones(4),
            ValueError,
            r"parameter 1: grad has shape \(4,\) but the parameter has shape \(3,\)",
        ),
        (
            mg.ones(3, dtype=mg.float64),
            TypeError,
            r"parameter 1: grad has dtype float64 but the parameter has dtype float32",
        ),
        (
            mg.ones(3, device="gpu"),
            backend.DeviceError,
            r"parameter 1: grad is on gpu but the parameter is on cpu",
        ),
        (np.ones(3, np.float32), TypeError, r"parameter 1: grad must be a Tensor, got ndarray"),
    ],
    ids=["shape", "dtype", "device", "array"],
)
def test_a_bad_gradient_is_named(grad, error, message):
    p, q = mg.zeros(2, requires_grad=True), mg.zeros(3, requires_grad=True)
    opt = optim.SGD([p, q], momentum=0.9)
    p.grad, q.grad = mg.ones(2), grad
    with pytest.raises(error, match=message):
        opt.step()
    assert not opt.state, "a failed step must leave no state behind"


def test_named_parameters_are_kept_and_named_in_errors():
    w = mg.zeros(2, requires_grad=True)
    opt = optim.SGD([("layer.weight", w)])
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["layer.weight"]
    w.grad = mg.ones(5)
    with pytest.raises(ValueError, match=r"parameter 0 \('layer.weight'\): grad has shape"):
        opt.step()


@pytest.mark.parametrize(
    "params,error,message",
    [
        (lambda p: p, TypeError, "should be an iterable of Tensors or dicts, but got Tensor"),
        (lambda p: [], ValueError, "optimizer got an empty parameter list"),
        (
            lambda p: [np.zeros(2)],
            TypeError,
            "can only optimize Tensors, but one of the params is numpy.ndarray",
        ),
        (lambda p: [{"params": {p}}], TypeError, "ordered collections"),
        (lambda p: [p, p], ValueError, "duplicate parameters"),
        (lambda p: [{"params": [p]}, {"params": [p]}], ValueError, "more than one parameter group"),
        (lambda p: [p * 2], ValueError, "can't optimize a non-leaf Tensor"),
        (lambda p: [("a", p), mg.zeros(1)], ValueError, "with/without names"),
        (
            lambda p: [{"params": [("a", p)]}, {"params": [mg.zeros(1)]}],
            ValueError,
            "with/without names",
        ),
        (lambda p: [{"params": [p]}, "x"], TypeError, "param_group must be a dict"),
    ],
    ids=[
        "tensor",
        "empty",
        "array",
        "set",
        "duplicate",
        "two-groups",
        "non-leaf",
        "names",
        "group-names",
        "not-dict",
    ],
)
def test_bad_params_raise_as_torch(params, error, message):
    p = mg.zeros(2, requires_grad=True)
    with pytest.raises(error, match=message):
        optim.Adam(params(p))


def _saved_adam():
    p, q = mg.zeros(2, requires_grad=True), mg.zeros(3, requires_grad=True)
    opt = optim.Adam([p, q], amsgrad=True)
    (p.sum() + q.sum()).backward()
    opt.step()
    return opt.state_dict(), p, q


@pytest.mark.parametrize(
    "corrupt,message",
    [
        (
            lambda sd: sd["param_groups"].append({"params": []}),
            "different number of parameter groups: 2, the optimizer has 1",
        ),
        (
            lambda sd: sd["param_groups"][0]["params"].pop(),
            "group 0 has 1 parameters there, 2 here",
        ),
        (
            lambda sd: sd["state"][1].pop("max_exp_avg_sq"),
            r"state of parameter 1 lacks \['max_exp_avg_sq'\]",
        ),
        (
            lambda sd: sd["state"][0].update(exp_avg=mg.zeros(5)),
            r"'exp_avg' of parameter 0 has shape \(5,\), but the parameter has shape \(2,\)",
        ),
        (lambda sd: sd["state"].update({7: {}}), "entry for parameter 7"),
    ],
    ids=["groups", "group-size", "missing-key", "shape", "unknown-index"],
)
def test_a_bad_state_dict_is_named(corrupt, message):
    saved, p, q = _saved_adam()
    corrupt(saved)
    fresh = optim.Adam([p, q], amsgrad=True)
    with pytest.raises(ValueError, match=message):
        fresh.load_state_dict(saved)
    assert not fresh.state


def test_repr_lists_each_group():
    opt = optim.SGD([mg.zeros(1, requires_grad=True)], lr=0.1)
    text = repr(opt)
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.1" in text


# ---- hyperparameter checks ------------------------------------------------------------------

# (optimizer, argument, what it must be): every number each constructor checks
NUMBER_CASES = [
    *[("SGD", arg, "a non-negative") for arg in ("lr", "momentum", "weight_decay")],
    ("SGD", "dampening", "a"),
    *[
        (name, arg, "a non-negative")
        for name in ("Adam", "AdamW")
        for arg in ("lr", "eps", "weight_decay")
    ],
    *[
        ("RMSprop", arg, "a non-negative")
        for arg in ("lr", "alpha", "eps", "weight_decay", "momentum")
    ],
]
NOT_NUMBERS = ["x", None, [0.1], True, 1j]


def _build(name: str, **kwargs):
    return getattr(optim, name)([mg.zeros(2, requires_grad=True)], **kwargs)


def _torch_error(name: str, **kwargs) -> Exception:
    try:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    except Exception as error:  # the test compares whatever torch raises
        return error
    raise AssertionError(f"torch.optim.{name} accepted {kwargs}")


@pytest.mark.parametrize("value", NOT_NUMBERS, ids=["str", "none", "list", "bool", "complex"])
@pytest.mark.parametrize(
    "name,arg,kind", NUMBER_CASES, ids=[f"{n}-{a}" for n, a, _ in NUMBER_CASES]
)
def test_a_hyperparameter_that_is_not_a_number_is_a_named_type_error(name, arg, kind, value):
    message = f"{name}: {arg} must be {kind} number, got {value!r}"
    with pytest.raises(TypeError) as caught:
        _build(name, **{arg: value})
    assert str(caught.value) == message


@pytest.mark.parametrize("value", [-1, -1e-3, float("-inf")])
@pytest.mark.parametrize(
    "name,arg", [(n, a) for n, a, kind in NUMBER_CASES if kind != "a"], ids=lambda v: str(v)
)
def test_a_negative_hyperparameter_raises_torchs_value_error(name, arg, value):
    theirs = _torch_error(name, **{arg: value})
    with pytest.raises(ValueError) as caught:
        _build(name, **{arg: value})
    assert type(theirs) is ValueError and str(caught.value) == str(theirs)


@pytest.mark.parametrize("name,arg", [("Adam", "lr"), ("RMSprop", "eps"), ("SGD", "lr")])
def test_a_nan_hyperparameter_is_rejected(name, arg):
    """NaN fails every bound (torch's SGD lets a NaN lr through; a NaN step is no use)."""
    with pytest.raises(ValueError, match=r"^Invalid .*: nan$"):
        _build(name, **{arg: float("nan")})


@pytest.mark.parametrize("name", ["SGD", "RMSprop"])
def test_a_numpy_scalar_hyperparameter_is_a_number(name):
    opt = _build(name, lr=np.float32(0.5), momentum=np.int64(0))
    assert opt.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize(
    "betas,message",
    [
        (0.9, "betas must be a pair of numbers in [0, 1), got 0.9"),
        ((0.9,), "betas must be a pair of numbers in [0, 1), got (0.9,)"),
        ((0.9, 0.99, 0.999), "betas must be a pair of numbers in [0, 1), got (0.9, 0.99, 0.999)"),
        ("ab", "betas must be a pair of numbers in [0, 1), got 'ab'"),
        ((0.9, "x"), "betas[1] must be a number in [0, 1), got 'x'"),
        ((None, 0.999), "betas[0] must be a number in [0, 1), got None"),
    ],
    ids=["float", "one", "three", "str", "str-item", "none-item"],
)
def test_betas_that_are_not_a_pair_of_numbers_are_a_named_type_error(name, betas, message):
    with pytest.raises(TypeError) as caught:
        _build(name, betas=betas)
    assert str(caught.value) == f"{name}: {message}"


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize(
    "betas", [(1.0, 0.999), (-0.1, 0.999), (0.9, 1.0), (0.9, -1e-9)], ids=lambda b: str(b)
)
def test_betas_out_of_range_raise_torchs_value_error(name, betas):
    theirs = _torch_error(name, betas=betas)
    with pytest.raises(ValueError) as caught:
        _build(name, betas=betas)
    assert type(theirs) is ValueError and str(caught.value) == str(theirs)


def test_a_list_of_betas_is_kept_as_a_tuple():
    assert _build("Adam", betas=[0.5, 0.6]).param_groups[0]["betas"] == (0.5, 0.6)
