"""Segmentation metrics from integer predictions and targets, on numpy or cupy arrays.

* :class:`ConfusionMatrix` accumulates a dataset-level (C, C) matrix over batches, one
  ``bincount`` per batch on the arrays' device; IoU, Dice and pixel accuracy follow from it.
* :func:`get_stats` gives per-image, per-class TP/FP/FN/TN counts (one ``bincount`` for the
  batch), and :func:`iou_score` / :func:`f1_score` reduce them with
  segmentation_models_pytorch's reductions ("micro", "macro", "micro-imagewise",
  "macro-imagewise").
* :func:`roc_curve` and :func:`auc` follow scikit-learn; :func:`roc_curve_per_class` and
  :func:`roc_auc_per_class` apply them one-vs-rest to class probabilities (N, C, H, W).

Inputs may be numpy or cupy arrays, or Tensors (their ``.data`` is read). Labels are never
moved to the host; only small results (C x C counts, scalars) are.
"""

from __future__ import annotations

import math
import warnings

import numpy

from minigrad import backend
from minigrad.tensor import Tensor

REDUCTIONS = ("micro", "macro", "micro-imagewise", "macro-imagewise", "none", None)


def _array(op: str, name: str, value):
    """The numpy or cupy array behind ``value`` (a Tensor's ``.data``)."""
    if isinstance(value, Tensor):
        return value.data
    if backend.is_array(value):
        return value
    raise TypeError(
        f"{op}: {name} must be a numpy/cupy array or a Tensor, got {type(value).__name__}"
    )


def _labels(op: str, pred, target) -> tuple:
    """Integer ``pred`` and ``target`` arrays of one shape on one device."""
    pred, target = _array(op, "pred", pred), _array(op, "target", target)
    for name, a in (("pred", pred), ("target", target)):
        if a.dtype.kind not in "biu":
            raise TypeError(f"{op}: {name} must hold integer labels, got dtype {a.dtype}")
    if pred.shape != target.shape:
        raise ValueError(
            f"{op}: pred of shape {pred.shape} and target of shape {target.shape} differ"
        )
    devices = backend.device_of(pred), backend.device_of(target)
    if devices[0] != devices[1]:
        raise backend.DeviceError(f"{op}: pred is on {devices[0]} but target is on {devices[1]}")
    return pred.astype(numpy.int64, copy=False), target.astype(numpy.int64, copy=False)


def _counted(op: str, pred, target, num_classes: int, ignore_index):
    """The bool mask of pixels that count: target not ``ignore_index``, both labels in range.

    On the host a label out of range (and not ignored) raises; on the GPU such a pixel is
    left out instead (checking would copy to the host on every batch).
    """
    valid = target != ignore_index if ignore_index is not None else None
    in_range = (target >= 0) & (target < num_classes) & (pred >= 0) & (pred < num_classes)
    counted = in_range if valid is None else in_range & valid
    if backend.is_cpu_array(target):
        bad = ~in_range if valid is None else valid & ~in_range
        if bad.any():
            where = tuple(int(i) for i in numpy.unravel_index(numpy.flatnonzero(bad)[0], bad.shape))
            raise ValueError(
                f"{op}: pred {int(pred[where])} / target {int(target[where])} at {where}: labels "
                f"must be in [0, {num_classes - 1}] (or ignore_index={ignore_index} in target)"
            )
    return counted


def _divide(numerator, denominator):
    """``numerator / denominator`` in float64, NaN where the denominator is 0 (no warning)."""
    xp = backend.get_array_module(denominator)
    denominator = xp.where(denominator == 0, xp.nan, denominator.astype(xp.float64))
    return numerator / denominator


