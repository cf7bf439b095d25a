"""Module against torch.nn.Module on one model built in both: registration, the named_* orders,
shared parameters, (non-)persistent buffers, state dicts and load_state_dict's errors and
return value, train/eval, in-place to(), requires_grad_, apply, zero_grad, hooks, repr."""

import re

import numpy as np
import pytest
import torch

import layers as L
import minigrad as mg
from layers import Parameter
from minigrad import optim


def build(nn, zeros):
    """The same model in ``layers`` (nn=layers, zeros=mg.zeros) or ``torch.nn``: nested
    containers, a shared submodule, a tied parameter, a None parameter, buffers persistent
    or not, and a parameter registered after the submodules."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(3)
            self.register_buffer("scale", zeros(3) + 2, persistent=False)

        def forward(self, x):
            return self.bn(self.conv(x)) * 1

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
            self.block = Block()
            self.heads = nn.ModuleDict({"b": nn.Linear(3, 4), "a": nn.Linear(3, 2)})
            self.extra = nn.ModuleList([nn.Linear(2, 2), nn.Identity()])
            self.shared = self.heads["a"]
            self.gain = nn.Parameter(zeros(1) + 1)
            self.register_parameter("absent", None)
            self.tied = self.extra[0].weight
            self.register_buffer("steps", zeros(1))
            self.register_buffer("cache", zeros(2), persistent=False)
            self.register_buffer("nothing", None)

        def forward(self, x):
            x = self.block(self.stem(x)).mean((2, 3))
            return self.extra[1](self.extra[0](self.shared(x))) * self.gain

    return Net()


def pair():
    """The model in both frameworks with the same weights (torch's copied into ours)."""
    theirs = build(torch.nn, torch.zeros)
    ours = build(L, mg.zeros)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def names(items):
    return [name for name, _ in items]


def test_named_orders_match_torch():
    ours, theirs = pair()
    assert names(ours.named_parameters()) == names(theirs.named_parameters())
    assert names(ours.named_buffers()) == names(theirs.named_buffers())
    assert names(ours.named_children()) == names(theirs.named_children())
    assert names(ours.named_modules()) == names(theirs.named_modules())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [type(m).__name__ for m in ours.modules()] == [
        type(m).__name__ for m in theirs.modules()
    ]
    assert [type(m).__name__ for m in ours.children()] == [
        type(m).__name__ for m in theirs.children()
    ]
    for recurse in (True, False):
        assert len(list(ours.parameters(recurse))) == len(list(theirs.parameters(recurse)))
        assert len(list(ours.buffers(recurse))) == len(list(theirs.buffers(recurse)))
    assert names(ours.named_parameters(prefix="m")) == names(theirs.named_parameters(prefix="m"))
    for dedup in (True, False):
        assert names(ours.named_parameters(remove_duplicate=dedup)) == names(
            theirs.named_parameters(remove_duplicate=dedup)
        )


def test_shared_parameters_are_counted_once():
    ours, theirs = pair()
    params = list(ours.parameters())
    assert len({id(p) for p in params}) == len(params)
    assert sum(p.numel() for p in params) == sum(p.numel() for p in theirs.parameters())
    assert ours.tied is ours.extra[0].weight
    assert ours.shared is ours.heads["a"]
    state = ours.state_dict()
    assert "tied" in state and "extra.0.weight" in state and "shared.weight" in state


def test_buffers_persistent_or_not():
    ours, _ = pair()
    assert "cache" in names(ours.named_buffers()) and "cache" not in ours.state_dict()
    assert "block.scale" in names(ours.named_buffers()) and "block.scale" not in ours.state_dict()
    assert "nothing" not in names(ours.named_buffers())
    ours.register_buffer("cache", mg.ones(2))  # re-registered persistent
    assert "cache" in ours.state_dict()


def test_forward_matches_torch():
    ours, theirs = pair()
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        np.testing.assert_allclose(
            ours(mg.tensor(x)).detach().numpy(),
            theirs(torch.tensor(x)).detach().numpy(),
            rtol=1e-5,
            atol=1e-6,
        )


def test_state_dict_values_share_the_module_arrays():
    ours, _ = pair()
    state = ours.state_dict()
    assert not state["gain"].requires_grad
    state["gain"].data[...] = 5
    assert ours.gain.item() == 5
    assert ours.state_dict(keep_vars=True)["gain"] is ours.gain


def test_load_state_dict_copies_in_place_from_every_kind_of_value(device):
    ours, theirs = pair()
    ours.to(device)
    params = {name: p for name, p in ours.named_parameters()}
    source = {k: v.detach() * 0 + 3 for k, v in theirs.state_dict().items()}
    kinds = [
        lambda v: v,
        lambda v: v.numpy(),
        lambda v: mg.tensor(v.numpy()),
        lambda v: mg.tensor(v.numpy()).to("gpu"),
    ]
    for kind in kinds:
        ours.load_state_dict({k: kind(v) for k, v in source.items()})
        assert {name: p for name, p in ours.named_parameters()} == params
        assert all(p.device == mg.backend.canonical_device(device) for p in params.values())
        np.testing.assert_array_equal(ours.gain.detach().numpy(), [3.0])
        assert ours.block.bn.num_batches_tracked.dtype == np.int64


def test_load_state_dict_casts_to_the_module_dtype():
    ours, theirs = pair()
    ours.double()
    ours.load_state_dict(theirs.state_dict())
    assert ours.gain.dtype == np.float64
    np.testing.assert_array_equal(
        ours.heads["b"].weight.detach().numpy(), theirs.heads.b.weight.detach().double().numpy()
    )


def _as_ours(message: str) -> str:
    """torch's error text with its shapes written as ours: torch.Size([5, 1]) -> (5, 1)."""

    def shape(match):
        dims = [d for d in match.group(1).split(", ") if d]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    return re.sub(r"torch\.Size\(\[(.*?)\]\)", shape, message)


def _bad_state(state: dict, with_shapes: bool) -> dict:
    """Drop keys, add keys out of module order (a child's key before a root key), and
    optionally give two tensors the wrong shapes."""
    bad = dict(state)
    for key in ("block.bn.running_var", "gain", "heads.a.bias"):
        del bad[key]
    bad = {"heads.c.weight": torch.zeros(1), "extra.0.scale": torch.zeros(1), **bad}
    bad["bogus"] = torch.zeros(1)
    bad["block.conv.weight.extra"] = torch.zeros(1)
    if with_shapes:
        bad["stem.0.weight"] = torch.zeros(5, 1, 1, 1)
        bad["block.bn.num_batches_tracked"] = torch.zeros(2, dtype=torch.long)
    return bad


@pytest.mark.parametrize("with_shapes", [False, True])
def test_load_state_dict_errors_are_torchs(with_shapes):
    """The same bad dict gives torch's message: every missing and unexpected key, in
    torch's order, and every size mismatch."""
    ours, theirs = pair()
    bad = _bad_state(theirs.state_dict(), with_shapes)
    with pytest.raises(RuntimeError) as their_error:
        theirs.load_state_dict(dict(bad))
    with pytest.raises(RuntimeError) as our_error:
        ours.load_state_dict(dict(bad))
    assert str(our_error.value) == _as_ours(str(their_error.value))
    message = str(our_error.value)
    assert '"gain", "block.bn.running_var", "heads.a.bias"' in message
    assert '"bogus", "block.conv.weight.extra", "heads.c.weight", "extra.0.scale"' in message
    if with_shapes:
        assert "size mismatch for stem.0.weight: copying a param with shape (5, 1, 1, 1)" in message
        assert "size mismatch for block.bn.num_batches_tracked" in message


def test_load_state_dict_non_strict_returns_torchs_key_lists():
    ours, theirs = pair()
    bad = _bad_state(theirs.state_dict(), with_shapes=False)
    before = ours.heads["b"].weight.detach().numpy().copy()
    result = ours.load_state_dict(dict(bad), strict=False)
    expected = theirs.load_state_dict(dict(bad), strict=False)
    assert result.missing_keys == expected.missing_keys
    assert result.unexpected_keys == expected.unexpected_keys
    missing, unexpected = result
    assert (missing, unexpected) == (expected.missing_keys, expected.unexpected_keys)
    np.testing.assert_array_equal(ours.heads["b"].weight.detach().numpy(), before)


def test_load_state_dict_shape_mismatch_raises_even_when_not_strict():
    ours, theirs = pair()
    state = theirs.state_dict()
    state["gain"] = torch.zeros(2)
    with pytest.raises(RuntimeError, match="size mismatch for gain"):
        ours.load_state_dict(state, strict=False)
    with pytest.raises(RuntimeError, match="size mismatch for gain"):
        theirs.load_state_dict(state, strict=False)


def test_load_state_dict_bad_value_type():
    ours, theirs = pair()
    state = dict(theirs.state_dict())
    state["gain"] = [1.0]
    with pytest.raises(TypeError, match="value for 'gain' must be a Tensor, a numpy/cupy array"):
        ours.load_state_dict(state)


def test_failed_load_changes_nothing():
    ours, theirs = pair()
    before = {k: v.numpy().copy() for k, v in ours.state_dict().items()}
    state = {k: v * 0 + 7 for k, v in theirs.state_dict().items()}
    state["stem.0.bias"] = torch.zeros(9)
    with pytest.raises(RuntimeError):
        ours.load_state_dict(state)
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_train_eval_propagate_as_torch():
    ours, theirs = pair()
    ours.eval()
    assert not any(m.training for m in ours.modules())
    ours.block.train()
    theirs.eval()
    theirs.block.train()
    assert [m.training for m in ours.modules()] == [m.training for m in theirs.modules()]
    assert ours.train() is ours and all(m.training for m in ours.modules())
    with pytest.raises(ValueError, match="mode must be a bool"):
        ours.train("no")


def test_train_calls_overridden_train_of_children():
    calls = []

    class Frozen(L.BatchNorm2d):
        def train(self, mode=True):
            calls.append(mode)
            return super().train(False)

    model = L.Sequential(L.Conv2d(1, 1, 1), Frozen(1))
    model.train()
    assert calls == [True] and not model[1].training and model[0].training
    model.eval()
    assert calls == [True, False]


def test_to_in_place_keeps_parameter_identity(device):
    ours, _ = pair()
    x = mg.tensor(np.ones((1, 1, 3, 3), np.float32))
    ours(x).sum().backward()
    params = list(ours.parameters())  # an optimizer's view, built before the move
    ids, arrays = [id(p) for p in params], [p.data for p in params]
    assert ours.to(mg.float64) is ours
    assert [id(p) for p in ours.parameters()] == ids
    assert all(p.dtype == np.float64 for p in params)
    assert all(p.grad.dtype == np.float64 for p in params if p.grad is not None)
    assert all(p.data is not a for p, a in zip(params, arrays, strict=True))
    assert ours.block.bn.num_batches_tracked.dtype == np.int64  # integers are not cast
    assert ours.block.scale.dtype == np.float64  # non-persistent buffers move too
    ours.to(device)
    assert all(p.device == mg.backend.canonical_device(device) for p in params)
    assert all(b.device == mg.backend.canonical_device(device) for b in ours.buffers())
    with_grad = [p for p in params if p.grad is not None]
    assert len(with_grad) == len(params) - 2  # heads.b is not used in forward
    assert all(p.grad.device == mg.backend.canonical_device(device) for p in with_grad)
    for p in with_grad:  # an SGD step through the old list reaches the model
        p.data -= 0.5 * p.grad.data
    assert ours.gain.item() == pytest.approx(1 - 0.5 * float(params[0].grad.item()))
    out = ours(mg.tensor(np.ones((1, 1, 3, 3)), device=device))
    assert out.dtype == np.float64 and out.device == mg.backend.canonical_device(device)
    ours.to(device="cpu", dtype=mg.float32)
    assert all(p.device == "cpu" and p.dtype == np.float32 for p in params)
    assert [id(p) for p in ours.parameters()] == ids


def test_optimizer_built_before_to_keeps_working(device):
    """SGD with momentum over the parameters, built before the module moves and casts."""
    model, theirs = L.Linear(3, 2), torch.nn.Linear(3, 2)
    model.load_state_dict(theirs.state_dict())
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    their_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    model.to(mg.float64).to(device)
    theirs.double()
    x = np.random.default_rng(0).standard_normal((4, 3))
    for _ in range(3):
        opt.zero_grad()
        their_opt.zero_grad()
        (model(mg.tensor(x, device=device)) ** 2).sum().backward()
        (theirs(torch.tensor(x)) ** 2).sum().backward()
        opt.step()
        their_opt.step()
    for (name, p), (_, t) in zip(model.named_parameters(), theirs.named_parameters(), strict=True):
        assert p.device == mg.backend.canonical_device(device)
        np.testing.assert_allclose(p.detach().numpy(), t.detach().numpy(), rtol=1e-12, err_msg=name)


def test_to_shortcuts_and_errors():
    ours, _ = pair()
    assert ours.double().gain.dtype == np.float64
    assert ours.float().gain.dtype == np.float32
    assert ours.cuda().gain.device == "gpu"
    assert ours.cpu().gain.device == "cpu"
    reference = mg.zeros(1, dtype=mg.float64)
    assert ours.to(reference).gain.dtype == np.float64
    with pytest.raises(TypeError, match="only accepts floating point dtypes, got int64"):
        ours.to(mg.int64)
    with pytest.raises(mg.DeviceError, match="device must be 'cpu', 'gpu' or 'cuda'"):
        ours.to("tpu")


def test_requires_grad_():
    ours, _ = pair()
    assert ours.requires_grad_(False) is ours
    assert not any(p.requires_grad for p in ours.parameters())
    ours.block.requires_grad_()
    assert [n for n, p in ours.named_parameters() if p.requires_grad] == [
        "block.conv.weight",
        "block.bn.weight",
        "block.bn.bias",
    ]


def test_apply_visits_children_first_as_torch():
    ours, theirs = pair()
    seen_ours, seen_theirs = [], []
    assert ours.apply(lambda m: seen_ours.append(type(m).__name__)) is ours
    theirs.apply(lambda m: seen_theirs.append(type(m).__name__))
    assert seen_ours == seen_theirs
    assert seen_ours[-1] == "Net" and seen_ours[0] == "Conv2d"


def test_apply_can_reinitialize():
    model = L.Sequential(L.Linear(3, 3), L.ReLU(), L.Linear(3, 1))

    def zero_linear(m):
        if isinstance(m, L.Linear):
            mg.init.zeros_(m.weight)

    model.apply(zero_linear)
    assert all(not np.any(m.weight.detach().numpy()) for m in model if isinstance(m, L.Linear))


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    ours, theirs = pair()
    ours(mg.ones(1, 1, 3, 3)).sum().backward()
    theirs(torch.ones(1, 1, 3, 3)).sum().backward()
    grads = {n: p.grad for n, p in ours.named_parameters()}
    assert grads["heads.b.weight"] is None and grads["gain"] is not None
    ours.zero_grad(set_to_none=set_to_none)
    theirs.zero_grad(set_to_none=set_to_none)
    for (name, p), (_, t) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        if set_to_none:
            assert p.grad is None and t.grad is None, name
        elif grads[name] is None:
            assert p.grad is None and t.grad is None, name
        else:
            assert p.grad is grads[name], name  # zeroed in place
            assert not np.any(p.grad.numpy()) and not t.grad.any(), name
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_forward_hooks_and_pre_hooks():
    layer = L.Linear(2, 2)
    calls = []

    def pre(module, args):
        calls.append(("pre", module))
        return args[0] * 0  # replaces the input (a single value becomes a 1-tuple)

    def post(module, args, output):
        calls.append(("post", args[0].shape, output.shape))
        return output + 1

    x = mg.ones(3, 2)
    pre_handle = layer.register_forward_pre_hook(pre)
    post_handle = layer.register_forward_hook(post)
    y = layer(x)
    expected = np.broadcast_to(layer.bias.detach().numpy() + 1, (3, 2))
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-6)
    assert calls == [("pre", layer), ("post", (3, 2), (3, 2))]
    pre_handle.remove()
    np.testing.assert_allclose(layer(x).detach().numpy(), layer(x * 1).detach().numpy())
    post_handle.remove()
    post_handle.remove()  # removing twice is harmless, as in torch
    np.testing.assert_allclose(
        layer(x).detach().numpy(), L.Linear.forward(layer, x).detach().numpy()
    )
    assert len(calls) == 4  # pre and post once, then post twice, then none
    with layer.register_forward_hook(lambda m, a, o: o * 0):
        assert not np.any(layer(x).detach().numpy())
    assert np.any(layer(x).detach().numpy())


