"""``Optimizer``: parameter groups, per-parameter state and its state dict, as ``torch.optim``.

A subclass says how one parameter is updated: :meth:`Optimizer._init_state` makes its state
the first time it has a gradient, and :meth:`Optimizer._work` returns the update of one step
(:class:`minigrad.optim.foreach.Work`); :meth:`Optimizer.step` checks every parameter, collects
the updates of all groups and runs them together, in place on ``p.data``, under ``no_grad``.

The state dict has PyTorch's layout, so it moves between minigrad and PyTorch unchanged::

    {"state": {0: {"step": Tensor(5.), "exp_avg": Tensor(...), ...}, 1: {...}},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, {"lr": 0.01, ..., "params": [2]}]}

Parameters are numbered in the order of the groups; a parameter that never had a gradient
has no entry in ``state``.
"""

from __future__ import annotations

import numbers
from collections import defaultdict
from collections.abc import Callable

import numpy

from minigrad import autograd, backend
from minigrad.optim import foreach
from minigrad.tensor import Tensor


class Optimizer:
    """Base class of the optimizers, as ``torch.optim.Optimizer``.

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts, each a
            parameter group with a ``"params"`` entry and hyperparameters overriding
            ``defaults``.
        defaults: the hyperparameters of groups that do not set their own.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` (a list of Tensors) and every
            hyperparameter.
        state: dict from parameter (the Tensor itself) to its dict of state Tensors.
    """

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        self.defaults = dict(defaults)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._opt_called = False  # set by step(); schedulers warn when they step first
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k not in ("params", "param_names")):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ---- groups -----------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters, with its own hyperparameters (defaults fill the rest).

        Raises:
            TypeError: ``param_group`` is not a dict, its params are a set or not Tensors.
            ValueError: a parameter is not a leaf, or is already in a group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        tensors, names = _split_names(list(params))
        group["params"] = tensors
        if names is not None:
            group["param_names"] = names
        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is "
                    f"{type(p).__module__}.{type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_new_group(group)
        self.param_groups.append(group)

    def _check_new_group(self, group: dict) -> None:
        """No parameter twice, none already in another group; names everywhere or nowhere."""
        ids = [id(p) for p in group["params"]]
        if len(ids) != len(set(ids)):
            raise ValueError("optimizer got a parameter group with duplicate parameters")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        for other in self.param_groups:
            if ("param_names" in group) != ("param_names" in other):
                raise ValueError(
                    "all optimizer param groups should be with/without names. cannot add param "
                    f"group {'with' if 'param_names' in group else 'without'} names to the "
                    "optimizer"
                )

    # ---- gradients and steps ----------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (``set_to_none=True``) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.grad_fn = None
                    p.grad.requires_grad = False
                    p.grad.data[...] = 0

    def step(self, closure: Callable | None = None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss, if given.

        ``closure`` re-evaluates the model and returns the loss (it runs with grad enabled).
        Parameters whose ``grad`` is None are skipped, as in PyTorch.
        """
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        self._opt_called = True
        with autograd.no_grad():
            stepped = [
                (i, group, p) for i, group, p in self._indexed_params() if p.grad is not None
            ]
            for index, group, p in stepped:  # every check before any state changes
                _check_grad(index, group, p)
                _check_state(index, group, p, self.state.get(p, {}))
            works = []
            for _, group, p in stepped:
                state = self.state.get(p) or self._init_state(group, p)
                works.append(self._work(group, p, state))
                if state:
                    self.state[p] = state
            foreach.run(works)
        return loss

    def _indexed_params(self):
        """``(index, group, param)`` for every parameter, numbered as in the state dict."""
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield index, group, p
                index += 1

    def _init_state(self, group: dict, p: Tensor) -> dict:
        """The state of ``p`` before its first step (a dict of Tensors, possibly empty)."""
        raise NotImplementedError

    def _state_names(self, group: dict) -> tuple:
        """The state keys every parameter of ``group`` that has state must hold."""
        raise NotImplementedError

    def _work(self, group: dict, p: Tensor, state: dict) -> foreach.Work:
        """One step's update of ``p`` (advancing counters such as ``state["step"]``)."""
        raise NotImplementedError

    # ---- state dict -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {name: Tensor}}, "param_groups": [{..., "params": [index]}]}``.

        As in PyTorch, the state Tensors are the optimizer's own (not copies): save or copy
        them before stepping again if the snapshot must not move.
        """
        index_of = {id(p): i for i, _, p in self._indexed_params()}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index_of[id(p)]: dict(s) for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict of this optimizer class (ours, or PyTorch's as it is).

        Hyperparameters come from the saved groups; state values (Tensors, NumPy or CuPy
        arrays, PyTorch tensors) are copied to their parameter's device and dtype, except
        ``"step"``, which stays a float32 CPU scalar as in PyTorch.

        Raises:
            ValueError: the group count or sizes differ, a state entry names no parameter,
                lacks a key, or has the wrong shape.
        """
        saved_groups = [dict(g) for g in state_dict["param_groups"]]
        _check_group_sizes(self.param_groups, saved_groups)
        params = {}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            params.update(zip(saved["params"], group["params"], strict=True))
        state: defaultdict = defaultdict(dict)
        for key, values in state_dict["state"].items():
            index = int(key)
            if index not in params:
                raise ValueError(
                    f"loaded optimizer state has an entry for parameter {index}, but the "
                    f"saved param_groups number only {sorted(params)}"
                )
            p = params[index]
            state[p] = {name: _loaded_value(index, name, v, p) for name, v in values.items()}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        _check_loaded_keys(self, saved_groups, params, state)
        self.param_groups[:] = saved_groups
        self.state = state


# ---- helpers ----------------------------------------------------------------------------


def check_number(
    value,
    name: str,
    *,
    owner: str,
    low: float | None = 0.0,
    high: float | None = None,
    invalid: str | None = None,
) -> None:
    """Check a hyperparameter: a real number (not a bool) with ``low <= value < high``.

    Args:
        value: the hyperparameter as the user gave it.
        name: its argument name, for the message ("lr").
        owner: the class name of the optimizer (or scheduler) it is for, for the message
            ("Adam").
        low: the least allowed value (None: no lower bound).
        high: the exclusive upper bound (None: none).
        invalid: the message of the ValueError for a number out of range; PyTorch's, where
            PyTorch checks this value ("Invalid learning rate: -1"), else one naming the range.

    Raises:
        TypeError: ``value`` is not a number, e.g. "Adam: lr must be a non-negative number,
            got 'x'".
        ValueError: ``value`` is out of range (NaN included, when there is a bound).
    """
    expected = _expected_range(low, high)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be {expected}, got {value!r}")
    if (low is not None and not low <= value) or (high is not None and not value < high):
        raise ValueError(invalid or f"{owner}: {name} must be {expected}, got {value!r}")


def check_betas(betas, *, owner: str) -> None:
    """Check Adam's ``betas``: a tuple or list of two numbers, each in ``[0, 1)``.

    Raises:
        TypeError: ``betas`` is not a pair, or one of them is not a number.
        ValueError: a beta is out of ``[0, 1)``, with PyTorch's message ("Invalid beta
            parameter at index 1: 1.0").
    """
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"{owner}: betas must be a pair of numbers in [0, 1), got {betas!r}")
    for i, beta in enumerate(betas):
        check_number(
            beta,
            f"betas[{i}]",
            owner=owner,
            high=1.0,
            invalid=f"Invalid beta parameter at index {i}: {beta}",
        )