class ConfusionMatrix:
    """A (C, C) confusion matrix accumulated over batches: ``matrix[i, j]`` counts pixels of
    target class ``i`` predicted as ``j``. Pixels whose target is ``ignore_index`` are left out.

    Each :meth:`update` is one ``bincount`` of ``C * target + pred`` on the labels' device
    (numpy or cupy); the matrix stays there.

    Args:
        num_classes: C.
        ignore_index: target label of pixels that do not count, or None.

    Example:
        ``cm = ConfusionMatrix(3); cm.update(logits.argmax(1), masks); cm.mean_iou()``
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        if int(num_classes) < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        """Forget every count (the matrix becomes host zeros until the next update)."""
        self._matrix = numpy.zeros((self.num_classes, self.num_classes), dtype=numpy.int64)

    @property
    def matrix(self):
        """The (C, C) int64 counts, rows = target class, columns = predicted class."""
        return self._matrix

    def update(self, pred, target) -> None:
        """Add one batch: integer ``pred`` and ``target`` of one shape, e.g. (N, H, W)."""
        pred, target = _labels("ConfusionMatrix.update", pred, target)
        c = self.num_classes
        counted = _counted("ConfusionMatrix.update", pred, target, c, self.ignore_index)
        xp = backend.get_array_module(target)
        bins = xp.where(counted, c * target + pred, c * c).ravel()
        counts = xp.bincount(bins, minlength=c * c + 1)[: c * c].reshape(c, c)
        if backend.device_of(self._matrix) != backend.device_of(counts):
            if self._matrix.any():
                raise backend.DeviceError(
                    f"ConfusionMatrix.update: the matrix is on {backend.device_of(self._matrix)} "
                    f"but this batch is on {backend.device_of(counts)}; reset() first"
                )
            self._matrix = xp.zeros((c, c), dtype=numpy.int64)
        self._matrix += counts

    def _per_class(self) -> tuple:
        """(true positives, predicted totals, target totals), each (C,)."""
        xp = backend.get_array_module(self._matrix)
        return xp.diagonal(self._matrix), self._matrix.sum(axis=0), self._matrix.sum(axis=1)

    def iou(self):
        """(C,) float64 ``TP / (TP + FP + FN)`` per class; NaN for a class absent from both
        predictions and targets."""
        tp, predicted, true = self._per_class()
        return _divide(tp, predicted + true - tp)

    def dice(self):
        """(C,) float64 ``2 TP / (2 TP + FP + FN)`` per class; NaN where the class is absent
        from both."""
        tp, predicted, true = self._per_class()
        return _divide(2 * tp, predicted + true)

    def mean_iou(self) -> float:
        """Mean of :meth:`iou` over the classes present in predictions or targets (NaN if
        none)."""
        return _nanmean(self.iou())

    def mean_dice(self) -> float:
        """Mean of :meth:`dice` over the classes present in predictions or targets."""
        return _nanmean(self.dice())

    def pixel_accuracy(self) -> float:
        """Correct pixels / counted pixels (NaN before any pixel was counted)."""
        xp = backend.get_array_module(self._matrix)
        return float(_divide(xp.trace(self._matrix), self._matrix.sum()))


def _nanmean(values) -> float:
    """The mean of the non-NaN entries, NaN (without a warning) when all are NaN."""
    xp = backend.get_array_module(values)
    present = ~xp.isnan(values)
    return float(_divide(xp.where(present, values, 0).sum(), present.sum()))


def mean_iou(pred, target, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean IoU of one batch (or dataset): :meth:`ConfusionMatrix.mean_iou` of its matrix."""
    matrix = ConfusionMatrix(num_classes, ignore_index)
    matrix.update(pred, target)
    return matrix.mean_iou()


def get_stats(pred, target, num_classes: int, ignore_index: int | None = None) -> tuple:
    """Per-image, per-class TP, FP, FN, TN pixel counts, as smp's ``get_stats`` in
    "multiclass" mode.

    For image ``n`` and class ``c``: ``TP`` = pixels with pred = target = c, ``FP`` = pred c,
    target not c, ``FN`` = target c, pred not c, ``TN`` = the rest; pixels whose target is
    ``ignore_index`` count in none of them. One ``bincount`` of ``(n * C + target) * C + pred``
    computes all N per-image confusion matrices.

    Args:
        pred, target: (N, *) integer labels (numpy, cupy or Tensors).
        num_classes: C.
        ignore_index: target label to leave out; outside [0, C) as smp requires.

    Returns:
        ``(tp, fp, fn, tn)``, each (N, C) int64 on the labels' device.
    """
    op = "get_stats"
    pred, target = _labels(op, pred, target)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ValueError(
            f"{op}: ignore_index={ignore_index} must lie outside the classes [0, {num_classes - 1}]"
        )
    if pred.ndim < 1:
        raise ValueError(f"{op}: labels must have shape (N, *), got a 0-d array")
    xp = backend.get_array_module(target)
    n, c = pred.shape[0], num_classes
    counted = _counted(op, pred, target, c, ignore_index).reshape(n, -1)
    image = xp.arange(n, dtype=numpy.int64)[:, None]
    flat = (image * c + target.reshape(n, -1)) * c + pred.reshape(n, -1)
    bins = xp.where(counted, flat, n * c * c).ravel()
    matrices = xp.bincount(bins, minlength=n * c * c + 1)[: n * c * c].reshape(n, c, c)
    tp = xp.diagonal(matrices, axis1=1, axis2=2)
    fp = matrices.sum(axis=1) - tp
    fn = matrices.sum(axis=2) - tp
    tn = matrices.sum(axis=(1, 2))[:, None] - tp - fp - fn
    return tp.copy(), fp, fn, tn


