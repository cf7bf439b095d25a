"""Learning-rate schedulers, as ``torch.optim.lr_scheduler``: same names, arguments, formulas.

Each scheduler sets ``group["lr"]`` of its optimizer's param groups when :meth:`step` is
called (once per epoch, or per batch for :class:`OneCycleLR`), after ``optimizer.step()``.
The chainable schedulers update the current lr recursively from the previous one, as
PyTorch's ``get_lr`` does, and keep PyTorch's closed forms (``_get_closed_form_lr``) for
``step(epoch)`` and for :class:`SequentialLR`'s milestones, so the sequences agree with
PyTorch's to the last bit. ``state_dict()`` holds every attribute but the optimizer, with
PyTorch's names; it contains only numbers, strings, lists and dicts, so it survives a JSON
round trip (:class:`MultiStepLR` turns its milestone keys back into ints).

One file per family: :mod:`.base` (``LRScheduler`` and the shared machinery), :mod:`.step`
(``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``LinearLR``), :mod:`.cosine`, :mod:`.plateau`,
:mod:`.one_cycle` and :mod:`.sequential`; every scheduler is importable from here.

    scheduler = CosineAnnealingLR(optimizer, T_max=epochs)
    for epoch in range(epochs):
        train_one_epoch(optimizer)      # optimizer.step() per batch
        scheduler.step()
"""

from minigrad.optim.lr_scheduler.base import LRScheduler
from minigrad.optim.lr_scheduler.cosine import CosineAnnealingLR
from minigrad.optim.lr_scheduler.one_cycle import OneCycleLR
from minigrad.optim.lr_scheduler.plateau import ReduceLROnPlateau
from minigrad.optim.lr_scheduler.sequential import SequentialLR
from minigrad.optim.lr_scheduler.step import ExponentialLR, LinearLR, MultiStepLR, StepLR

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
