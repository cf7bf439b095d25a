"""The branch a forward pass takes, recorded and imposed: ReLU masks and max-pool indices.

Float32 and float64 runs of the same network can take different branches where a ReLU input
or a max-pool near-tie rounds the other way; the gradient is discontinuous there, so their
difference then measures branch luck, not rounding. :class:`Decisions` records a run's
decisions and makes another run (float64, or the other framework) take them, for minigrad
(:class:`Minigrad`) and PyTorch (:class:`Torch`) alike. ``benchmarks.models --accuracy``
uses it for its matched figure, and the model parity tests to compare the two frameworks on
one branch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as TF

import layers
import minigrad as mg
import minigrad.functional as F


def gradients_ours(model, x, y) -> dict:
    """Parameter gradients (float64 arrays) of one cross-entropy step of our model."""
    model.zero_grad()
    F.cross_entropy(model(mg.tensor(x)), mg.tensor(y)).backward()
    return {k: p.grad.numpy().astype(np.float64) for k, p in model.named_parameters()}


def gradients_torch(model, x, y) -> dict:
    """The same for a PyTorch model."""
    model.zero_grad()
    TF.cross_entropy(model(torch.tensor(x)), torch.tensor(y)).backward()
    return {k: p.grad.double().numpy() for k, p in model.named_parameters()}


def _pool_arguments(module) -> dict:
    """The keyword arguments of a max-pool module (either framework's) for its functional
    form, asking for the argmax indices."""
    return {
        "kernel_size": module.kernel_size,
        "stride": module.stride,
        "padding": module.padding,
        "dilation": module.dilation,
        "ceil_mode": module.ceil_mode,
        "return_indices": True,
    }


class Minigrad:
    """What :class:`Decisions` needs of minigrad: its layers, its gradient step and the ops
    that read or impose a decision (mask products and index gathers stay differentiable)."""

    relu, max_pool = layers.ReLU, layers.MaxPool2d
    gradients = staticmethod(gradients_ours)

    @staticmethod
    def array(x) -> np.ndarray:
        return x.detach().numpy()

    @staticmethod
    def keep(module, x):
        """Nothing to protect: our ReLU returns a new tensor even with ``inplace=True``."""
        return None

    @staticmethod
    def pool_indices(module, x) -> np.ndarray:
        with mg.no_grad():
            _, indices = F.max_pool2d(x, **_pool_arguments(module))
        return indices.numpy()

    @staticmethod
    def masked(x, mask: np.ndarray):
        return x * mg.tensor(mask.astype(x.dtype), device=x.device)

    @staticmethod
    def gathered(x, indices: np.ndarray):
        """(N, C, H, W) input at (N, C, Ho, Wo) flat per-plane indices: one flat gather."""
        n, c, h, w = x.shape
        planes = np.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * (h * w)
        return x.reshape(-1)[(planes + indices).reshape(-1)].reshape(indices.shape)

    @staticmethod
    def index_tensor(indices: np.ndarray):
        return mg.tensor(indices)


class Torch:
    """The same for PyTorch; ``nn.ReLU(inplace=True)`` gets a clone to overwrite, so the
    hook still holds its input."""

    relu, max_pool = torch.nn.ReLU, torch.nn.MaxPool2d
    gradients = staticmethod(gradients_torch)

    @staticmethod
    def array(x) -> np.ndarray:
        return x.detach().numpy()

    @staticmethod
    def keep(module, x):
        return (x.clone(),) if module.inplace else None

    @staticmethod
    def pool_indices(module, x) -> np.ndarray:
        with torch.no_grad():
            _, indices = TF.max_pool2d(x, **_pool_arguments(module))
        return indices.numpy()

    @staticmethod
    def masked(x, mask: np.ndarray):
        return x * torch.from_numpy(mask).to(x.dtype)

    @staticmethod
    def gathered(x, indices: np.ndarray):
        index = torch.from_numpy(indices)
        return x.flatten(2).gather(2, index.flatten(2)).view_as(index)

    @staticmethod
    def index_tensor(indices: np.ndarray):
        return torch.from_numpy(indices)


class Decisions:
    """The branch a forward takes: at each ReLU call its mask ``input > 0``, at each max-pool
    call its argmax indices (flat in each H*W plane), in call order.

    Without ``imposed``, the hooks only record. With ``imposed`` (the ``masks`` and
    ``indices`` of another run of the same model), each ReLU returns ``input * mask`` and
    each max pool ``input`` gathered at the imposed indices, so the forward and its gradient
    follow that run's branch, and ``flips`` counts the decisions this run would have taken
    otherwise. Only ReLU and MaxPool2d modules are hooked: the models call no functional
    ReLU or pooling, and every other op they use is continuous.

    Use as ``with Decisions(Minigrad, model) as d: grads = d.gradients(x, y)``.
    """

    def __init__(self, framework, model, imposed: Decisions | None = None):
        self.framework, self.model, self.imposed = framework, model, imposed
        self.masks: list[np.ndarray] = []
        self.indices: list[np.ndarray] = []
        self.flips = {"relu": 0, "max_pool": 0}
        self._handles: list = []
        self._pending = None

    def __enter__(self) -> Decisions:
        fw = self.framework
        for module in self.model.modules():
            if isinstance(module, fw.relu):
                self._handles.append(module.register_forward_pre_hook(self._relu_input))
                self._handles.append(module.register_forward_hook(self._relu_output))
            elif isinstance(module, fw.max_pool):
                self._handles.append(module.register_forward_hook(self._pool_output))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def gradients(self, x, y) -> dict:
        """Parameter gradients (float64 arrays) of one cross-entropy step, and a check that
        an imposed run met exactly as many decisions as the run it follows."""
        self.masks.clear()
        self.indices.clear()
        grads = self.framework.gradients(self.model, x, y)
        if self.imposed is not None:
            counts = (len(self.masks), len(self.indices))
            wanted = (len(self.imposed.masks), len(self.imposed.indices))
            if counts != wanted:
                raise RuntimeError(
                    f"Decisions: this run met {counts} (ReLU, max-pool) calls, the imposed "
                    f"run {wanted}"
                )
        return grads

    def _next(self, own: list, imposed: list, decision: np.ndarray, kind: str) -> np.ndarray:
        """Record this call's own decision; return the one to follow (the imposed one)."""
        own.append(decision)
        if self.imposed is None:
            return decision
        call = len(own) - 1
        if call >= len(imposed):
            raise RuntimeError(
                f"Decisions: {kind} call {call} has no imposed decision (the imposed run "
                f"made {len(imposed)})"
            )
        target = imposed[call]
        if target.shape != decision.shape:
            raise RuntimeError(
                f"Decisions: {kind} call {call} has shape {decision.shape}, the imposed one "
                f"{target.shape}"
            )
        self.flips[kind] += int(np.count_nonzero(target != decision))
        return target

    def _relu_input(self, module, args):
        (x,) = args
        wanted = self.imposed.masks if self.imposed is not None else None
        mask = self._next(self.masks, wanted, self.framework.array(x) > 0, "relu")
        if self.imposed is None:
            return None
        self._pending = (x, mask)
        return self.framework.keep(module, x)

    def _relu_output(self, module, args, output):
        if self.imposed is None:
            return None
        (x, mask), self._pending = self._pending, None
        return self.framework.masked(x, mask)

    def _pool_output(self, module, args, output):
        fw, x = self.framework, args[0]
        wanted = self.imposed.indices if self.imposed is not None else None
        indices = self._next(self.indices, wanted, fw.pool_indices(module, x), "max_pool")
        if self.imposed is None:
            return None
        pooled = fw.gathered(x, indices)
        return (pooled, fw.index_tensor(indices)) if module.return_indices else pooled
