"""segmentation.losses against PyTorch: torch.nn's cross entropies, and torch twins of
segmentation_models_pytorch's Dice, Jaccard, Tversky and Focal losses written here from smp's
formulas (forward and input gradient, float32 and float64, both devices); float64 gradcheck;
ignored pixels and classes absent from the batch; errors for bad arguments."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import REAL_GPU, check_parity, float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradcheck import gradcheck
from segmentation.losses import (
    BCEWithLogitsLoss,
    ComboLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    TverskyLoss,
    class_weights_from_frequency,
)

OVERLAP = {"dice": DiceLoss, "jaccard": JaccardLoss, "tversky": TverskyLoss}


# ---------------------------------------------------------------- torch twins of smp's losses


def _torch_probabilities_and_targets(x, y, mode, from_logits, ignore_index):
    """smp's preparation: probabilities (N, C, L) and targets (N, C, L), ignored pixels zeroed."""
    if from_logits:
        x = x.log_softmax(dim=1).exp() if mode == "multiclass" else TF.logsigmoid(x).exp()
    n, c = x.shape[:2]
    p = x.reshape(n, c, -1)
    if mode == "multiclass":
        y = y.reshape(n, -1)
        if ignore_index is None:
            return p, TF.one_hot(y, c).permute(0, 2, 1).to(p.dtype)
        keep = y != ignore_index
        t = TF.one_hot((y * keep).long(), c).permute(0, 2, 1) * keep.unsqueeze(1)
        return p * keep.unsqueeze(1), t.to(p.dtype)
    t = y.reshape(n, c, -1).to(p.dtype)
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p * keep, t * keep
    return p, t


def torch_overlap_loss(kind, x, y, mode="multiclass", classes=None, log_loss=False,
                       from_logits=True, smooth=0.0, ignore_index=None, eps=1e-7,
                       alpha=0.5, beta=0.5, gamma=1.0):  # fmt: skip
    """smp's DiceLoss / JaccardLoss / TverskyLoss (soft scores over dims (0, 2))."""
    p, t = _torch_probabilities_and_targets(x, y, mode, from_logits, ignore_index)
    dims = (0, 2)
    intersection = torch.sum(p * t, dim=dims)
    cardinality = torch.sum(p + t, dim=dims)
    if kind == "dice":
        score = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
    elif kind == "jaccard":
        score = (intersection + smooth) / (cardinality - intersection + smooth).clamp_min(eps)
    else:
        fp = torch.sum(p * (1.0 - t), dim=dims)
        fn = torch.sum((1 - p) * t, dim=dims)
        denominator = intersection + alpha * fp + beta * fn + smooth
        score = (intersection + smooth) / denominator.clamp_min(eps)
    loss = -torch.log(score.clamp_min(eps)) if log_loss else 1.0 - score
    loss = loss * (t.sum(dims) > 0).to(loss.dtype)
    if classes is not None:
        loss = loss[torch.tensor(classes)]
    return loss.mean() ** gamma if kind == "tversky" else loss.mean()


def _torch_binary_focal(x, t, gamma, alpha, reduction, normalized):
    """smp's focal_loss_with_logits on 1-D logits and targets."""
    t = t.to(x.dtype)
    logpt = TF.binary_cross_entropy_with_logits(x, t, reduction="none")
    focal = (1.0 - torch.exp(-logpt)).pow(gamma)
    loss = focal * logpt
    if alpha is not None:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    if normalized:
        loss = loss / focal.sum().clamp_min(1e-6)
    return loss.mean() if reduction == "mean" else loss.sum()