def _reduce(score_fn, tp, fp, fn, tn, reduction, zero_division: float):
    """smp's ``_compute_metric``: where the counts are summed before ``score_fn`` and how the
    scores are averaged. NaN scores (0 / 0) become ``zero_division``, except in "micro"."""
    check = reduction if reduction is None else str(reduction)
    if check not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    xp = backend.get_array_module(tp)

    def settled(score):
        return xp.where(xp.isnan(score), zero_division, score)

    if reduction == "micro":
        return float(score_fn(tp.sum(), fp.sum(), fn.sum(), tn.sum()))
    if reduction == "macro":
        return float(settled(score_fn(tp.sum(0), fp.sum(0), fn.sum(0), tn.sum(0))).mean())
    if reduction == "micro-imagewise":
        return float(settled(score_fn(tp.sum(1), fp.sum(1), fn.sum(1), tn.sum(1))).mean())
    if reduction == "macro-imagewise":
        return float(settled(score_fn(tp, fp, fn, tn)).mean(axis=0).mean())
    return settled(score_fn(tp, fp, fn, tn))


def _iou(tp, fp, fn, tn):
    return _divide(tp, tp + fp + fn)


def _f1(tp, fp, fn, tn):
    return _divide(2 * tp, 2 * tp + fn + fp)


def iou_score(tp, fp, fn, tn, reduction: str | None = None, zero_division: float = 1.0):
    """IoU ``TP / (TP + FP + FN)`` from :func:`get_stats` counts, as smp's ``iou_score``.

    Reductions (smp's): "micro" sums all counts, then scores (NaN if empty); "macro" sums over
    images, scores each class, averages classes; "micro-imagewise" sums over classes, scores
    each image, averages images; "macro-imagewise" scores each (image, class), averages over
    images then classes; "none"/None returns the (N, C) scores. A 0/0 score becomes
    ``zero_division`` (smp's default 1.0) in all but "micro".

    Returns:
        A float, or the (N, C) float64 array for "none"/None.
    """
    return _reduce(_iou, tp, fp, fn, tn, reduction, zero_division)


def f1_score(tp, fp, fn, tn, reduction: str | None = None, zero_division: float = 1.0):
    """F1 (Dice) ``2 TP / (2 TP + FP + FN)``, reduced as :func:`iou_score`."""
    return _reduce(_f1, tp, fp, fn, tn, reduction, zero_division)


def roc_curve(scores, target, drop_intermediate: bool = True) -> tuple:
    """Binary ROC curve, as ``sklearn.metrics.roc_curve`` (scikit-learn >= 1.3).

    The scores are sorted once in decreasing order; each distinct score is a threshold, and
    the true/false positive counts at it are cumulative sums up to its last occurrence. A
    point (0, 0) with threshold ``inf`` starts the curve. With ``drop_intermediate`` (the
    default, as in scikit-learn) a point is dropped when both its FP and TP counts lie on a
    straight line through its neighbours (a zero second difference of both), i.e. it is
    collinear with them on a plotted ROC and changes neither the curve nor its AUC; the
    first and last points are always kept. Without it every distinct threshold is returned.

    Args:
        scores: real scores, any shape (numpy, cupy or Tensor); higher means positive.
        target: the same shape, 1 (or True) for positives, 0 for negatives.
        drop_intermediate: drop suboptimal collinear points.

    Returns:
        ``(fpr, tpr, thresholds)``: 1-D arrays on the scores' device; ``thresholds`` are
        decreasing, starting with ``inf``. With no negative (positive) target ``fpr``
        (``tpr``) is NaN, with a warning, as in scikit-learn.
    """
    op = "roc_curve"
    scores, target = _array(op, "scores", scores).ravel(), _array(op, "target", target).ravel()
    if scores.shape != target.shape:
        raise ValueError(f"{op}: {scores.size} scores but {target.size} targets")
    if not scores.size:
        raise ValueError(f"{op}: no scores given")
    if bool(((target != 0) & (target != 1)).any()):
        raise ValueError(f"{op}: target must be binary (0 or 1)")
    fps, tps, thresholds = _roc_counts(scores, target == 1, drop_intermediate)
    return _rate(fps, "negative", True), _rate(tps, "positive", True), thresholds


