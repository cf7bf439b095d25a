"""The CPU stand-in for CuPy refuses host/device mixing where CuPy does, and counts transfers."""

import copy

import numpy as np
import pytest

from minigrad.testing import fake_cupy as xp


@pytest.fixture
def x():
    """A 2x3 float32 device array holding 0..5."""
    return xp.arange(6, dtype=xp.float32).reshape(2, 3)


def host(a):
    """The values of a device array, without counting a transfer."""
    return a._a


# --------------------------------------------------------------------------- refusing NumPy


@pytest.mark.parametrize("convert", [np.asarray, np.array, np.ascontiguousarray])
def test_implicit_conversion_to_numpy_raises(x, convert):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        convert(x)


def test_nested_in_a_list_it_is_not_converted_either(x):
    with pytest.raises(TypeError):
        np.array([x, x])


@pytest.mark.parametrize(
    "call",
    [np.exp, np.sum, np.mean, lambda a: np.add(a, a), lambda a: np.maximum(a, 0.0)],
    ids=["exp", "sum", "mean", "add", "maximum"],
)
def test_numpy_functions_on_device_arrays_raise(x, call):
    with pytest.raises(TypeError, match="device array"):
        call(x)


def test_numpy_function_error_names_the_function(x):
    with pytest.raises(TypeError, match=r"numpy\.exp.*xp\.exp"):
        np.exp(x)


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a * b,
        lambda a, b: a / b,
        lambda a, b: a**b,
        lambda a, b: a @ b.T,
        lambda a, b: a < b,
        lambda a, b: a == b,
        lambda a, b: a != b,
    ],
    ids=["add", "sub", "mul", "div", "pow", "matmul", "lt", "eq", "ne"],
)
@pytest.mark.parametrize("device_on_left", [True, False])
def test_operators_mixing_with_numpy_arrays_raise(x, op, device_on_left):
    other = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(TypeError):
        if device_on_left:
            op(x, other)
        else:
            op(other, x)


def test_operator_error_explains_the_host_array(x):
    with pytest.raises(TypeError, match=r"numpy\.ndarray \(host memory\)"):
        x + np.ones(3, dtype=np.float32)


def test_inplace_operators_mixing_with_numpy_arrays_raise(x):
    other = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(TypeError):
        x += other
    with pytest.raises(TypeError):
        other += x
    np.testing.assert_array_equal(other, 1.0)


def test_zero_d_numpy_arrays_are_host_arrays_too(x):
    with pytest.raises(TypeError):
        x * np.array(2.0, dtype=np.float32)


def test_device_functions_refuse_numpy_arrays(x):
    with pytest.raises(TypeError, match=r"cupy\.add"):
        xp.add(x, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError):
        xp.concatenate([x, np.ones((1, 3), dtype=np.float32)])
    with pytest.raises(TypeError):
        x.dot(np.ones(3, dtype=np.float32))


def test_numpy_array_out_argument_is_refused(x):
    with pytest.raises(TypeError):
        xp.exp(x, out=np.empty((2, 3), dtype=np.float32))


# --------------------------------------------------------------------------- scalars and results


@pytest.mark.parametrize("scalar", [2, 2.0, True, np.float32(2), np.float64(2), np.int64(2)])
def test_operators_with_scalars_work_on_both_sides(x, scalar):
    for result, expected in [
        (x * scalar, host(x) * scalar),
        (scalar * x, scalar * host(x)),
        (scalar - x, scalar - host(x)),
        (x < scalar, host(x) < scalar),
        (scalar < x, scalar < host(x)),
        (scalar == x, scalar == host(x)),
    ]:
        assert isinstance(result, xp.ndarray)
        np.testing.assert_array_equal(host(result), expected)


def test_numpy_scalar_keeps_float32_result(x):
    assert (np.float32(2) * x).dtype == np.float32
    assert (x / np.float32(3)).dtype == np.float32