def torch_smp_focal(x, y, mode="multiclass", alpha=None, gamma=2.0, ignore_index=None,
                    reduction="mean", normalized=False):  # fmt: skip
    """smp's FocalLoss, with its sum over the classes in "multiclass" mode."""
    kwargs = {"gamma": gamma, "alpha": alpha, "reduction": reduction, "normalized": normalized}
    if mode != "multiclass":
        yt, xt = y.reshape(-1), x.reshape(-1)
        if ignore_index is not None:
            keep = yt != ignore_index
            xt, yt = xt[keep], yt[keep]
        return _torch_binary_focal(xt, yt, **kwargs)
    total = 0
    for c in range(x.shape[1]):
        yc, xc = (y == c).long(), x[:, c, ...]
        if ignore_index is not None:
            keep = y != ignore_index
            yc, xc = yc[keep], xc[keep]
        total = total + _torch_binary_focal(xc, yc, **kwargs)
    return total


# ---------------------------------------------------------------- problems


@st.composite
def multiclass_problems(draw):
    """(logit shape, classes, ignore_index, whether the last class is absent)."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ignore_index = draw(st.sampled_from([None, None, -1, 255, 0]))
    return (n, c, h, w), c, ignore_index, c > 1 and draw(st.booleans())


def class_targets(seed, n, h, w, classes, ignore_index, absent_last=False):
    """Random labels, the last class left out if asked, a quarter of pixels ignored."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes - 1 if absent_last else classes, size=(n, h, w))
    if ignore_index is not None:
        y = np.where(rng.random(y.shape) < 0.25, ignore_index, y)
    return y.astype(np.int64)


def binary_targets(seed, shape, ignore_index, soft=False):
    """0/1 (or soft, in [0, 1]) float targets, a quarter ignored."""
    rng = np.random.default_rng(seed)
    y = rng.random(shape) if soft else (rng.random(shape) < 0.4).astype(np.float64)
    if ignore_index is not None:
        y = np.where(rng.random(shape) < 0.25, ignore_index, y)
    return y


# ---------------------------------------------------------------- Dice, Jaccard, Tversky


@settings(max_examples=25)
@given(
    problem=multiclass_problems(),
    kind=st.sampled_from(sorted(OVERLAP)),
    dtype=float_dtypes,
    seed=seeds,
    log_loss=st.booleans(),
    smooth=st.sampled_from([0.0, 0.0, 1.0]),
    subset=st.booleans(),
)
def test_multiclass_overlap_losses_match_smp(
    device, problem, kind, dtype, seed, log_loss, smooth, subset
):
    shape, c, ignore_index, absent_last = problem
    x = random_array(seed, shape, dtype) * 2
    y = class_targets(seed + 1, shape[0], *shape[2:], c, ignore_index, absent_last)
    classes = [c - 1, 0] if subset else None
    kwargs = {"classes": classes, "log_loss": log_loss, "smooth": smooth,
              "ignore_index": ignore_index}  # fmt: skip
    if kind == "tversky":
        kwargs.update(alpha=0.3, beta=0.7, gamma=1.5)
    ours = OVERLAP[kind](mode="multiclass", **kwargs)
    check_parity(
        ours,
        lambda a, t: torch_overlap_loss(kind, a, t, mode="multiclass", **kwargs),
        [x, y],
        device,
        reduction=x.size,
    )


@settings(max_examples=25)
@given(
    kind=st.sampled_from(sorted(OVERLAP)),
    mode=st.sampled_from(["binary", "multilabel"]),
    n=st.integers(1, 3),
    c=st.integers(1, 3),
    side=st.integers(1, 5),
    dtype=float_dtypes,
    seed=seeds,
    ignore_index=st.sampled_from([None, -1, 255]),
    soft=st.booleans(),
    squeezed=st.booleans(),
)
def test_binary_and_multilabel_overlap_losses_match_smp(
    device, kind, mode, n, c, side, dtype, seed, ignore_index, soft, squeezed
):
    c = 1 if mode == "binary" else c
    shape = (n, c, side, side + 1)
    x = random_array(seed, shape, dtype) * 2
    y = binary_targets(seed + 1, shape, ignore_index, soft).astype(dtype)
    ours_y = y[:, 0] if squeezed and mode == "binary" else y
    loss = OVERLAP[kind](mode=mode, ignore_index=ignore_index, smooth=0.5)
    check_parity(
        lambda a: loss(a, mg.tensor(ours_y, device=device)),
        lambda a: torch_overlap_loss(
            kind, a, torch.tensor(y), mode=mode, ignore_index=ignore_index, smooth=0.5
        ),
        [x],
        device,
        reduction=x.size,
    )