def test_hooks_run_in_registration_order_and_see_each_other():
    layer = L.Identity()
    layer.register_forward_hook(lambda m, a, o: o * 2)
    layer.register_forward_hook(lambda m, a, o: o + 1)
    layer.register_forward_pre_hook(lambda m, a: (a[0] + 1,))
    layer.register_forward_pre_hook(lambda m, a: None)
    assert layer(mg.tensor([1.0])).item() == (1 + 1) * 2 + 1


def test_registration_rules_match_torch():
    ours, theirs = L.Linear(2, 2), torch.nn.Linear(2, 2)
    for model in (ours, theirs):
        model.bias = None  # a registered parameter may be set to None
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'weight'"):
        ours.weight = mg.zeros(2, 2)
    with pytest.raises(TypeError):
        theirs.weight = torch.zeros(2, 2)
    with pytest.raises(KeyError, match="can't contain '.'"):
        ours.register_buffer("a.b", mg.zeros(1))
    with pytest.raises(TypeError, match="cannot assign list as buffer 'x'"):
        ours.register_buffer("x", [1])
    with pytest.raises(TypeError, match="cannot assign int as parameter 'p'"):
        ours.register_parameter("p", 1)
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        ours.add_module("m", 1)
    for model, make in ((ours, mg.zeros), (theirs, torch.zeros)):
        with pytest.raises(KeyError, match="attribute 'weight' already exists"):
            model.register_buffer("weight", make(1))
        with pytest.raises(KeyError, match="attribute 'forward' already exists"):
            model.register_parameter("forward", None)


