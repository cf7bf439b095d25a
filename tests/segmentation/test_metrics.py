"""segmentation.metrics against plain numpy written here pixel by pixel: the confusion matrix
and its IoU / Dice / accuracy, smp's per-image statistics and reductions, scikit-learn's ROC
curve (its documented example, an explicit threshold sweep) and AUC (the Mann-Whitney
statistic); on both devices, with ignored pixels and absent classes."""

import numpy as np
import pytest
from helpers import REAL_GPU, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend
from segmentation.metrics import (
    ConfusionMatrix,
    auc,
    f1_score,
    get_stats,
    iou_score,
    mean_iou,
    roc_auc_per_class,
    roc_curve,
    roc_curve_per_class,
)


def host(a):
    return backend.to_host(a)


def on(device, a):
    return mg.backend.array_module(device).asarray(a)


def labels(seed, shape, classes, ignore_index=None, absent=()):
    """(pred, target): random labels avoiding ``absent`` classes, a fifth of targets ignored."""
    rng = np.random.default_rng(seed)
    allowed = [k for k in range(classes) if k not in absent]
    pred = rng.choice(allowed, size=shape)
    target = rng.choice(allowed, size=shape)
    if ignore_index is not None:
        target = np.where(rng.random(shape) < 0.2, ignore_index, target)
    return pred.astype(np.int64), target.astype(np.int64)


# ---------------------------------------------------------------- numpy references


def reference_matrix(pred, target, classes, ignore_index):
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for p, t in zip(pred.ravel().tolist(), target.ravel().tolist(), strict=True):
        if t != ignore_index:
            matrix[t, p] += 1
    return matrix


def reference_scores(pred, target, classes, ignore_index):
    """Per-class IoU and Dice (NaN when absent from both), and pixel accuracy."""
    valid = target != ignore_index
    iou, dice = [], []
    for k in range(classes):
        p, t = (pred == k) & valid, (target == k) & valid
        both, either = (p & t).sum(), (p | t).sum()
        iou.append(both / either if either else np.nan)
        dice.append(2 * both / (p.sum() + t.sum()) if either else np.nan)
    right, counted = ((pred == target) & valid).sum(), valid.sum()
    return np.array(iou), np.array(dice), right / counted if counted else np.nan


def reference_stats(pred, target, classes, ignore_index):
    """tp, fp, fn, tn (N, C) by their definitions, image by image and class by class."""
    n = pred.shape[0]
    out = np.zeros((4, n, classes), dtype=np.int64)
    for i in range(n):
        valid = target[i] != ignore_index
        for k in range(classes):
            p, t = pred[i] == k, target[i] == k
            out[:, i, k] = [(p & t & valid).sum(), (p & ~t & valid).sum(),
                            (~p & t & valid).sum(), (~p & ~t & valid).sum()]  # fmt: skip
    return out


def reference_roc(scores, positive):
    """Every distinct threshold, highest first: (fpr, tpr, thresholds), from (0, 0, inf)."""
    thresholds = np.unique(scores)[::-1]
    tpr = [0.0] + [float((scores[positive] >= th).mean()) for th in thresholds]
    fpr = [0.0] + [float((scores[~positive] >= th).mean()) for th in thresholds]
    return np.array(fpr), np.array(tpr), np.concatenate([[np.inf], thresholds])


