"""matmul (1-D, 2-D, batched, broadcast) and linear against PyTorch."""

import numpy as np
import pytest
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, layouts, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad.gradcheck import gradcheck


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    a_batch = tuple(draw(st.sampled_from([b, 1])) for b in batch)
    b_batch = tuple(draw(st.sampled_from([b, 1])) for b in batch)[
        draw(st.integers(0, len(batch))) :
    ]
    a_shape = draw(st.sampled_from([(k,), a_batch + (n, k)]))
    b_shape = draw(st.sampled_from([(k,), b_batch + (k, m)]))
    return a_shape, b_shape, k


@settings(max_examples=40)
@given(case=matmul_shapes(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_matmul_matches_torch(device, case, dtype, layout, seed):
    a_shape, b_shape, k = case
    a, b = random_array(seed, a_shape, dtype), random_array(seed + 1, b_shape, dtype)
    check_parity(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], device, reduction=k, layout=layout)


@settings(max_examples=25)
@given(
    batch=st.lists(st.integers(1, 3), max_size=2),
    fin=st.integers(1, 5),
    fout=st.integers(1, 5),
    bias=st.booleans(),
    dtype=float_dtypes,
    seed=seeds,
)
def test_linear_matches_torch(device, batch, fin, fout, bias, dtype, seed):
    arrays = [random_array(seed, (*batch, fin), dtype), random_array(seed + 1, (fout, fin), dtype)]
    if bias:
        arrays.append(random_array(seed + 2, (fout,), dtype))
    check_parity(F.linear, TF.linear, arrays, device, reduction=fin)


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 2, 3), (3, 4)), ((1, 2, 3), (2, 3, 2))],
)
def test_matmul_gradcheck(device, a_shape, b_shape):
    a = mg.tensor(random_array(0, a_shape, np.float64), device=device, requires_grad=True)
    b = mg.tensor(random_array(1, b_shape, np.float64), device=device, requires_grad=True)
    assert gradcheck(lambda x, y: x @ y, [a, b])


def test_matmul_shape_mismatch_names_both_shapes(device):
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\) cannot be multiplied \(3 != 4\)"):
        mg.ones(2, 3, device=device) @ mg.ones(4, 5, device=device)


def test_matmul_refuses_mixed_dtypes_like_torch(device):
    with pytest.raises(TypeError, match="float32 and float64"):
        mg.ones(2, 3, device=device) @ mg.ones(3, 2, dtype=mg.float64, device=device)