def test_attribute_assignment_and_deletion():
    model = L.Module()
    model.w = Parameter(mg.zeros(2))
    model.child = L.ReLU()
    model.register_buffer("b", mg.zeros(1))
    model.b = mg.ones(1)  # a Tensor assigned to a buffer name replaces the buffer
    assert model.b.item() == 1 and "b" in model.state_dict()
    model.w = L.Identity()  # a module replaces the parameter of that name
    assert "w" not in dict(model.named_parameters()) and isinstance(model.w, L.Identity)
    del model.child
    assert not hasattr(model, "child") and "child" not in dict(model.named_children())
    model.plain = 3
    assert model.plain == 3 and "plain" in dir(model) and "b" in dir(model)
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'missing'"):
        _ = model.missing


def test_assignment_before_init_is_an_error():
    class Broken(L.Module):
        def __init__(self):
            self.w = Parameter(mg.zeros(1))

    with pytest.raises(AttributeError, match="cannot assign parameter before Module.__init__"):
        Broken()


def test_parameter_is_a_tensor_sharing_its_source():
    t = mg.zeros(3)
    p = Parameter(t)
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert p.data is t.data
    assert not Parameter(t, requires_grad=False).requires_grad
    assert Parameter().shape == (0,)
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not isinstance(p * 2, Parameter)


def test_forward_not_implemented():
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        L.Module()(1)


def test_repr_matches_torch():
    ours, theirs = pair()
    assert repr(ours) == repr(theirs)
