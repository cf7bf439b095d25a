"""Autograd behaviour: accumulation, retain_graph, no_grad, deep chains, diamonds, errors."""

import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest
import torch

import minigrad as mg
import minigrad.functional as F


def _pair(values, device):
    return (
        mg.tensor(values, dtype=mg.float64, device=device, requires_grad=True),
        torch.tensor(values, dtype=torch.float64, requires_grad=True),
    )


def test_gradients_accumulate_across_backward_calls(device):
    x, tx = _pair([1.0, 2.0, 3.0], device)
    for _ in range(2):
        (x * x).sum().backward()
        (tx * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_backward_twice_needs_retain_graph(device):
    x, _ = _pair([1.0, 2.0], device)
    y = (x.exp() * 3).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.exp([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_no_grad_records_nothing(device):
    x, _ = _pair([1.0, 2.0], device)
    with mg.no_grad():
        y = (x * 2).sum()
        with mg.enable_grad():
            z = (x * 2).sum()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert mg.is_grad_enabled()


def test_no_grad_works_as_a_decorator(device):
    @mg.no_grad()
    def double(t):
        return t * 2

    x, _ = _pair([1.0], device)
    assert not double(x).requires_grad


def test_a_5000_op_chain_backpropagates(device):
    x, tx = _pair([0.5, -0.25], device)
    y, ty = x, tx
    for _ in range(5000):
        y = y * 1.0001 + 0.0001
        ty = ty * 1.0001 + 0.0001
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_a_tensor_used_many_times_sums_its_gradients(device):
    x, tx = _pair([0.3, -1.2, 2.0], device)

    def diamond(t, exp):
        a = t * 2
        b = exp(a) + a
        c = a * b + t * t
        return (c + a + a).sum()

    diamond(x, mg.exp).backward()
    diamond(tx, torch.exp).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_a_plus_a_gives_two(device):
    x, _ = _pair([1.0, 5.0], device)
    (x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_leaves_get_their_own_gradient_arrays(device):
    a, _ = _pair([1.0, 2.0], device)
    b, _ = _pair([3.0, 4.0], device)
    (a + b).sum().backward()
    a.grad.data[...] = 0
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_backward_on_a_non_scalar_needs_gradient_like_torch(device):
    x, _ = _pair([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(gradient=mg.tensor([1.0, 3.0], dtype=mg.float64, device=device))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 6.0])


def test_backward_gradient_of_the_wrong_shape_is_refused(device):
    x, _ = _pair([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\), expected \(2,\)"):
        (x * 2).backward(gradient=mg.ones(3, dtype=mg.float64, device=device))


def test_requires_grad_propagates_and_detach_cuts(device):
    x, _ = _pair([1.0], device)
    c = mg.tensor([2.0], dtype=mg.float64, device=device)
    assert (x * c).requires_grad and not (c * c).requires_grad
    d = (x * c).detach()
    assert not d.requires_grad and d.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        (c * c).sum().backward()


def test_integer_tensors_cannot_require_grad(device):
    with pytest.raises(RuntimeError, match="only floating point"):
        mg.tensor([1, 2], device=device, requires_grad=True)


def test_float32_stays_float32_and_float64_stays_float64(device):
    for dtype in (mg.float32, mg.float64):
        x = mg.ones(3, dtype=dtype, device=device, requires_grad=True)
        y = ((x * 2 + 1) ** 2 / 3).exp().log().sqrt().mean()
        y.backward()
        assert y.dtype == dtype and x.grad.dtype == dtype


def test_graph_is_freed_after_backward(device):
    x, _ = _pair([1.0, 2.0], device)
    y = x.exp()
    z = y.sum()
    z.backward()
    assert y.grad_fn.saved == () and y.grad_fn.inputs == ()


def test_the_graph_does_not_keep_an_intermediate_alive(device):
    """The graph holds no intermediate Tensor, only the arrays each backward saved: dropping
    the names of ``x * 2`` and ``relu(x * 2)`` frees them (and the product's array, which no
    backward needs), as in PyTorch; the gradient is still right."""
    x, tx = _pair([[1.0, -2.0], [3.0, 4.0]], device)
    product = x * 2
    product_ref = weakref.ref(product)
    y = F.relu(product)
    loss = y.sum()
    y_ref = weakref.ref(y)
    del product, y
    assert product_ref() is None and y_ref() is None
    loss.backward()
    torch.relu(tx * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_a_wrong_backward_shape_names_the_op(device):
    from minigrad.autograd import Function

    class Broken(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy[:1]

    x, _ = _pair([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match=r"Broken.backward returned a gradient of shape \(1,\)"):
        Broken.apply(x).sum().backward()


def test_no_grad_decorator_is_reentrant():
    @mg.no_grad()
    def countdown(n):
        return countdown(n - 1) if n else mg.is_grad_enabled()

    assert countdown(3) is False
    assert mg.is_grad_enabled()


def test_set_grad_enabled_works_as_a_context_manager():
    with mg.set_grad_enabled(False):
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_a_leaf_gradient_does_not_share_the_callers_gradient(device):
    a, _ = _pair([1.0, 2.0], device)
    g = mg.ones(2, dtype=mg.float64, device=device)
    (a * 1).backward(g)
    a.grad.data[...] = 5
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0])


def test_numpy_and_zero_dim_scalars_do_not_upcast(device):
    x = mg.ones(2, device=device)
    assert (x * np.float64(2)).dtype == np.float32
    assert (np.float64(2) * x).dtype == np.float32
    assert (x * mg.tensor(np.float64(2), device=device)).dtype == np.float32
    assert (
        mg.arange(2, device=device) * mg.tensor(2.0, dtype=mg.float64, device=device)
    ).dtype == (np.float64)


class _ViewGradient(mg.autograd.Function):
    """y = x; its backward returns a view of a fresh array: all of it reshaped ("whole"),
    the same while the Function keeps the array ("kept"), or the first part of a larger
    array ("part")."""

    def forward(self, x, *, kind):
        self.kind = kind
        return x.copy()

    def backward(self, gy):
        fresh = np.ones(2 * gy.size if self.kind == "part" else gy.size, dtype=gy.dtype)
        if self.kind == "kept":
            self.kept = fresh
        self.returned = fresh[: gy.size].reshape(gy.shape)
        return self.returned


def _leaf_gradient_of_view(kind):
    x = mg.tensor(np.zeros((2, 3)), requires_grad=True)
    y = _ViewGradient.apply(x, kind=kind)
    fn = y.grad_fn
    y.backward(mg.ones(2, 3, dtype=mg.float64))
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))
    return x.grad.data, fn


def test_a_fresh_reshaped_gradient_is_kept_without_a_copy():
    grad, fn = _leaf_gradient_of_view("whole")
    assert np.shares_memory(grad, fn.returned)


def test_a_view_of_an_array_held_elsewhere_is_copied():
    grad, fn = _leaf_gradient_of_view("kept")
    assert not np.shares_memory(grad, fn.kept)


def test_part_of_a_larger_array_is_copied():
    """Keeping the slice would keep all of its base alive."""
    grad, fn = _leaf_gradient_of_view("part")
    assert not np.shares_memory(grad, fn.returned) and grad.base is None


def test_a_broadcast_gradient_becomes_a_writeable_grad():
    """Sum over an axis of size 1 returns a broadcast (read-only) view of a fresh array the
    size of x: the leaf gets a writeable copy, which zero_grad can fill."""
    x = mg.tensor(np.ones((2, 1, 3)), requires_grad=True)
    (x.sum(dim=1) * 3).sum().backward()
    assert x.grad.data.flags.writeable
    x.grad.data[...] = 0


def test_a_transposed_gradient_becomes_a_contiguous_grad():
    w = mg.tensor(np.ones((2, 3)), requires_grad=True)
    (w.transpose(0, 1) * mg.tensor(np.arange(6.0).reshape(3, 2))).sum().backward()
    assert w.grad.data.flags.c_contiguous
    np.testing.assert_array_equal(w.grad.numpy(), np.arange(6.0).reshape(3, 2).T)


class _SeesItsGradient(mg.autograd.Function):
    """y = 2x; its backward records whether its output gradient was exclusive, and returns
    a fresh array (so the check is all it does with ``gy``)."""

    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        type(self).seen.append(mg.autograd.output_grad_is_exclusive(gy))
        return 2 * gy


def _exclusive_seen(build) -> list:
    _SeesItsGradient.seen = []
    build()
    return _SeesItsGradient.seen


def test_a_gradient_made_for_one_backward_alone_is_exclusive():
    x = mg.tensor(np.ones(3), requires_grad=True)
    assert _exclusive_seen(lambda: (_SeesItsGradient.apply(x) * 3).sum().backward()) == [True]


def test_the_root_gradient_is_not_exclusive():
    """The gradient given to ``backward()`` is the caller's (and the walk keeps it to the end):
    an op at the root never writes into it."""
    x = mg.tensor(np.ones(3), requires_grad=True)
    seen = _exclusive_seen(lambda: _SeesItsGradient.apply(x).backward(mg.ones(3, dtype=mg.float64)))
    assert seen == [False]


def test_a_gradient_passed_to_two_inputs_is_exclusive_only_for_the_last_to_use_it():
    """``a + b`` passes one array to both: while the other still holds it in the walk, it is
    not exclusive."""
    x = mg.tensor(np.ones(3), requires_grad=True)
    seen = _exclusive_seen(
        lambda: ((_SeesItsGradient.apply(x) + _SeesItsGradient.apply(x)) * 3).sum().backward()
    )
    assert seen == [False, True]


def test_a_gradient_a_leaf_keeps_is_not_exclusive():
    """``op(x) + leaf``: the leaf's ``.grad`` is the very array the op's backward gets."""
    x, leaf = (mg.tensor(np.ones(3), requires_grad=True) for _ in range(2))
    assert _exclusive_seen(lambda: ((_SeesItsGradient.apply(x) + leaf) * 3).sum().backward()) == [
        False
    ]


def test_views_read_only_arrays_and_other_modules_are_not_exclusive():
    assert not mg.autograd.output_grad_is_exclusive(np.ones(4)[:2])
    read_only = np.ones(2)
    read_only.flags.writeable = False
    assert not mg.autograd.output_grad_is_exclusive(read_only)
    assert not mg.autograd.output_grad_is_exclusive([1.0, 2.0])


def test_a_tracer_at_import_does_not_make_shared_gradients_exclusive():
    """A trace function that reads frames' locals (a debugger, coverage) adds references; a
    count calibrated under it would pass a gradient that a leaf still holds (``b.grad``
    below came out [0, 3, 0, 3] once). Calibrated in a fresh interpreter under such a
    tracer, the gradients still match PyTorch's."""
    code = textwrap.dedent(
        """
        import sys

        def tracer(frame, event, arg):
            frame.f_locals
            return tracer

        sys.settrace(tracer)
        import minigrad.autograd
        sys.settrace(None)
        import numpy as np
        import minigrad as mg
        import minigrad.functional as F

        a, b, c = (mg.tensor(np.array([-1.0, 2.0, -3.0, 4.0]), requires_grad=True) for _ in "abc")
        (((F.relu(a) + b) + F.relu(c)) * 3).sum().backward()
        print(b.grad.numpy().tolist(), a.grad.numpy().tolist())
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == "[3.0, 3.0, 3.0, 3.0] [0.0, 3.0, 0.0, 3.0]".split()