def mann_whitney(scores, positive):
    """P(score of a random positive > that of a random negative), ties counting 1/2."""
    pos, neg = scores[positive][:, None], scores[~positive][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


# ---------------------------------------------------------------- confusion matrix


@settings(max_examples=20)
@given(
    seed=seeds,
    classes=st.integers(1, 5),
    n=st.integers(1, 3),
    side=st.integers(1, 6),
    ignore_index=st.sampled_from([None, 255, -1, 0]),
    absent_last=st.booleans(),
)
def test_confusion_matrix_matches_numpy(device, seed, classes, n, side, ignore_index, absent_last):
    absent = (classes - 1,) if absent_last and classes > 1 else ()
    pred, target = labels(seed, (n, side, side + 1), classes, ignore_index, absent)
    cm = ConfusionMatrix(classes, ignore_index=ignore_index)
    cm.update(on(device, pred), on(device, target))
    assert backend.device_of(cm.matrix) == device
    np.testing.assert_array_equal(
        host(cm.matrix), reference_matrix(pred, target, classes, ignore_index)
    )
    iou, dice, accuracy = reference_scores(pred, target, classes, ignore_index)
    np.testing.assert_allclose(host(cm.iou()), iou, rtol=1e-12)
    np.testing.assert_allclose(host(cm.dice()), dice, rtol=1e-12)
    if np.isnan(iou).all():
        assert np.isnan(cm.mean_iou()) and np.isnan(cm.pixel_accuracy())
    else:
        assert cm.mean_iou() == pytest.approx(np.nanmean(iou), rel=1e-12)
        assert cm.mean_dice() == pytest.approx(np.nanmean(dice), rel=1e-12)
        assert cm.pixel_accuracy() == pytest.approx(accuracy, rel=1e-12)
    if absent:
        assert np.isnan(host(cm.iou())[-1])


def test_confusion_matrix_accumulates_batches_and_resets(device):
    pred, target = labels(1, (4, 5, 5), 3, 255)
    cm = ConfusionMatrix(3, ignore_index=255)
    for i in range(4):
        cm.update(on(device, pred[i : i + 1]), mg.tensor(target[i : i + 1], device=device))
    expected = reference_matrix(pred, target, 3, 255)
    np.testing.assert_array_equal(host(cm.matrix), expected)
    assert cm.mean_iou() == pytest.approx(mean_iou(on(device, pred), on(device, target), 3, 255))
    cm.reset()
    assert not host(cm.matrix).any() and np.isnan(cm.mean_iou())


def test_mean_iou_leaves_out_classes_absent_from_both():
    pred = np.array([[0, 0, 1, 1]])
    target = np.array([[0, 1, 1, 1]])
    # class 0: 1 / 2, class 1: 2 / 3, class 2: absent -> (1/2 + 2/3) / 2
    assert mean_iou(pred, target, 3) == pytest.approx((1 / 2 + 2 / 3) / 2)
    np.testing.assert_allclose(ConfusionMatrix(3).dice(), [np.nan] * 3)


@pytest.mark.skipif(REAL_GPU, reason="counts transfers of the CPU stand-in")
def test_a_gpu_update_moves_nothing_to_the_host():
    from minigrad.testing import fake_cupy

    pred, target = labels(2, (2, 8, 8), 3, 255)
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(on("gpu", pred), on("gpu", target))
    pred, target = on("gpu", pred), on("gpu", target)
    with fake_cupy.count_transfers() as transfers:
        cm.update(pred, target)
        get_stats(pred, target, 3, 255)
    assert transfers.to_host_calls == 0 and transfers.to_device_calls == 0


def test_confusion_matrix_refuses_bad_labels(device):
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="same|differ"):
        cm.update(on(device, np.zeros((2, 2), np.int64)), on(device, np.zeros((2, 3), np.int64)))
    with pytest.raises(TypeError, match="integer labels"):
        cm.update(on(device, np.zeros((2, 2))), on(device, np.zeros((2, 2), np.int64)))
    with pytest.raises(TypeError, match="numpy/cupy array or a Tensor"):
        cm.update([[0]], [[0]])
    bad = np.array([[0, 3]])
    if device == "cpu":
        with pytest.raises(ValueError, match=r"target 3 at \(0, 1\): labels must be in \[0, 2\]"):
            cm.update(np.array([[0, 1]]), bad)
    else:  # a GPU pixel with a label out of range is left out rather than synced to check
        cm.update(on(device, np.array([[0, 1]])), on(device, bad))
        assert int(host(cm.matrix).sum()) == 1
    other = "cpu" if device == "gpu" else "gpu"
    with pytest.raises(mg.DeviceError, match="pred is on"):
        cm.update(on(device, np.zeros(2, np.int64)), on(other, np.zeros(2, np.int64)))
    filled = ConfusionMatrix(2)
    filled.update(on(device, np.zeros(2, np.int64)), on(device, np.zeros(2, np.int64)))
    with pytest.raises(mg.DeviceError, match="reset"):
        filled.update(on(other, np.zeros(2, np.int64)), on(other, np.zeros(2, np.int64)))


# ---------------------------------------------------------------- smp's per-image statistics