def test_operators_between_device_arrays(x):
    y = xp.ones((3,), dtype=xp.float32)
    np.testing.assert_array_equal(host(x + y), host(x) + 1)
    np.testing.assert_array_equal(host(x @ x.T), host(x) @ host(x).T)
    np.testing.assert_array_equal(host(-x), -host(x))
    np.testing.assert_array_equal(host(abs(-x)), host(x))
    quotient, remainder = divmod(x, 4)
    np.testing.assert_array_equal(host(quotient), host(x) // 4)
    np.testing.assert_array_equal(host(remainder), host(x) % 4)


def test_inplace_operator_returns_the_same_array(x):
    before = x
    x += 1
    x *= np.float32(2)
    assert x is before
    np.testing.assert_array_equal(host(x), (np.arange(6).reshape(2, 3) + 1) * 2)


def test_unsupported_operand_types_fall_back_to_python(x):
    with pytest.raises(TypeError):
        x + "a"
    with pytest.raises(TypeError):
        x + [1, 2, 3]


@pytest.mark.parametrize(
    "reduce",
    [
        lambda a: a.sum(),
        lambda a: a.mean(),
        lambda a: a.max(),
        lambda a: a.min(),
        lambda a: a.argmax(),
        lambda a: a.var(),
        lambda a: a.any(),
        lambda a: a.prod(),
        lambda a: xp.sum(a),
        lambda a: xp.max(a),
        lambda a: a[0, 1],
        lambda a: a[1][2],
    ],
)
def test_reductions_and_elements_are_0d_device_arrays(x, reduce):
    result = reduce(x)
    assert isinstance(result, xp.ndarray)
    assert result.shape == ()
    assert not isinstance(result, np.generic | np.ndarray)


def test_reduction_keeps_dtype_and_keepdims(x):
    total = x.sum(axis=1, keepdims=True)
    assert total.shape == (2, 1)
    assert total.dtype == np.float32
    np.testing.assert_array_equal(host(total), [[3], [12]])


def test_methods_and_properties(x):
    assert x.shape == (2, 3)
    assert x.ndim == 2 and x.size == 6 and x.itemsize == 4 and x.nbytes == 24
    assert x.dtype == np.float32
    assert x.strides == (12, 4)
    assert x.flags.c_contiguous
    assert isinstance(x.T, xp.ndarray) and x.T.shape == (3, 2)
    assert x.astype(xp.float64).dtype == np.float64
    assert x.astype(xp.float32, copy=False) is x
    assert x.ravel().shape == (6,)
    assert x.swapaxes(0, 1).shape == (3, 2)
    assert x.reshape(1, 2, 3).squeeze(0).shape == (2, 3)
    np.testing.assert_array_equal(host(x.clip(1, 4)), np.clip(host(x), 1, 4))
    np.testing.assert_array_equal(host(x.cumsum(axis=1)), np.cumsum(host(x), axis=1))
    rows, cols = x.nonzero()
    assert isinstance(rows, xp.ndarray) and isinstance(cols, xp.ndarray)
    np.testing.assert_array_equal(host(x.take(xp.asarray([0, 5]))), [0, 5])


def test_shape_is_assignable(x):
    x.shape = (3, 2)
    assert x.shape == (3, 2)


def test_copy_is_independent(x):
    for duplicate in (x.copy(), copy.copy(x), copy.deepcopy(x)):
        duplicate[0, 0] = 100
        assert host(x)[0, 0] == 0


def test_fill_and_views_share_memory(x):
    row = x[1]
    row.fill(7)
    np.testing.assert_array_equal(host(x)[1], 7)
    assert row.base is not None


def test_len_and_iteration_give_device_arrays_without_transfers(x):
    with xp.count_transfers() as counter:
        rows = list(x)
        assert len(x) == 2
    assert all(isinstance(row, xp.ndarray) and row.shape == (3,) for row in rows)
    assert counter.to_host_calls == 0
    with pytest.raises(TypeError):
        iter(x.sum())


def test_repr_shows_values_without_counting(x):
    with xp.count_transfers() as counter:
        text = repr(x) + str(x) + f"{x.sum():.1f}"
    assert "5." in text
    assert "15.0" in text
    assert counter.to_host_calls == 0


def test_objects_are_unhashable(x):
    with pytest.raises(TypeError):
        hash(x)


# --------------------------------------------------------------------------- indexing


def test_basic_indexing(x):
    np.testing.assert_array_equal(host(x[:, 1:]), host(x)[:, 1:])
    np.testing.assert_array_equal(host(x[None, ..., 0]), host(x)[None, ..., 0])
    assert x[-1, -1].shape == ()


def test_indexing_with_device_int_and_bool_arrays(x):
    rows = xp.asarray(np.array([1, 0, 1]))
    np.testing.assert_array_equal(host(x[rows]), host(x)[[1, 0, 1]])
    np.testing.assert_array_equal(host(x[:, rows]), host(x)[:, [1, 0, 1]])
    np.testing.assert_array_equal(host(x[x > 2]), [3, 4, 5])
    np.testing.assert_array_equal(host(x[xp.asarray([0, 1]), xp.asarray([2, 0])]), [2, 3])


def test_indexing_with_a_numpy_array_raises(x):
    with pytest.raises(TypeError, match="indexing"):
        x[np.array([0, 1])]
    with pytest.raises(TypeError):
        x[:, np.array([True, False, True])]


def test_setitem(x):
    x[0] = 10
    x[1, 1:] = xp.asarray([20.0, 30.0])
    x[x > 25] = -1
    x[..., 0] = np.float32(5)
    np.testing.assert_array_equal(host(x), [[5, 10, 10], [5, 20, -1]])


def test_setitem_with_a_numpy_value_raises(x):
    with pytest.raises(TypeError):
        x[0] = np.zeros(3, dtype=np.float32)


def test_single_element_is_a_view(x):
    element = x[0, 0]
    element[...] = 42
    assert host(x)[0, 0] == 42


# --------------------------------------------------------------------------- scatter_add


def test_scatter_add_sums_repeated_indices():
    target = xp.zeros((4,), dtype=xp.float32)
    xp.cupyx.scatter_add(target, xp.asarray([0, 0, 3, 0]), xp.asarray([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(host(target), [7, 0, 0, 3])


def test_scatter_add_with_a_tuple_of_slices_and_arrays():
    target = xp.zeros((2, 3), dtype=xp.float32)
    columns = xp.asarray([2, 2, 0])
    xp.cupyx.scatter_add(target, (slice(None), columns), 1.0)
    np.testing.assert_array_equal(host(target), [[1, 0, 2], [1, 0, 2]])


def test_scatter_add_method_and_host_inputs():
    target = xp.zeros((3,), dtype=xp.float32)
    target.scatter_add(xp.asarray([1, 1]), 2.0)
    np.testing.assert_array_equal(host(target), [0, 4, 0])
    with pytest.raises(TypeError):
        xp.cupyx.scatter_add(target, np.array([0]), 1.0)
    with pytest.raises(TypeError):
        xp.cupyx.scatter_add(np.zeros(3), xp.asarray([0]), 1.0)


# --------------------------------------------------------------------------- transfers


def test_host_transfers_are_counted_with_bytes(x):
    with xp.count_transfers() as counter:
        values = x.get()
        back = xp.asnumpy(x)
        number = float(x[0, 1])
        flag = bool(x[0, 0])
        whole = int(x[1, 2])
        items = x.tolist()
        item = x[1, 0].item()
    assert isinstance(values, np.ndarray) and isinstance(back, np.ndarray)
    np.testing.assert_array_equal(values, np.arange(6).reshape(2, 3))
    assert (number, flag, whole, item, items[1]) == (1.0, False, 5, 3.0, [3.0, 4.0, 5.0])
    assert counter.to_host_calls == 7
    assert counter.to_host_bytes == 24 + 24 + 4 + 4 + 4 + 24 + 4
    assert counter.to_device_calls == 0


def test_get_returns_a_copy(x):
    values = x.get()
    values[0, 0] = 99
    assert host(x)[0, 0] == 0


def test_uploads_are_counted_separately():
    data = np.ones((4, 5), dtype=np.float32)
    with xp.count_transfers() as counter:
        on_device = xp.asarray(data)
        again = xp.array(data)
        from_list = xp.asarray([1.0, 2.0])
    assert isinstance(on_device, xp.ndarray) and isinstance(again, xp.ndarray)
    assert (counter.to_device_calls, counter.to_device_bytes) == (3, 80 + 80 + 16)
    assert counter.to_host_calls == 0
    assert from_list.dtype == np.float64


def test_upload_copies_the_host_data():
    data = np.zeros(3)
    on_device = xp.asarray(data)
    data[0] = 1
    assert host(on_device)[0] == 0


def test_device_to_device_is_not_a_transfer(x):
    with xp.count_transfers() as counter:
        same = xp.asarray(x)
        cast = xp.asarray(x, dtype=xp.float64)
        duplicate = xp.array(x)
        contiguous = xp.ascontiguousarray(x.T)
        made = xp.zeros((3,), dtype=xp.float32) + xp.ones_like(x)
    assert same is x
    assert cast.dtype == np.float64 and duplicate is not x
    assert contiguous.flags.c_contiguous and made.shape == (2, 3)
    assert (counter.to_host_calls, counter.to_device_calls) == (0, 0)


def test_asnumpy_of_host_data_is_not_a_transfer():
    with xp.count_transfers() as counter:
        result = xp.asnumpy([1, 2])
    assert isinstance(result, np.ndarray)
    assert counter.to_host_calls == 0


def test_counter_reset():
    xp.transfers.record_to_host(8)
    xp.transfers.reset()
    assert vars(xp.transfers) == {
        "to_host_calls": 0,
        "to_host_bytes": 0,
        "to_device_calls": 0,
        "to_device_bytes": 0,
    }


# --------------------------------------------------------------------------- the module


def test_delegated_functions_take_and_return_device_arrays(x):
    padded = xp.pad(x, ((0, 0), (1, 1)))
    assert isinstance(padded, xp.ndarray) and padded.shape == (2, 5)
    np.testing.assert_allclose(host(xp.exp(x)), np.exp(host(x)))
    np.testing.assert_array_equal(host(xp.matmul(x, x.T)), host(x) @ host(x).T)
    np.testing.assert_array_equal(host(xp.einsum("ij->j", x)), [3, 5, 7])
    np.testing.assert_array_equal(host(xp.where(x > 2, x, 0.0)), [[0, 0, 0], [3, 4, 5]])
    rows, cols = xp.where(x > 3)
    assert isinstance(rows, xp.ndarray) and isinstance(cols, xp.ndarray)
    assert isinstance(xp.maximum(x, 0), xp.ndarray)
    assert isinstance(xp.concatenate([x, x]), xp.ndarray)


def test_out_argument_returns_the_given_array(x):
    out = xp.empty((2, 3), dtype=xp.float32)
    assert xp.add(x, 1, out=out) is out
    np.testing.assert_array_equal(host(out), host(x) + 1)


def test_dtypes_and_constants_pass_through():
    assert xp.float32 is np.float32
    assert xp.float32(3) == 3
    assert xp.zeros((2,), dtype=xp.float32).dtype == np.float32
    assert xp.newaxis is None
    assert xp.pi == np.pi
    assert xp.dtype("float32") == np.float32


def test_ufunc_methods_that_cupy_has(x):
    np.testing.assert_array_equal(host(xp.add.reduce(x, axis=0)), [3, 5, 7])
    target = xp.zeros((3,), dtype=xp.float32)
    xp.add.at(target, xp.asarray([0, 0]), 1.0)
    np.testing.assert_array_equal(host(target), [2, 0, 0])


def test_stride_tricks(x):
    flat = xp.arange(5, dtype=xp.float32)
    windows = xp.lib.stride_tricks.as_strided(flat, shape=(3, 3), strides=(4, 4))
    assert isinstance(windows, xp.ndarray)
    np.testing.assert_array_equal(host(windows), [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    slid = xp.lib.stride_tricks.sliding_window_view(flat, 2)
    assert isinstance(slid, xp.ndarray) and slid.shape == (4, 2)


def test_linalg_namespace(x):
    norm = xp.linalg.norm(x)
    assert isinstance(norm, xp.ndarray)
    np.testing.assert_allclose(host(norm), np.linalg.norm(host(x)))


def test_numpy_only_names_raise_attribute_error():
    pytest.importorskip("cupy")
    for get in (
        lambda: xp.errstate,
        lambda: xp.sliding_window_view,
        lambda: xp.random.default_rng(0).normal,
    ):
        with pytest.raises(AttributeError, match="CuPy has no"):
            get()


def test_names_neither_library_has_raise_attribute_error():
    with pytest.raises(AttributeError):
        _ = xp.no_such_function
    with pytest.raises(AttributeError):
        _ = xp._private_thing
    assert not hasattr(xp, "__path__")


def test_without_cupy_installed_every_numpy_name_is_allowed(monkeypatch):
    monkeypatch.setattr(xp, "_real_cupy", lambda: None)
    xp._cupy_has.cache_clear()
    try:
        assert xp._cupy_has("errstate")
    finally:
        xp._cupy_has.cache_clear()


def test_get_array_module(x):
    assert xp.get_array_module(x) is xp
    assert xp.get_array_module(1.0, x) is xp
    assert xp.get_array_module(np.ones(2)) is np
    assert xp.get_array_module() is np


def test_ndarray_constructor():
    empty = xp.ndarray((2, 3), dtype=xp.float32)
    assert isinstance(empty, xp.ndarray)
    assert empty.shape == (2, 3) and empty.dtype == np.float32
    assert not isinstance(empty, np.ndarray)


# --------------------------------------------------------------------------- random


def test_random_generator_is_reproducible_and_returns_device_arrays():
    first = xp.random.default_rng(7)
    second = xp.random.default_rng(7)
    a = first.random((2, 3), dtype=xp.float32)
    b = second.random((2, 3), dtype=xp.float32)
    assert isinstance(a, xp.ndarray) and a.dtype == np.float32 and a.shape == (2, 3)
    np.testing.assert_array_equal(host(a), host(b))
    normal = first.standard_normal((4,), dtype=xp.float32)
    assert isinstance(normal, xp.ndarray) and normal.dtype == np.float32
    integers = first.integers(0, 5, size=(10,))
    assert isinstance(integers, xp.ndarray) and integers.dtype.kind == "i"
    assert 0 <= int(integers.min()) and int(integers.max()) < 5
    uniform = first.uniform(-1.0, 1.0, size=(3,))
    assert isinstance(uniform, xp.ndarray)


def test_random_scalars_are_0d_device_arrays():
    value = xp.random.default_rng(0).random()
    assert isinstance(value, xp.ndarray) and value.shape == ()
    assert isinstance(xp.random.default_rng(0), xp.random.Generator)


# --------------------------------------------------------------------------- cuda and kernels


def test_cuda_namespace():
    device = xp.cuda.Device()
    device.use()
    device.synchronize()
    assert device.id == 0
    assert xp.cuda.runtime.getDeviceCount() == 1
    xp.cuda.Stream.null.synchronize()
    assert xp.cuda.get_current_stream() is xp.cuda.Stream.null
    start, end = xp.cuda.Event(), xp.cuda.Event()
    start.record()
    end.record()
    end.synchronize()
    assert xp.cuda.get_elapsed_time(start, end) >= 0.0


@pytest.mark.parametrize(
    "kernel",
    [
        lambda: xp.RawKernel('extern "C" __global__ void k() {}', "k"),
        lambda: xp.ElementwiseKernel("T x", "T y", "y = x", "copy"),
        lambda: xp.ReductionKernel("T x", "T y", "x", "a + b", "y = a", "0", "total"),
    ],
    ids=["RawKernel", "ElementwiseKernel", "ReductionKernel"],
)
def test_kernels_are_constructible_but_cannot_run(kernel):
    built = kernel()
    with pytest.raises(RuntimeError, match="needs a real GPU"):
        built((1,), (1,), ())


def test_raw_module_get_function_raises():
    module = xp.RawModule(code='extern "C" __global__ void k() {}', options=("-O3",))
    assert module.options == ("-O3",)
    with pytest.raises(RuntimeError, match="needs a real GPU"):
        module.get_function("k")