def _roc_counts(scores, positive, drop_intermediate: bool) -> tuple:
    """False and true positive counts (int64) and the thresholds of the ROC points."""
    xp = backend.get_array_module(scores)
    order = xp.argsort(scores)[::-1]
    scores, positive = scores[order], positive[order]
    last = xp.concatenate([xp.flatnonzero(xp.diff(scores)), xp.asarray([scores.size - 1])])
    tps = xp.cumsum(positive, dtype=numpy.int64)[last]
    fps = 1 + last - tps
    thresholds = scores[last]
    if drop_intermediate and fps.size > 2:
        bends = (xp.diff(fps, 2) != 0) | (xp.diff(tps, 2) != 0)
        keep = xp.flatnonzero(xp.concatenate([xp.asarray([True]), bends, xp.asarray([True])]))
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    zero = xp.zeros(1, dtype=numpy.int64)
    dtype = thresholds.dtype if thresholds.dtype.kind == "f" else numpy.float64
    start = xp.full(1, xp.inf, dtype=dtype)
    thresholds = xp.concatenate([start, thresholds.astype(dtype, copy=False)])
    return xp.concatenate([zero, fps]), xp.concatenate([zero, tps]), thresholds


def _rate(counts, kind: str, warn: bool):
    """``counts / counts[-1]``, NaN (with a warning if ``warn``) when no sample is ``kind``."""
    total = counts[-1]
    if warn and int(total) <= 0:
        warnings.warn(
            f"roc_curve: no {kind} sample in target, so the "
            f"{'false' if kind == 'negative' else 'true'} positive rate is undefined (NaN)",
            RuntimeWarning,
            stacklevel=3,
        )
    return _divide(counts, total)


def auc(x, y) -> float:
    """Area under the curve ``y(x)`` by the trapezoidal rule, as ``sklearn.metrics.auc``.

    Args:
        x: 1-D, monotonic (increasing, or decreasing for a negative orientation that is undone).
        y: 1-D, the same length.

    Raises:
        ValueError: fewer than 2 points, different lengths, or ``x`` not monotonic.
    """
    x, y = _array("auc", "x", x).ravel(), _array("auc", "y", y).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"auc: needs x and y of one length >= 2, got {x.size} and {y.size}")
    dx = x[1:] - x[:-1]
    direction = 1.0
    if bool((dx < 0).any()):
        if not bool((dx <= 0).all()):
            raise ValueError("auc: x is neither increasing nor decreasing")
        direction = -1.0
    return direction * float((dx * (y[1:] + y[:-1])).sum()) / 2.0


def roc_curve_per_class(
    probs, target, num_classes: int, ignore_index: int | None = None, drop_intermediate=True
) -> list:
    """One-vs-rest ROC curve of each class from class probabilities (or any scores).

    Args:
        probs: (N, C, *) scores (numpy, cupy or Tensor).
        target: (N, *) integer labels.
        num_classes: C, which must match ``probs.shape[1]``.
        ignore_index: target label of pixels left out, or None.

    Returns:
        A list of C ``(fpr, tpr, thresholds)`` tuples (see :func:`roc_curve`).
    """
    return [
        roc_curve(scores, labels == c, drop_intermediate)
        for c, (scores, labels) in enumerate(_one_vs_rest(probs, target, num_classes, ignore_index))
    ]


def _one_vs_rest(probs, target, num_classes: int, ignore_index) -> list:
    """Per class ``c``: the 1-D scores ``probs[:, c]`` and labels of the counted pixels."""
    op = "roc_curve_per_class"
    probs, target = _array(op, "probs", probs), _array(op, "target", target)
    if probs.ndim < 2 or probs.shape[1] != num_classes:
        raise ValueError(f"{op}: probs must be (N, {num_classes}, *), got shape {probs.shape}")
    if target.shape != probs.shape[:1] + probs.shape[2:]:
        raise ValueError(
            f"{op}: target of shape {target.shape} does not match probs of shape {probs.shape}"
        )
    xp = backend.get_array_module(probs)
    per_class = xp.moveaxis(probs, 1, 0).reshape(num_classes, -1)
    labels = target.ravel()
    if ignore_index is not None:
        kept = labels != ignore_index
        per_class, labels = per_class[:, kept], labels[kept]
    return [(per_class[c], labels) for c in range(num_classes)]


def roc_auc_per_class(probs, target, num_classes: int, ignore_index: int | None = None):
    """(C,) float64 host array of one-vs-rest ROC AUCs, NaN (no warning) for a class without
    positive or without negative pixels."""
    areas = []
    for c, (scores, labels) in enumerate(_one_vs_rest(probs, target, num_classes, ignore_index)):
        fps, tps, _ = _roc_counts(scores, labels == c, drop_intermediate=True)
        fpr, tpr = _rate(fps, "negative", False), _rate(tps, "positive", False)
        areas.append(auc(fpr, tpr) if int(fps[-1]) and int(tps[-1]) else math.nan)
    return numpy.array(areas, dtype=numpy.float64)
