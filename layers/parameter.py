"""``Parameter``: a Tensor that a Module registers as one of its learnable weights.

As in PyTorch it is a ``Tensor`` subclass, a leaf that requires grad by default, and
``Parameter(t)`` shares ``t``'s array rather than copying it.
"""

from __future__ import annotations

from minigrad.tensor import Tensor


class Parameter(Tensor):
    """A learnable tensor; assigning one to a Module attribute registers it.

    Args:
        data: a Tensor (its array is shared), or anything ``mg.tensor`` takes (copied).
            None gives an empty float32 tensor, as ``torch.nn.Parameter()``.
        requires_grad: whether the optimizer should update it (default True).
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            super().__init__([], requires_grad=False)
        elif isinstance(data, Tensor):
            self.data = data.data
            self.grad = None
            self.grad_fn = None
            self.requires_grad = False
        else:
            super().__init__(data, requires_grad=False)
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