def test_overlap_losses_take_probabilities_when_not_from_logits(device):
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=(2, 4, 4)).transpose(0, 3, 1, 2)
    y = class_targets(4, 2, 4, 4, 3, None)
    for kind, cls in OVERLAP.items():
        check_parity(
            cls(from_logits=False),
            lambda a, t, kind=kind: torch_overlap_loss(kind, a, t, from_logits=False),
            [probs, y],
            device,
        )


def test_an_absent_class_contributes_zero_but_counts_in_the_mean(device):
    """With class 2 absent, the loss is the sum of the present classes' losses over 3."""
    x = random_array(5, (2, 3, 4, 4), np.float64)
    y = class_targets(6, 2, 4, 4, 3, None, absent_last=True)
    everything = DiceLoss()(mg.tensor(x, device=device), y).item()
    present = DiceLoss(classes=[0, 1])(mg.tensor(x, device=device), y).item()
    assert everything == pytest.approx(present * 2 / 3, rel=1e-12)
    assert everything > 0


def test_dice_loss_is_zero_for_a_perfect_prediction(device):
    y = class_targets(7, 2, 5, 5, 3, None)
    logits = 50.0 * np.eye(3)[y].transpose(0, 3, 1, 2)
    assert DiceLoss()(mg.tensor(logits, device=device), y).item() == pytest.approx(0, abs=1e-12)
    assert JaccardLoss(log_loss=True)(mg.tensor(logits, device=device), y).item() < 1e-12


def test_tversky_with_half_weights_and_gamma_one_is_the_dice_loss(device):
    x = mg.tensor(random_array(8, (2, 3, 4, 4), np.float64), device=device)
    y = class_targets(9, 2, 4, 4, 3, 255)
    dice = DiceLoss(ignore_index=255)(x, y).item()
    assert TverskyLoss(ignore_index=255)(x, y).item() == pytest.approx(dice, rel=1e-12)


@pytest.mark.parametrize(
    "loss",
    [
        DiceLoss(ignore_index=-1),
        JaccardLoss(log_loss=True, smooth=1.0),
        TverskyLoss(alpha=0.2, beta=0.8, gamma=2.0, ignore_index=0, classes=[1, 2]),
        FocalLoss(ignore_index=-1),
        FocalLoss(alpha=0.25, gamma=1.5, normalized=True, ignore_index=1),
        CrossEntropyLoss(weight=[0.2, 1.0, 3.0], ignore_index=-1, label_smoothing=0.1),
        ComboLoss([(CrossEntropyLoss(), 1.0), (DiceLoss(), 0.5)]),
    ],
    ids=["dice", "jaccard-log", "tversky", "focal", "focal-normalized", "ce", "combo"],
)
def test_multiclass_gradients_pass_gradcheck(device, loss):
    x = mg.tensor(random_array(10, (2, 3, 3, 3), np.float64), device=device, requires_grad=True)
    ignore_index = getattr(loss, "ignore_index", None)
    y = mg.tensor(class_targets(11, 2, 3, 3, 3, ignore_index), device=device)
    loss.to(device)  # class weights are buffers, moved as in PyTorch
    assert gradcheck(lambda a: loss(a, y), [x])


@pytest.mark.parametrize(
    "loss",
    [
        DiceLoss("binary", ignore_index=255),
        JaccardLoss("binary"),
        TverskyLoss("multilabel", alpha=0.7, beta=0.3),
        FocalLoss("binary", alpha=0.25, ignore_index=255),
        FocalLoss("multilabel", normalized=True),
        BCEWithLogitsLoss(pos_weight=[2.0]),
    ],
    ids=["dice", "jaccard", "tversky-multilabel", "focal", "focal-multilabel", "bce"],
)
def test_binary_gradients_pass_gradcheck(device, loss):
    c = 2 if getattr(loss, "mode", "binary") == "multilabel" else 1
    x = mg.tensor(random_array(12, (2, c, 3, 3), np.float64), device=device, requires_grad=True)
    ignore = getattr(loss, "ignore_index", None)
    y = mg.tensor(binary_targets(13, (2, c, 3, 3), ignore), device=device)
    loss.to(device)  # class weights are buffers, moved as in PyTorch
    assert gradcheck(lambda a: loss(a, y), [x])


