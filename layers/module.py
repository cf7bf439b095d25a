"""``Module``: the base of every layer and model, with PyTorch's registration and state dicts.

Assigning a :class:`Parameter`, a ``Module`` or (through :meth:`Module.register_buffer`) a
buffer to an attribute registers it, so ``named_parameters()``, ``state_dict()``, ``to()``
and ``train()`` reach it. Keys are PyTorch's (``enc1.conv.weight``, ``bn.running_mean``), so
a PyTorch state dict loads as it is and ours loads into PyTorch.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator

import numpy

from layers.parameter import Parameter
from minigrad import backend
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor, _is_torch_tensor

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """Returned by ``register_forward_hook``: ``handle.remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _host_array(value, key: str):
    """The array behind a state-dict value: a Tensor, a numpy/cupy array or a torch tensor
    (converted by duck typing, so torch is never imported here)."""
    if isinstance(value, Tensor):
        return value.data
    if _is_torch_tensor(value):
        return value.detach().cpu().numpy()
    if backend.is_array(value):
        return value
    raise TypeError(
        f"load_state_dict: value for {key!r} must be a Tensor, a numpy/cupy array or a torch "
        f"tensor, got {type(value).__name__}"
    )


class Module:
    """Base class of layers and models, as ``torch.nn.Module``.

    Subclasses call ``super().__init__()`` first, assign parameters, buffers and submodules
    as attributes, and implement ``forward``; calling the module runs the forward pre-hooks,
    ``forward`` and the forward hooks.
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    # ---- registration -----------------------------------------------------------------
    def _check_name(self, name: str, kind: str, registry: str) -> None:
        """A valid new name: a non-empty string without dots that no other attribute of
        this module (a method, a plain attribute, another registry's entry) holds."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{kind} name can't contain '.' or be empty, got {name!r}")
        if hasattr(self, name) and name not in getattr(self, registry):
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, a declared but absent parameter) under ``name``."""
        self._check_name(name, "parameter", "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign {type(param).__name__} as parameter {name!r} "
                "(layers.Parameter or None expected)"
            )
        self._forget(name, keep="_parameters")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a non-learnable tensor (running statistics); persistent ones are saved
        in the state dict."""
        self._check_name(name, "buffer", "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign {type(tensor).__name__} as buffer {name!r} "
                "(minigrad.Tensor or None expected)"
            )
        self._forget(name, keep="_buffers")
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a submodule under ``name`` (as an attribute assignment does)."""
        self._check_name(name, "module", "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._forget(name, keep="_modules")
        self._modules[name] = module

    register_module = add_module

    def _forget(self, name: str, keep: str) -> None:
        """Drop ``name`` from the plain attributes and every registry but ``keep``, before
        registering it there: a replaced entry keeps its place in ``keep`` (as in PyTorch,
        ``self.conv = Conv2d(...)`` again does not move ``conv`` to the end)."""
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry != keep:
                getattr(self, registry).pop(name, None)
        self._non_persistent_buffers.discard(name)
        self.__dict__.pop(name, None)

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Parameter | Module) and "_parameters" in self.__dict__:
            self._forget(name, keep="_parameters" if isinstance(value, Parameter) else "_modules")
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            if "_modules" not in self.__dict__:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    "(layers.Parameter or None expected)"
                )
            self._parameters[name] = None
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r}")
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r}")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(
            set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        )

    # ---- traversal --------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate=True):
        """(dotted name, module) for this module and every descendant, depth first."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            child_prefix = f"{prefix}.{name}" if prefix else name
            yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = [(prefix, self)]
        seen = set()
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate=True):
        """(dotted name, Parameter) for every parameter, each shared one once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    # ---- modes and in-place changes ---------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant (dropout, batch norm)."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        object.__setattr__(self, "training", mode)
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every descendant, then on this module (as PyTorch: children first)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.data[...] = 0

    def _convert(self, convert: Callable) -> Module:
        """Replace the array of every parameter, gradient and buffer by ``convert(array)``,
        keeping the Parameter and buffer objects, so an optimizer built before keeps them."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            tensor.data = convert(tensor.data)
            if tensor.grad is not None:
                tensor.grad.data = convert(tensor.grad.data)
        return self

    def to(self, target=None, dtype=None, *, device=None) -> Module:
        """Move and/or cast floating tensors, in place: ``to("gpu")``, ``to(mg.float64)``,
        ``to(device="gpu", dtype=mg.float32)``, or ``to(tensor)`` (its device and dtype)."""
        if isinstance(target, Tensor):
            device, dtype = target.device, target.dtype
        elif isinstance(target, str):
            device = target
        elif target is not None:
            dtype = target
        device = None if device is None else backend.canonical_device(device)
        if dtype is not None and numpy.dtype(dtype).kind != "f":
            raise TypeError(
                f"Module.to only accepts floating point dtypes, got {numpy.dtype(dtype)}"
            )

        def convert(array):
            if device is not None:
                array = backend.to_device(array, device)
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype, copy=False)
            return array

        return self._convert(convert)

    def float(self) -> Module:
        return self.to(numpy.float32)

    def double(self) -> Module:
        return self.to(numpy.float64)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self) -> Module:
        return self.to("gpu")

    # ---- state dicts ------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict of every parameter and persistent buffer under PyTorch's keys.

        Values share their arrays with the module (detached unless ``keep_vars``)."""
        destination = OrderedDict() if destination is None else destination
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = buffer if keep_vars else buffer.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _local_state(self) -> dict:
        """This module's own parameters and persistent buffers, by name (no descendants)."""
        state = {name: p for name, p in self._parameters.items() if p is not None}
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                state[name] = buffer
        return state

    def _match_state(self, keys: dict, prefix: str, plan: dict) -> None:
        """Walk the modules as PyTorch's ``load_state_dict`` does (depth first, shared
        modules under each of their names, each seeing the ``keys`` under its ``prefix``
        in the state dict's order), filling ``plan``: (key, target) pairs, missing
        keys, and unexpected ones: a key with a dot whose head is not a child, or a key
        without one that names no parameter or persistent buffer here."""
        local = self._local_state()
        for name, target in local.items():
            key = prefix + name
            if key in keys:
                plan["pairs"].append((key, target))
            else:
                plan["missing"].append(key)
        for key in keys:
            head, dot, _ = key[len(prefix) :].partition(".")
            if (head not in self._modules) if dot else (head not in local):
                plan["unexpected"].append(key)
        for name, child in self._modules.items():
            if child is not None:
                child_prefix = f"{prefix}{name}."
                below = dict.fromkeys(key for key in keys if key.startswith(child_prefix))
                child._match_state(below, child_prefix, plan)

    def load_state_dict(self, state_dict, strict: bool = True) -> _IncompatibleKeys:
        """Copy ``state_dict``'s values into this module's parameters and buffers, in place.

        Values may be Tensors, numpy or cupy arrays, or PyTorch tensors. Shape mismatches
        always raise; missing and unexpected keys raise when ``strict``. The error names every
        offending key, in PyTorch's order and wording. Nothing is copied unless everything
        fits. Returns ``(missing_keys, unexpected_keys)``.
        """
        plan = {"pairs": [], "missing": [], "unexpected": []}
        self._match_state(dict.fromkeys(state_dict), "", plan)
        missing, unexpected = plan["missing"], plan["unexpected"]
        errors, arrays = [], []
        for key, target in plan["pairs"]:
            array = _host_array(state_dict[key], key)
            if tuple(array.shape) != target.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} "
                    f"from checkpoint, the shape in current model is {target.shape}."
                )
                continue
            arrays.append((target, array))
        if strict:
            if unexpected:
                names = ", ".join(f'"{k}"' for k in unexpected)
                errors.insert(0, f"Unexpected key(s) in state_dict: {names}. ")
            if missing:
                names = ", ".join(f'"{k}"' for k in missing)
                errors.insert(0, f"Missing key(s) in state_dict: {names}. ")
        if errors:
            details = "\n\t".join(errors)
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t{details}"
            )
        with no_grad():
            for target, array in arrays:
                array = backend.to_device(array, target.device)
                target.data[...] = array.astype(target.dtype, copy=False)
        return _IncompatibleKeys(missing, unexpected)

    # ---- hooks and summary ------------------------------------------------------------
    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, args, output)`` runs after ``forward``; a non-None result replaces
        the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, args)`` runs before ``forward``; a non-None result replaces the
        positional arguments."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def summary(self, input_size, batch_size: int = 1, device=None, dtype=numpy.float32):
        """A torchsummary-style table of every layer: output shape and parameter count.

        Runs one forward pass of a zero batch of ``(batch_size, *input_size)`` in eval mode
        without grad, recording each leaf layer's output through forward hooks; restores
        the modes afterwards. ``print(model.summary((3, 128, 128)))`` shows it.
        """
        from layers.summary import summarize

        return summarize(self, input_size, batch_size, device, dtype)

    # ---- printing ---------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"