def _expected_range(low: float | None, high: float | None) -> str:
    """What a number in ``[low, high)`` is called in messages: "a number", "a non-negative
    number" or "a number in [0, 1)"."""
    if high is None and low is None:
        return "a number"
    if high is None and low == 0:
        return "a non-negative number"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"a number in [{lo}, {hi})"


def zeros_like_param(p: Tensor) -> Tensor:
    """A state Tensor of zeros with ``p``'s shape, dtype and device."""
    return Tensor._wrap(p.xp.zeros_like(p.data))


def step_counter() -> Tensor:
    """A parameter's step count before its first step: a float32 CPU scalar, as PyTorch's."""
    return Tensor._wrap(numpy.zeros((), dtype=numpy.float32))


def _split_names(params: list) -> tuple[list, list | None]:
    """Parameters given as ``(name, Tensor)`` pairs: the tensors and the names (or None)."""
    named = [isinstance(p, tuple) for p in params]
    if not any(named):
        return params, None
    if not all(named):
        raise ValueError(
            "all optimizer params should be with/without names. Some param names are missing"
        )
    return [p for _, p in params], [name for name, _ in params]


def _describe(index: int, group: dict, p: Tensor) -> str:
    """ "parameter 3" or "parameter 3 ('conv.weight')" for error messages."""
    names = group.get("param_names")
    if names is None:
        return f"parameter {index}"
    position = next(i for i, q in enumerate(group["params"]) if q is p)
    return f"parameter {index} ({names[position]!r})"