@settings(max_examples=20)
@given(
    seed=seeds,
    classes=st.integers(1, 4),
    n=st.integers(1, 4),
    side=st.integers(1, 5),
    ignore_index=st.sampled_from([None, 255, -1]),
)
def test_get_stats_matches_the_definitions(device, seed, classes, n, side, ignore_index):
    pred, target = labels(seed, (n, side, side), classes, ignore_index)
    stats = get_stats(on(device, pred), on(device, target), classes, ignore_index)
    expected = reference_stats(pred, target, classes, ignore_index)
    for name, ours, theirs in zip(("tp", "fp", "fn", "tn"), stats, expected, strict=True):
        assert ours.shape == (n, classes) and ours.dtype == np.int64
        np.testing.assert_array_equal(host(ours), theirs, err_msg=name)


def reference_reduction(score, tp, fp, fn, tn, reduction, zero_division):
    """smp's ``_compute_metric``, written out for (N, C) numpy counts."""

    def settle(s):
        return np.where(np.isnan(s), zero_division, s)

    with np.errstate(invalid="ignore"):
        if reduction == "micro":
            return score(tp.sum(), fp.sum(), fn.sum(), tn.sum())
        if reduction == "macro":
            return settle(score(*(a.sum(0) for a in (tp, fp, fn, tn)))).mean()
        if reduction == "micro-imagewise":
            return settle(score(*(a.sum(1) for a in (tp, fp, fn, tn)))).mean()
        if reduction == "macro-imagewise":
            return settle(score(tp, fp, fn, tn)).mean(0).mean()
        return settle(score(tp, fp, fn, tn))


SCORES = {
    "iou": (iou_score, lambda tp, fp, fn, tn: tp / (tp + fp + fn)),
    "f1": (f1_score, lambda tp, fp, fn, tn: 2 * tp / (2 * tp + fp + fn)),
}


@settings(max_examples=25)
@given(
    seed=seeds,
    metric=st.sampled_from(sorted(SCORES)),
    reduction=st.sampled_from(["micro", "macro", "micro-imagewise", "macro-imagewise", "none"]),
    zero_division=st.sampled_from([1.0, 0.0]),
    ignore_index=st.sampled_from([None, 255]),
)
def test_iou_and_f1_reductions_match_smp(device, seed, metric, reduction, zero_division,
                                         ignore_index):  # fmt: skip
    pred, target = labels(seed, (3, 4, 4), 4, ignore_index, absent=(3,))
    target[0] = ignore_index if ignore_index is not None else target[0]  # an empty image
    ours_fn, score = SCORES[metric]
    stats = get_stats(on(device, pred), on(device, target), 4, ignore_index)
    ours = ours_fn(*stats, reduction=reduction, zero_division=zero_division)
    counts = reference_stats(pred, target, 4, ignore_index).astype(np.float64)
    expected = reference_reduction(score, *counts, reduction, zero_division)
    np.testing.assert_allclose(host(ours) if reduction == "none" else ours, expected, rtol=1e-12)


def test_micro_imagewise_iou_by_hand():
    """Image 0: 3 of 4 pixels right -> 3 / (3 + 1 + 1); image 1: all right -> 1."""
    pred = np.array([[[0, 1, 1, 2]], [[2, 2, 0, 0]]])
    target = np.array([[[0, 1, 2, 2]], [[2, 2, 0, 0]]])
    stats = get_stats(pred, target, 3)
    assert iou_score(*stats, reduction="micro-imagewise") == pytest.approx((3 / 5 + 1) / 2)
    # per class over both images: 0: 3/3, 1: 1/2, 2: 3/4
    assert iou_score(*stats, reduction="macro") == pytest.approx((1 + 1 / 2 + 3 / 4) / 3)
    assert f1_score(*stats, reduction="micro") == pytest.approx(2 * 7 / (2 * 7 + 2))


def test_get_stats_refuses_bad_arguments():
    pred, target = labels(3, (2, 3, 3), 3)
    with pytest.raises(ValueError, match="must lie outside the classes"):
        get_stats(pred, target, 3, ignore_index=1)
    with pytest.raises(ValueError, match="reduction must be one of"):
        iou_score(*get_stats(pred, target, 3), reduction="weighted")


# ---------------------------------------------------------------- ROC and AUC


