"""Shape ops and indexing against PyTorch, float64 gradcheck, and clear shape errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, layouts, random_array, seeds, shapes
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad.gradcheck import gradcheck


@settings(max_examples=40)
@given(shape=shapes(), data=st.data(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_reshape_matches_torch(device, shape, data, dtype, layout, seed):
    target = tuple(data.draw(st.permutations(shape))) + (1,)
    if target and data.draw(st.booleans()):
        target = (-1,) + target[1:]
    check_parity(
        lambda t: t.reshape(target),
        lambda t: t.reshape(target),
        [random_array(seed, shape, dtype)],
        device,
        layout=layout,
    )


@settings(max_examples=40)
@given(shape=shapes(min_dims=1), data=st.data(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_permute_transpose_match_torch(device, shape, data, dtype, layout, seed):
    dims = tuple(data.draw(st.permutations(range(len(shape)))))
    a, b = (
        data.draw(st.integers(-len(shape), len(shape) - 1)),
        data.draw(st.integers(0, len(shape) - 1)),
    )
    x = random_array(seed, shape, dtype)
    check_parity(lambda t: t.permute(dims), lambda t: t.permute(dims), [x], device, layout=layout)
    check_parity(lambda t: t.transpose(a, b), lambda t: t.transpose(a, b), [x], device)


@settings(max_examples=40)
@given(shape=shapes(min_dims=1), data=st.data(), dtype=float_dtypes, seed=seeds)
def test_flatten_squeeze_unsqueeze_match_torch(device, shape, data, dtype, seed):
    start = data.draw(st.integers(0, len(shape) - 1))
    end = data.draw(st.integers(start, len(shape) - 1))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    new = data.draw(st.integers(-len(shape) - 1, len(shape)))
    x = random_array(seed, shape, dtype)
    for ours, theirs in [
        (lambda t: t.flatten(start, end), lambda t: t.flatten(start, end)),
        (lambda t: t.squeeze(), lambda t: t.squeeze()),
        (lambda t: t.squeeze(dim), lambda t: t.squeeze(dim)),
        (lambda t: t.unsqueeze(new), lambda t: t.unsqueeze(new)),
    ]:
        check_parity(ours, theirs, [x], device)


@settings(max_examples=40)
@given(shape=shapes(max_dims=3), data=st.data(), dtype=float_dtypes, seed=seeds)
def test_expand_matches_torch(device, shape, data, dtype, seed):
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    target = lead + tuple(
        data.draw(st.sampled_from([n, -1] if n != 1 else [1, 3, -1])) for n in shape
    )
    check_parity(
        lambda t: t.expand(target),
        lambda t: t.expand(target),
        [random_array(seed, shape, dtype)],
        device,
    )


@settings(max_examples=40)
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data(), dtype=float_dtypes, seed=seeds)
def test_cat_and_stack_match_torch(device, shape, data, dtype, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    arrays = []
    for i, n in enumerate(sizes):
        s = list(shape)
        s[dim] = n
        arrays.append(random_array(seed + i, tuple(s), dtype))
    check_parity(
        lambda *ts: mg.cat(ts, dim=dim), lambda *ts: torch.cat(ts, dim=dim), arrays, device
    )
    same = [random_array(seed + i, shape, dtype) for i in range(len(sizes))]
    check_parity(
        lambda *ts: mg.stack(ts, dim=dim), lambda *ts: torch.stack(ts, dim=dim), same, device
    )


INDEX_CASES = [
    (1,),
    (slice(None), 2),
    (slice(1, None, 2), Ellipsis, None),
    (-1, slice(1, None)),
    ([0, 0, 2, 0],),
    (slice(None), [1, 1, 3]),
    ([[0, 1], [1, 0]], [2, 2]),
    (Ellipsis, [0, 1, 0]),
]


@pytest.mark.parametrize("key", INDEX_CASES, ids=[str(k) for k in INDEX_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_indexing_matches_torch_with_repeated_indices(device, key, dtype):
    x = random_array(0, (3, 4, 2), dtype)
    check_parity(lambda t: t[key], lambda t: t[key], [x], device)


def test_boolean_mask_and_index_tensor_match_torch(device):
    x = random_array(1, (3, 4), np.float64)
    mask = x > 0
    check_parity(
        lambda t: t[mg.tensor(mask, device=device)], lambda t: t[torch.tensor(mask)], [x], device
    )
    idx = np.array([2, 0, 2, 2])
    check_parity(
        lambda t: t[mg.tensor(idx, device=device)], lambda t: t[torch.tensor(idx)], [x], device
    )
    rows = np.array([True, False, True])
    check_parity(lambda t: t[rows, [1, 1]], lambda t: t[torch.tensor(rows), [1, 1]], [x], device)


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.reshape(4, 3)[[0, 0, 3]],
        lambda t: t.permute(1, 0)[1:, ::2],
        lambda t: mg.cat([t, t * 2], dim=1),
        lambda t: mg.stack([t, t], dim=0).sum(dim=0),
        lambda t: t.unsqueeze(0).expand(2, 3, 4),
    ],
)
def test_shape_ops_gradcheck(device, fn):
    x = mg.tensor(random_array(3, (3, 4), np.float64), device=device, requires_grad=True)
    assert gradcheck(fn, [x])


def test_one_hot_matches_torch(device):
    labels = np.array([[0, 2], [1, 2]])
    ours = F.one_hot(mg.tensor(labels, device=device), num_classes=4)
    theirs = TF.one_hot(torch.tensor(labels), num_classes=4)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(
        F.one_hot(mg.tensor(labels, device=device)).numpy(),
        TF.one_hot(torch.tensor(labels)).numpy(),
    )


def test_one_hot_out_of_range_is_clear():
    """Checked on the CPU only: on the GPU the check would sync every step."""
    with pytest.raises(ValueError, match=r"\[0, 3\).*\[0, 5\]"):
        F.one_hot(mg.tensor([0, 5]), num_classes=3)


def test_shape_errors_name_both_shapes(device):
    x = mg.ones(2, 3, device=device)
    with pytest.raises(
        ValueError, match=r"shape \(4, 2\) is invalid for a tensor of shape \(2, 3\)"
    ):
        x.reshape(4, 2)
    with pytest.raises(
        ValueError, match=r"tensor 0 has shape \(2, 3\), tensor 1 has shape \(3, 2\)"
    ):
        mg.cat([x, mg.ones(3, 2, device=device)], dim=0)
    with pytest.raises(ValueError, match=r"tensor 0 has \(2, 3\), tensor 1 has \(2, 4\)"):
        mg.stack([x, mg.ones(2, 4, device=device)])
    with pytest.raises(ValueError, match=r"size 3 of dim 1 of shape \(2, 3\) cannot expand to 4"):
        x.expand(2, 4)
    with pytest.raises(IndexError, match=r"shape \(2, 3\)"):
        x[5]


def test_cat_of_zero_dim_tensors_is_refused_like_torch(device):
    with pytest.raises(ValueError, match=r"zero-dimensional tensor \(at position 0\)"):
        mg.cat([mg.tensor(1.0, device=device), mg.tensor(2.0, device=device)])