# ---------------------------------------------------------------- focal


@settings(max_examples=25)
@given(
    problem=multiclass_problems(),
    dtype=float_dtypes,
    seed=seeds,
    alpha=st.sampled_from([None, 0.25]),
    gamma=st.sampled_from([0.0, 1.0, 2.0, 2.5]),
    reduction=st.sampled_from(["mean", "sum"]),
    normalized=st.booleans(),
)
def test_multiclass_focal_is_smps_sum_over_classes_divided_by_c(
    device, problem, dtype, seed, alpha, gamma, reduction, normalized
):
    shape, c, ignore_index, absent_last = problem
    x = random_array(seed, shape, dtype) * 2
    y = class_targets(seed + 1, shape[0], *shape[2:], c, ignore_index, absent_last)
    kwargs = {"alpha": alpha, "gamma": gamma, "ignore_index": ignore_index,
              "reduction": reduction, "normalized": normalized}  # fmt: skip
    check_parity(
        FocalLoss("multiclass", **kwargs),
        lambda a, t: torch_smp_focal(a, t, "multiclass", **kwargs) / c,
        [x, y],
        device,
        reduction=x.size,
    )


@settings(max_examples=20)
@given(
    mode=st.sampled_from(["binary", "multilabel"]),
    c=st.integers(1, 3),
    dtype=float_dtypes,
    seed=seeds,
    alpha=st.sampled_from([None, 0.25, 0.8]),
    ignore_index=st.sampled_from([None, 255]),
    reduction=st.sampled_from(["mean", "sum"]),
    normalized=st.booleans(),
    soft=st.booleans(),
)
def test_binary_focal_matches_smp(
    device, mode, c, dtype, seed, alpha, ignore_index, reduction, normalized, soft
):
    shape = (2, 1 if mode == "binary" else c, 3, 4)
    x = random_array(seed, shape, dtype) * 2
    y = binary_targets(seed + 1, shape, ignore_index, soft).astype(dtype)
    y.reshape(-1)[0] = 1.0  # at least one counted entry
    kwargs = {"alpha": alpha, "ignore_index": ignore_index, "reduction": reduction,
              "normalized": normalized}  # fmt: skip
    loss = FocalLoss(mode, **kwargs)
    check_parity(
        lambda a: loss(a, mg.tensor(y, device=device)),
        lambda a: torch_smp_focal(a, torch.tensor(y), mode, **kwargs),
        [x],
        device,
        reduction=x.size,
    )


@pytest.mark.parametrize("normalized", [False, True])
def test_focal_reduction_none_gives_per_pixel_class_means(device, normalized):
    """Each pixel's loss is the mean over classes of its one-vs-rest focal losses (0 where
    ignored); their mean over counted pixels is the "mean" reduction."""
    x = random_array(14, (2, 3, 4, 5), np.float64)
    y = class_targets(15, 2, 4, 5, 3, 255)
    tx = torch.tensor(x)
    onehot = TF.one_hot(torch.tensor(np.where(y == 255, 0, y)), 3).permute(0, 3, 1, 2).double()
    bce = TF.binary_cross_entropy_with_logits(tx, onehot, reduction="none")
    focal = (1 - torch.exp(-bce)) ** 2
    keep = torch.tensor(y != 255).unsqueeze(1).double()
    per_element = focal * bce * keep
    if normalized:
        per_element = per_element / (focal * keep).sum(dim=(0, 2, 3), keepdim=True)
    expected = per_element.mean(dim=1).numpy()
    kwargs = {"ignore_index": 255, "normalized": normalized}
    ours = FocalLoss(reduction="none", **kwargs)(mg.tensor(x, device=device), y)
    assert ours.shape == (2, 4, 5)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12, atol=1e-15)
    mean = FocalLoss(**kwargs)(mg.tensor(x, device=device), y).item()
    assert mean == pytest.approx(expected.sum() / (y != 255).sum(), rel=1e-12)