def test_roc_curve_reproduces_scikit_learns_example(device):
    """sklearn.metrics.roc_curve's docstring: y = [1, 1, 2, 2] (pos_label=2)."""
    fpr, tpr, thresholds = roc_curve(
        on(device, np.array([0.1, 0.4, 0.35, 0.8])), on(device, np.array([0, 0, 1, 1]))
    )
    np.testing.assert_allclose(host(fpr), [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(host(tpr), [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(host(thresholds), [np.inf, 0.8, 0.4, 0.35, 0.1])
    assert auc(fpr, tpr) == pytest.approx(0.75)


@settings(max_examples=25)
@given(seed=seeds, size=st.integers(2, 60), levels=st.sampled_from([3, 10, 1000]))
def test_roc_curve_matches_a_threshold_sweep(device, seed, size, levels):
    """Ties come from drawing scores out of ``levels`` values."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size) / levels
    positive = rng.random(size) < 0.4
    positive[:2] = [True, False]
    full = roc_curve(on(device, scores), on(device, positive), drop_intermediate=False)
    for ours, theirs in zip(full, reference_roc(scores, positive), strict=True):
        np.testing.assert_allclose(host(ours), theirs, rtol=1e-12)
    fpr, tpr, thresholds = (host(a) for a in roc_curve(on(device, scores), on(device, positive)))
    full_fpr, full_tpr, full_thresholds = (host(a) for a in full)
    kept = np.searchsorted(-full_thresholds, -thresholds)
    np.testing.assert_array_equal(full_thresholds[kept], thresholds)
    assert kept[0] == 0 and kept[-1] == full_thresholds.size - 1
    for a, b in zip(kept[:-1], kept[1:], strict=True):  # dropped points lie on the segment
        for i in range(a + 1, b):
            cross = (full_fpr[i] - fpr[kept == a]) * (tpr[kept == b] - tpr[kept == a]) - (
                full_tpr[i] - tpr[kept == a]
            ) * (fpr[kept == b] - fpr[kept == a])
            assert abs(cross) < 1e-12
    assert auc(fpr, tpr) == pytest.approx(mann_whitney(scores, positive), rel=1e-12)
    assert auc(*full[:2]) == pytest.approx(auc(fpr, tpr), rel=1e-12)


def test_roc_curve_without_negatives_warns_and_gives_nan(device):
    with pytest.warns(RuntimeWarning, match="no negative sample"):
        fpr, tpr, _ = roc_curve(on(device, np.array([0.2, 0.7])), on(device, np.array([1, 1])))
    assert np.isnan(host(fpr)).all()
    np.testing.assert_allclose(host(tpr), [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="binary"):
        roc_curve(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="3 scores but 2 targets"):
        roc_curve(np.zeros(3), np.zeros(2))


def test_auc_is_the_trapezoid_area_in_either_direction(device):
    x, y = np.array([0.0, 0.2, 0.2, 0.7, 1.0]), np.array([0.0, 0.4, 0.5, 0.9, 1.0])
    area = sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(4))
    assert auc(on(device, x), on(device, y)) == pytest.approx(area)
    assert auc(on(device, x[::-1]), on(device, y[::-1])) == pytest.approx(area)
    with pytest.raises(ValueError, match="neither increasing nor decreasing"):
        auc(np.array([0.0, 1.0, 0.5]), np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="length >= 2"):
        auc(np.array([0.0]), np.array([1.0]))


def test_per_class_roc_from_probabilities(device):
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(3), size=(2, 5, 6)).transpose(0, 3, 1, 2)
    target = rng.integers(0, 2, (2, 5, 6))  # class 2 never occurs
    target[0, 0] = 255
    with pytest.warns(RuntimeWarning, match="no positive sample"):  # class 2
        curves = roc_curve_per_class(on(device, probs), on(device, target), 3, ignore_index=255)
    kept = target != 255
    for k in range(2):
        scores, positive = probs[:, k][kept], target[kept] == k
        expected = roc_curve(scores, positive)
        for ours, theirs in zip(curves[k], expected, strict=True):
            np.testing.assert_allclose(host(ours), theirs, rtol=1e-12)
    areas = roc_auc_per_class(mg.tensor(probs, device=device), on(device, target), 3, 255)
    for k in range(2):
        assert areas[k] == pytest.approx(mann_whitney(probs[:, k][kept], target[kept] == k))
    assert np.isnan(areas[2])
    with pytest.raises(ValueError, match=r"probs must be \(N, 4, \*\)"):
        roc_curve_per_class(on(device, probs), on(device, target), 4)
