"""Pixel-wise cross entropy: ``CrossEntropyLoss`` (multiclass, with seed 001's class weights)
and ``BCEWithLogitsLoss`` (binary): ``layers``' torch.nn twins that also take numpy/cupy
targets, (N, H, W) binary targets, and class weights as lists or arrays."""

from __future__ import annotations

import numpy

import layers
from minigrad import backend
from minigrad.tensor import Tensor
from segmentation.losses._base import as_buffer, binary_target, check_logits, target_array


class CrossEntropyLoss(layers.CrossEntropyLoss):
    """Softmax cross entropy per pixel: ``layers.CrossEntropyLoss`` (``torch.nn``'s arguments,
    ``weight`` buffer) taking targets as Tensors or numpy/cupy arrays.

    For logits ``x`` (N, C, H, W) and class ``t`` at a pixel, with ``q = log softmax(x)``,
    class weights ``w`` (ones when None) and smoothing ``eps``:
    ``loss = -(1 - eps) * w[t] * q[t] - eps / C * sum_c w[c] * q[c]``;
    pixels labelled ``ignore_index`` count for nothing, and ``"mean"`` divides the sum by
    ``sum w[t]`` over the counted pixels (PyTorch's rule). Targets may also be class
    probabilities of the input's shape (soft labels), as in PyTorch.

    Args:
        weight: optional (C,) class weights (see :func:`class_weights_from_frequency`): a
            Tensor, list or array, kept as the ``weight`` buffer; it must be on the logits'
            device (``loss.to(device)``), its dtype follows the logits'.
        size_average, reduce: PyTorch's legacy arguments (use ``reduction``).
        ignore_index: the label of pixels that do not count.
        reduction: "mean", "sum" or "none" ((N, H, W) losses).
        label_smoothing: ``eps`` in [0, 1].

    Shapes:
        input: (N, C, *) logits. target: (N, *) integer classes, or (N, C, *) probabilities;
        a numpy/cupy array is moved to the logits' device. output: () or (N, *) for "none".
    """

    def __init__(
        self,
        weight=None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        weight = as_buffer("CrossEntropyLoss", "weight", weight)
        super().__init__(weight, size_average, ignore_index, reduce, reduction, label_smoothing)

    def forward(self, input: Tensor, target) -> Tensor:
        check_logits("CrossEntropyLoss", input)
        t = Tensor(target_array("CrossEntropyLoss", target, input))
        return super().forward(input, t.to(input.dtype) if t.dtype.kind == "f" else t)


class BCEWithLogitsLoss(layers.BCEWithLogitsLoss):
    """Sigmoid + binary cross entropy per element: ``layers.BCEWithLogitsLoss`` (``torch.nn``'s
    arguments, ``weight`` and ``pos_weight`` buffers) taking (N, H, W) targets for
    (N, 1, H, W) logits, of any numeric dtype, as Tensors or numpy/cupy arrays.

    ``loss = -w * (pw * t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x)))``, computed
    stably from the logits; ``"mean"`` averages over all elements.

    Args:
        weight: optional rescaling of each element, broadcastable to the input.
        size_average, reduce: PyTorch's legacy arguments (use ``reduction``).
        reduction: "mean", "sum" or "none".
        pos_weight: optional weight ``pw`` of positive targets, broadcastable to the input as in
            PyTorch (for per-class weights on (N, C, H, W) logits give shape (C, 1, 1)).
        Tensors, lists or arrays; they must be on the logits' device (``loss.to(device)``).

    Shapes:
        input: (N, C, *) logits. target: the input's shape, or (N, *) when C = 1; float, int or
        bool, converted to the input's dtype.
    """

    def __init__(
        self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None
    ):
        op = "BCEWithLogitsLoss"
        weight, pos_weight = (
            as_buffer(op, "weight", weight),
            as_buffer(op, "pos_weight", pos_weight),
        )
        super().__init__(weight, size_average, reduce, reduction, pos_weight)

    def forward(self, input: Tensor, target) -> Tensor:
        check_logits("BCEWithLogitsLoss", input)
        t, _ = binary_target("BCEWithLogitsLoss", target, input, None)
        return super().forward(input, Tensor(t.reshape(input.shape)))


def class_weights_from_frequency(
    masks_or_counts, num_classes: int, ignore_index: int | None = None
) -> numpy.ndarray:
    """Class weights that favour rare classes: seed 001's ``w_c = 1 - n_c / sum_k n_c``.

    This is Eq. (2) of seed 001 (001_e8a982c91de0b336.txt, "Class-Weighted Loss"): ``n_c`` is
    the pixel count of class ``c`` over the training set. It is not an inverse frequency and is
    not normalised: the weights lie in [0, 1] and sum to ``C - 1``; a class that never occurs
    gets weight 1.

    Args:
        masks_or_counts: a 1-D array of the ``num_classes`` pixel counts; or integer masks: one
            array (or Tensor) of 2 or more dims, or an iterable of them (e.g. a dataset's
            masks), numpy or cupy. Only the per-class counts leave the device.
        num_classes: C.
        ignore_index: a mask label that is not counted (e.g. 255 for void), or None.

    Returns:
        (C,) float32 numpy array.

    Raises:
        ValueError: counts of the wrong length or negative, a mask label outside [0, C) that is
        not ``ignore_index``, or no pixel counted at all. TypeError: non-integer masks.
    """
    op = "class_weights_from_frequency"
    if isinstance(masks_or_counts, Tensor):
        masks_or_counts = masks_or_counts.data
    if backend.is_array(masks_or_counts) and masks_or_counts.ndim == 1:
        counts = backend.to_host(masks_or_counts).astype(numpy.float64)
        if counts.shape != (num_classes,) or (counts < 0).any():
            raise ValueError(
                f"{op}: counts must be {num_classes} non-negative numbers, got {counts.tolist()}"
            )
    else:
        masks = [masks_or_counts] if backend.is_array(masks_or_counts) else masks_or_counts
        counts = sum(
            (_class_counts(op, m, num_classes, ignore_index) for m in masks),
            numpy.zeros(num_classes, dtype=numpy.float64),
        )
    total = counts.sum()
    if total <= 0:
        raise ValueError(f"{op}: no pixel counted, so class frequencies are undefined")
    return (1.0 - counts / total).astype(numpy.float32)


def _class_counts(op: str, mask, num_classes: int, ignore_index) -> numpy.ndarray:
    """(C,) pixel counts of one integer mask, by one bincount on its device."""
    if isinstance(mask, Tensor):
        mask = mask.data
    if not backend.is_array(mask) or mask.dtype.kind not in "iu":
        kind = getattr(mask, "dtype", type(mask).__name__)
        raise TypeError(f"{op}: masks must be integer arrays, got {kind}")
    xp = backend.get_array_module(mask)
    labels = mask.ravel()
    if not labels.size:
        return numpy.zeros(num_classes, dtype=numpy.float64)
    ignored = None if ignore_index is None else labels == ignore_index
    counted = labels if ignored is None else xp.where(ignored, 0, labels)
    low, high = int(counted.min()), int(counted.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{op}: masks hold labels in [{low}, {high}]; expected [0, {num_classes - 1}] "
            f"or ignore_index={ignore_index}"
        )
    bins = labels if ignored is None else xp.where(ignored, num_classes, labels)
    counts = xp.bincount(bins, minlength=num_classes + 1)
    return backend.to_host(counts[:num_classes]).astype(numpy.float64)