def test_focal_with_gamma_zero_is_binary_cross_entropy_per_class(device):
    x = random_array(16, (2, 3, 4, 4), np.float64)
    y = class_targets(17, 2, 4, 4, 3, None)
    onehot = np.eye(3)[y].transpose(0, 3, 1, 2)
    expected = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(onehot)).item()
    ours = FocalLoss(gamma=0.0)(mg.tensor(x, device=device), y).item()
    assert ours == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- cross entropies


@settings(max_examples=20)
@given(
    problem=multiclass_problems(),
    dtype=float_dtypes,
    seed=seeds,
    weighted=st.booleans(),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    label_smoothing=st.sampled_from([0.0, 0.1]),
    as_array=st.booleans(),
)
def test_cross_entropy_loss_matches_torch(
    device, problem, dtype, seed, weighted, reduction, label_smoothing, as_array
):
    shape, c, ignore_index, absent_last = problem
    ignore_index = -100 if ignore_index is None else ignore_index
    x = random_array(seed, shape, dtype)
    y = class_targets(seed + 1, shape[0], *shape[2:], c, ignore_index, absent_last)
    weight = random_array(seed + 2, (c,), np.float64, 0.1, 2.0) if weighted else None
    ours = CrossEntropyLoss(
        weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing
    ).to(device)
    theirs = torch.nn.CrossEntropyLoss(
        weight=None if weight is None else torch.tensor(weight, dtype=torch.from_numpy(x).dtype),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
    check_parity(
        (lambda a, t: ours(a, t.data)) if as_array else ours,
        theirs,
        [x, y],
        device,
        reduction=x.size,
    )


@settings(max_examples=20)
@given(
    c=st.integers(1, 3),
    dtype=float_dtypes,
    seed=seeds,
    reduction=st.sampled_from(["mean", "sum", "none"]),
    pos_weighted=st.booleans(),
    int_target=st.booleans(),
)
def test_bce_with_logits_loss_matches_torch(device, c, dtype, seed, reduction, pos_weighted,
                                            int_target):  # fmt: skip
    shape = (2, c, 3, 4)
    x = random_array(seed, shape, dtype) * 3
    y = binary_targets(seed + 1, shape, None)
    pos_weight = random_array(seed + 2, (c, 1, 1), dtype, 0.5, 3.0) if pos_weighted else None
    ours = BCEWithLogitsLoss(reduction=reduction, pos_weight=pos_weight).to(device)
    theirs = torch.nn.BCEWithLogitsLoss(
        reduction=reduction, pos_weight=None if pos_weight is None else torch.tensor(pos_weight)
    )
    ours_y = y.astype(np.int64) if int_target else y.astype(dtype)
    if c == 1 and int_target:
        ours_y = ours_y[:, 0]  # (N, H, W) targets for (N, 1, H, W) logits
    check_parity(
        lambda a: ours(a, mg.tensor(ours_y, device=device)),
        lambda a: theirs(a, torch.tensor(y.astype(dtype))),
        [x],
        device,
        reduction=x.size,
    )


def test_class_weights_are_seed_001s_one_minus_frequency(device):
    xp = mg.backend.array_module(device)
    rng = np.random.default_rng(18)
    masks = rng.choice([0, 1, 2, 3, 255], p=[0.6, 0.2, 0.1, 0.0, 0.1], size=(3, 8, 8))
    valid = masks[masks != 255]
    frequency = np.array([(valid == k).sum() for k in range(4)]) / valid.size
    expected = 1.0 - frequency
    device_masks = xp.asarray(masks)
    for given_masks in (device_masks, [device_masks[0], device_masks[1:]], mg.Tensor(device_masks)):
        weights = class_weights_from_frequency(given_masks, 4, ignore_index=255)
        assert weights.dtype == np.float32 and weights.shape == (4,)
        np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert weights[3] == 1.0  # a class that never occurs
    counts = np.array([30, 10, 0, 60])
    np.testing.assert_allclose(class_weights_from_frequency(counts, 4), [0.7, 0.9, 1.0, 0.4])


def test_class_weights_refuse_bad_input(device):
    xp = mg.backend.array_module(device)
    with pytest.raises(ValueError, match=r"labels in \[0, 5\]; expected \[0, 2\]"):
        class_weights_from_frequency(xp.asarray(np.array([[0, 5], [1, 2]])), 3)
    with pytest.raises(ValueError, match="counts must be 3 non-negative"):
        class_weights_from_frequency(np.array([1, 2]), 3)
    with pytest.raises(ValueError, match="no pixel counted"):
        class_weights_from_frequency(xp.full((2, 2), 255), 3, ignore_index=255)
    with pytest.raises(TypeError, match="integer arrays"):
        class_weights_from_frequency(xp.zeros((2, 2)), 3)


def test_weighted_cross_entropy_with_frequency_weights_matches_torch(device):
    x = random_array(19, (2, 3, 4, 4), np.float32)
    y = class_targets(20, 2, 4, 4, 3, None)
    weights = class_weights_from_frequency(y, 3)
    check_parity(
        CrossEntropyLoss(weight=weights).to(device),
        torch.nn.CrossEntropyLoss(weight=torch.tensor(weights)),
        [x, y],
        device,
        reduction=x.size,
    )


# ---------------------------------------------------------------- combo


def test_combo_loss_is_the_weighted_sum(device):
    x = random_array(21, (2, 3, 5, 5), np.float32)
    y = class_targets(22, 2, 5, 5, 3, 255)
    combo = ComboLoss([FocalLoss(ignore_index=255), DiceLoss(ignore_index=255)], [2.0, 0.5])

    def torch_combo(a, t):
        focal = torch_smp_focal(a, t, ignore_index=255) / 3
        return 2.0 * focal + 0.5 * torch_overlap_loss("dice", a, t, ignore_index=255)

    check_parity(combo, torch_combo, [x, y], device, reduction=x.size)
    pairs = ComboLoss([(CrossEntropyLoss(ignore_index=255), 1.0), (DiceLoss(), 1.0)])
    assert [type(loss).__name__ for loss in pairs.losses] == ["CrossEntropyLoss", "DiceLoss"]
    assert pairs.weights == [1.0, 1.0]


def test_losses_are_modules_whose_weights_are_buffers(device):
    """As torch.nn's losses: ``weight`` / ``pos_weight`` in the state dict, moved by to()."""
    combo = ComboLoss([(CrossEntropyLoss(weight=[1.0, 2.0, 3.0]), 1.0), (DiceLoss(), 1.0)])
    assert list(combo.state_dict()) == ["losses.0.weight"]
    assert list(BCEWithLogitsLoss(pos_weight=np.array([2.0])).state_dict()) == ["pos_weight"]
    x = mg.tensor(random_array(29, (2, 3, 4, 4), np.float32), device=device)
    y = class_targets(30, 2, 4, 4, 3, None)
    if device == "gpu":
        with pytest.raises(mg.DeviceError, match="weight is on cpu but input is on gpu"):
            combo(x, y)
    assert combo.to(device).losses[0].weight.device == device
    assert np.isfinite(combo(x, y).item())
    assert "DiceLoss(mode='multiclass'" in repr(combo) and "weights=[1.0, 1.0]" in repr(combo)


def test_combo_loss_refuses_bad_arguments():
    with pytest.raises(ValueError, match="at least one loss"):
        ComboLoss([])
    with pytest.raises(ValueError, match="2 losses but 1 weights"):
        ComboLoss([DiceLoss(), FocalLoss()], [1.0])
    with pytest.raises(ValueError, match="either in"):
        ComboLoss([(DiceLoss(), 1.0)], [1.0])
    with pytest.raises(TypeError, match="weight 0 must be a number"):
        ComboLoss([DiceLoss()], ["1"])
    with pytest.raises(TypeError, match="loss 0 must be a layers.Module"):
        ComboLoss([lambda x, t: x.sum()])


# ---------------------------------------------------------------- devices and errors


@pytest.mark.skipif(REAL_GPU, reason="counts transfers of the CPU stand-in")
@pytest.mark.parametrize(
    "loss",
    [
        DiceLoss(ignore_index=255),
        TverskyLoss(),
        FocalLoss(ignore_index=255, normalized=True),
        CrossEntropyLoss(weight=[1.0, 2.0, 3.0], ignore_index=255),
    ],  # fmt: skip
    ids=["dice", "tversky", "focal", "ce"],
)
def test_a_gpu_loss_step_moves_nothing_to_the_host(loss):
    from minigrad.testing import fake_cupy

    x = mg.tensor(random_array(23, (2, 3, 4, 4), np.float32), device="gpu", requires_grad=True)
    y = mg.tensor(class_targets(24, 2, 4, 4, 3, 255), device="gpu")
    loss.to("gpu")
    loss(x, y).backward()  # warm-up
    with fake_cupy.count_transfers() as transfers:
        loss(x, y).backward()
    assert transfers.to_host_calls == 0
    assert transfers.to_device_calls == 0


def test_numpy_targets_are_moved_to_the_logits_device(device):
    x = mg.tensor(random_array(25, (2, 3, 4, 4), np.float32), device=device)
    y = class_targets(26, 2, 4, 4, 3, None)
    for loss in (DiceLoss(), FocalLoss(), CrossEntropyLoss()):
        assert loss(x, y).item() == pytest.approx(loss(x, mg.tensor(y, device=device)).item())
    assert DiceLoss()(x, y[:, None]).item() == pytest.approx(DiceLoss()(x, y).item())


def test_losses_refuse_bad_arguments(device):
    x = mg.tensor(random_array(27, (2, 3, 4, 4), np.float32), device=device)
    y = class_targets(28, 2, 4, 4, 3, None)
    with pytest.raises(ValueError, match="mode must be one of"):
        DiceLoss(mode="multi")
    with pytest.raises(ValueError, match="classes cannot be chosen in mode 'binary'"):
        JaccardLoss("binary", classes=[0])
    with pytest.raises(ValueError, match="reduction must be one of"):
        FocalLoss(reduction="batchwise_mean")
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        FocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match="eps must be positive"):
        DiceLoss(eps=0.0)
    with pytest.raises(ValueError, match=r"mode 'binary' needs \(N, 1, \*\) logits"):
        DiceLoss("binary")(x, y)
    with pytest.raises(ValueError, match=r"mode 'binary' needs \(N, 1, \*\) logits"):
        FocalLoss("binary")(x, y)
    with pytest.raises(ValueError, match=r"target of shape \(2, 4\) does not match"):
        DiceLoss()(x, y[:, 0])
    with pytest.raises(TypeError, match="integer class indices"):
        FocalLoss()(x, y.astype(np.float32))
    with pytest.raises(ValueError, match=r"out of range for 3 classes"):
        DiceLoss(classes=[3])(x, y)
    with pytest.raises(TypeError, match="input must be a Tensor"):
        DiceLoss()(x.numpy(), y)
    with pytest.raises(TypeError, match="target must be a Tensor or a numpy/cupy array"):
        DiceLoss()(x, y.tolist())
    other = "cpu" if device == "gpu" else "gpu"
    with pytest.raises(mg.DeviceError, match=f"target is on {other}"):
        TverskyLoss()(x, mg.tensor(y, device=other))
    if device == "cpu":  # labels are range-checked on the host only
        with pytest.raises(
            ValueError, match=r"labels in \[1, 3\]; expected class indices in \[0, 2\]"
        ):
            DiceLoss()(x, np.where(y == 0, 3, y))
