"""minigrad.init against torch.nn.init, and the layers' default initialization against
torch.nn's: bounds and moments over large tensors (ours and torch's samples), gains, fans,
modes, seeding, both devices, and errors."""

import math

import numpy as np
import pytest
import torch

import layers as L
import minigrad as mg
from minigrad import init

NONLINEARITIES = [
    ("linear", None),
    ("conv1d", None),
    ("conv2d", None),
    ("conv3d", None),
    ("conv_transpose1d", None),
    ("conv_transpose2d", None),
    ("conv_transpose3d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("leaky_relu", 0),
    ("leaky_relu", 3),
    ("leaky_relu", math.sqrt(5)),
    ("selu", None),
]


@pytest.mark.parametrize("nonlinearity, param", NONLINEARITIES)
def test_calculate_gain_matches_torch(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    "nonlinearity, param", [("softplus", None), ("leaky_relu", True), ("leaky_relu", "0.1")]
)
def test_calculate_gain_errors_as_torch(nonlinearity, param):
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(nonlinearity, param)
    with pytest.raises(ValueError, match=repr(nonlinearity) if param is None else "negative_slope"):
        init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize(
    "shape", [(3, 5), (4, 2, 3), (8, 3, 3, 3), (2, 6, 1, 2, 3), (0, 4), (5, 0, 3, 3)]
)
def test_fans_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init._calculate_fan_in_and_fan_out(mg.empty(shape)) == expected


@pytest.mark.parametrize("shape", [(), (4,)])
def test_fans_need_two_dims(shape):
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(mg.empty(shape))


def _samples(fill_ours, fill_theirs, shape, device="cpu", dtype=np.float32):
    """Our and torch's samples of one initializer on tensors of ``shape``."""
    mg.manual_seed(0)
    torch.manual_seed(0)
    ours = mg.empty(shape, dtype=dtype, device=device)
    assert fill_ours(ours) is ours
    theirs = torch.empty(shape, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    fill_theirs(theirs)
    return ours.numpy(), theirs.numpy()


def _assert_same_distribution(ours, theirs, bound=None, std=None, mean=0.0):
    """Both sample sets within ``bound`` and close to it, with the expected mean and std
    (within 2%), and ours within 2% of torch's."""
    assert ours.dtype == theirs.dtype
    for sample in (ours, theirs):
        if bound is not None:
            assert np.abs(sample - mean).max() <= bound * (1 + 1e-6)
            assert np.abs(sample - mean).max() >= 0.99 * bound
        if std is not None:
            assert sample.std() == pytest.approx(std, rel=0.02)
        assert abs(sample.mean() - mean) < 5 * sample.std() / math.sqrt(sample.size) + 1e-12
    assert ours.std() == pytest.approx(theirs.std(), rel=0.02)


SHAPE = (256, 64, 3, 3)  # fan_in 576, fan_out 2304, 147456 values
FAN_IN, FAN_OUT = 64 * 9, 256 * 9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_and_normal(device, dtype):
    ours, theirs = _samples(
        lambda t: init.uniform_(t, -2, 3),
        lambda t: torch.nn.init.uniform_(t, -2, 3),
        SHAPE,
        device,
        dtype,
    )
    assert ours.min() >= -2 and ours.max() < 3
    _assert_same_distribution(ours, theirs, bound=2.5, std=5 / math.sqrt(12), mean=0.5)
    ours, theirs = _samples(
        lambda t: init.normal_(t, 1, 0.5),
        lambda t: torch.nn.init.normal_(t, 1, 0.5),
        SHAPE,
        device,
        dtype,
    )
    _assert_same_distribution(ours, theirs, std=0.5, mean=1.0)


def test_constants(device):
    t = mg.empty((3, 4), device=device)
    assert init.zeros_(t) is t and not np.any(t.numpy())
    assert np.all(init.ones_(t).numpy() == 1)
    assert np.all(init.constant_(t, -2.5).numpy() == -2.5)


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier(device, gain):
    ours, theirs = _samples(
        lambda t: init.xavier_uniform_(t, gain),
        lambda t: torch.nn.init.xavier_uniform_(t, gain),
        SHAPE,
        device,
    )
    bound = gain * math.sqrt(6 / (FAN_IN + FAN_OUT))
    _assert_same_distribution(ours, theirs, bound=bound, std=bound / math.sqrt(3))
    ours, theirs = _samples(
        lambda t: init.xavier_normal_(t, gain),
        lambda t: torch.nn.init.xavier_normal_(t, gain),
        SHAPE,
        device,
    )
    _assert_same_distribution(ours, theirs, std=gain * math.sqrt(2 / (FAN_IN + FAN_OUT)))


@pytest.mark.parametrize(
    "a, mode, nonlinearity",
    [
        (0, "fan_in", "leaky_relu"),
        (math.sqrt(5), "fan_in", "leaky_relu"),
        (0.1, "fan_out", "leaky_relu"),
        (0, "fan_out", "relu"),
        (0, "fan_in", "tanh"),
        (0, "FAN_IN", "linear"),
    ],
)
def test_kaiming(device, a, mode, nonlinearity):
    kwargs = dict(a=a, mode=mode, nonlinearity=nonlinearity)
    fan = FAN_IN if mode.lower() == "fan_in" else FAN_OUT
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    ours, theirs = _samples(
        lambda t: init.kaiming_uniform_(t, **kwargs),
        lambda t: torch.nn.init.kaiming_uniform_(t, **kwargs),
        SHAPE,
        device,
    )
    _assert_same_distribution(ours, theirs, bound=math.sqrt(3) * std, std=std)
    ours, theirs = _samples(
        lambda t: init.kaiming_normal_(t, **kwargs),
        lambda t: torch.nn.init.kaiming_normal_(t, **kwargs),
        SHAPE,
        device,
    )
    _assert_same_distribution(ours, theirs, std=std)


def test_kaiming_errors_and_empty_tensors():
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_uniform_(mg.empty((3, 3)), mode="fan_avg")
    for fill, theirs in (
        (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_),
        (init.kaiming_normal_, torch.nn.init.kaiming_normal_),
    ):
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            theirs(torch.empty(0, 3))
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            fill(mg.empty((0, 3)))


def test_initializers_follow_manual_seed(device):
    def draw():
        mg.manual_seed(42)
        return [
            init.kaiming_uniform_(mg.empty((4, 3), device=device)).numpy(),
            init.normal_(mg.empty((4, 3), device=device)).numpy(),
            L.Conv2d(2, 3, 3, device=device).weight.detach().numpy(),
        ]

    first, second = draw(), draw()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    mg.manual_seed(43)
    assert not np.array_equal(L.Conv2d(2, 3, 3, device=device).weight.detach().numpy(), first[2])


def _default_weights(make_ours, make_theirs):
    mg.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = make_ours(), make_theirs()
    return ours, theirs


@pytest.mark.parametrize(
    "name, args, fan_in",
    [
        ("Conv2d", (64, 64, 3), 64 * 9),
        ("Conv2d", (32, 64, (3, 5), 1, 0, 1, 4), 8 * 15),  # grouped: in_channels / groups
        ("ConvTranspose2d", (64, 32, 4), 32 * 16),  # weight (in, out, kh, kw): fan_in is out*k*k
        ("Linear", (500, 300), 500),
    ],
)
def test_default_weight_init_matches_torch(device, name, args, fan_in):
    """kaiming_uniform_(a=sqrt(5)): U(-b, b), b = sqrt(3) * sqrt(2 / (1 + 5)) / sqrt(fan_in)."""
    ours, theirs = _default_weights(
        lambda: getattr(L, name)(*args, device=device), lambda: getattr(torch.nn, name)(*args)
    )
    bound = math.sqrt(3) * math.sqrt(2 / (1 + 5)) / math.sqrt(fan_in)
    assert bound == pytest.approx(1 / math.sqrt(fan_in))
    assert ours.weight.shape == tuple(theirs.weight.shape)
    _assert_same_distribution(
        ours.weight.detach().numpy(),
        theirs.weight.detach().numpy(),
        bound=bound,
        std=bound / math.sqrt(3),
    )
    b_ours, b_theirs = ours.bias.detach().numpy(), theirs.bias.detach().numpy()
    assert np.abs(b_ours).max() <= bound and np.abs(b_theirs).max() <= bound


def test_default_bias_init_matches_torch():
    """The bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)): moments over a wide layer."""
    ours, theirs = _default_weights(lambda: L.Linear(16, 40000), lambda: torch.nn.Linear(16, 40000))
    _assert_same_distribution(
        ours.bias.detach().numpy(),
        theirs.bias.detach().numpy(),
        bound=0.25,
        std=0.25 / math.sqrt(3),
    )
    ours, theirs = _default_weights(
        lambda: L.Conv2d(4, 20000, 2), lambda: torch.nn.Conv2d(4, 20000, 2)
    )
    _assert_same_distribution(
        ours.bias.detach().numpy(),
        theirs.bias.detach().numpy(),
        bound=0.25,
        std=0.25 / math.sqrt(3),
    )


@pytest.mark.parametrize("name", ["BatchNorm2d", "InstanceNorm2d"])
def test_default_norm_init_matches_torch(name):
    ours, theirs = getattr(L, name)(5, affine=True), getattr(torch.nn, name)(5, affine=True)
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].numpy(), value.numpy(), err_msg=key)


def test_reset_parameters_redraws():
    layer = L.Linear(50, 50)
    before = layer.weight.detach().numpy().copy()
    weight = layer.weight
    layer.reset_parameters()
    assert layer.weight is weight
    assert not np.array_equal(before, layer.weight.detach().numpy())
    assert np.abs(layer.weight.detach().numpy()).max() <= 1 / math.sqrt(50)


def test_float64_layers_draw_float64():
    layer = L.Conv2d(8, 8, 3, dtype=np.float64)
    assert layer.weight.dtype == layer.bias.dtype == np.float64
    values = layer.weight.detach().numpy()
    assert np.abs(values).max() <= 1 / math.sqrt(72)
    # drawn in float64, not float32 values widened
    assert not np.array_equal(values, values.astype(np.float32).astype(np.float64))