def _check_grad(index: int, group: dict, p: Tensor) -> None:
    """``p.grad`` is a Tensor of ``p``'s shape, dtype and device."""
    g = p.grad
    what = _describe(index, group, p)
    if not isinstance(g, Tensor):
        raise TypeError(f"{what}: grad must be a Tensor, got {type(g).__name__}")
    if g.device != p.device:
        raise backend.DeviceError(
            f"{what}: grad is on {g.device} but the parameter is on {p.device}"
        )
    if g.shape != p.shape:
        raise ValueError(f"{what}: grad has shape {g.shape} but the parameter has shape {p.shape}")
    if g.dtype != p.dtype:
        raise TypeError(f"{what}: grad has dtype {g.dtype} but the parameter has dtype {p.dtype}")


def _check_state(index: int, group: dict, p: Tensor, state: dict) -> None:
    """Every state array of ``p`` (all but the CPU ``step``) matches its device and dtype."""
    for name, value in state.items():
        if name == "step" or not isinstance(value, Tensor):
            continue
        what = _describe(index, group, p)
        if value.device != p.device:
            raise backend.DeviceError(
                f"{what} is on {p.device} but its optimizer state {name!r} is on "
                f"{value.device}; build the optimizer after moving the model, or reload its "
                "state with optimizer.load_state_dict(optimizer.state_dict()), which moves the "
                "state to each parameter's device"
            )
        if value.dtype != p.dtype or value.shape != p.shape:
            raise TypeError(
                f"{what} is {p.dtype} of shape {p.shape} but its optimizer state {name!r} is "
                f"{value.dtype} of shape {value.shape}; reload the optimizer state with "
                "load_state_dict, which casts it to each parameter's dtype"
            )


def _is_array_like(value) -> bool:
    """A Tensor, a NumPy or CuPy array, or a PyTorch tensor (duck-typed)."""
    torch_like = type(value).__module__.startswith("torch") and hasattr(value, "detach")
    return isinstance(value, Tensor) or backend.is_array(value) or torch_like


def _loaded_value(index: int, name: str, value, p: Tensor):
    """A loaded state value as the optimizer keeps it: a copy on ``p``'s device and dtype
    (``step``: a float32 CPU scalar); non-array values are kept as they are."""
    if name == "step":
        return Tensor(value, dtype=numpy.float32, device=backend.CPU)
    if not _is_array_like(value):
        return value
    loaded = Tensor(value, dtype=p.dtype, device=p.device)
    if loaded.shape != p.shape:
        raise ValueError(
            f"loaded optimizer state {name!r} of parameter {index} has shape {loaded.shape}, "
            f"but the parameter has shape {p.shape}"
        )
    return loaded


def _check_group_sizes(groups: list, saved_groups: list) -> None:
    if len(groups) != len(saved_groups):
        raise ValueError(
            f"loaded state dict has a different number of parameter groups: "
            f"{len(saved_groups)}, the optimizer has {len(groups)}"
        )
    for i, (group, saved) in enumerate(zip(groups, saved_groups, strict=True)):
        if len(group["params"]) != len(saved["params"]):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                f"optimizer's group: group {i} has {len(saved['params'])} parameters there, "
                f"{len(group['params'])} here"
            )


def _check_loaded_keys(optimizer: Optimizer, groups: list, params: dict, state: dict) -> None:
    """Each loaded parameter state holds every key its group's update needs."""
    group_of = {id(p): g for g in groups for p in g["params"]}
    for index, p in params.items():
        if p not in state:
            continue
        missing = [k for k in optimizer._state_names(group_of[id(p)]) if k not in state[p]]
        if missing:
            raise ValueError(
                f"loaded optimizer state of parameter {index} lacks {missing} "
                f"(it has {sorted(state[p])})"
            )
