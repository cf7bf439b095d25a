"""Joint transforms: image and mask stay aligned, draws are reproducible by seed, evaluation is
deterministic, and the colour, blur and normalisation numbers match their definitions
(torchvision's, written out here, with stdlib colorsys for the hue and a direct 2-D
correlation with reflect padding, torch's "reflect", for the blur)."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image

from segmentation.data import transforms as T

PET, BACKGROUND = 0, 1


def pet_sample(height=90, width=120):
    """A bright off-centre ellipse with a tail (pet, class 0) on a dark textured background
    (class 1): asymmetric, so a flip or rotation applied to one array only shows."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width]
    body = ((y - 0.42 * height) / (0.28 * height)) ** 2 + ((x - 0.38 * width) / (0.22 * width)) ** 2
    tail = (np.abs(y - 0.62 * height) < 0.05 * height) & (x > 0.5 * width) & (x < 0.85 * width)
    inside = (body <= 1) | tail
    image = np.where(inside[..., None], [215, 200, 170], [40, 50, 35]).astype(np.int64)
    image += rng.integers(-25, 26, size=image.shape)
    mask = np.where(inside, PET, BACKGROUND).astype(np.int64)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def image_region(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32).mean(axis=2) > 125


GEOMETRIC = [
    T.Resize((48, 64)),
    T.Resize(50),
    T.RandomResizedCrop(64, scale=(0.5, 1.0)),
    T.RandomResizedCrop((40, 72)),
    T.RandomHorizontalFlip(p=1.0),
    T.RandomVerticalFlip(p=1.0),
    T.RandomRotation(45),
    T.RandomRotation((80, 100)),
    T.Compose(
        [T.RandomResizedCrop(64, scale=(0.4, 1)), T.RandomHorizontalFlip(), T.RandomRotation(30)]
    ),
]


@pytest.mark.parametrize("transform", GEOMETRIC, ids=repr)
@pytest.mark.parametrize("seed", range(4))
def test_geometric_transforms_keep_image_and_mask_aligned(transform, seed):
    image, mask = pet_sample()
    out_image, out_mask = transform(image, mask, np.random.default_rng(seed))
    assert out_image.shape[:2] == out_mask.shape
    assert out_mask.dtype == mask.dtype
    assert set(np.unique(out_mask)) <= {PET, BACKGROUND}
    assert iou(image_region(out_image), out_mask == PET) > 0.9


def test_alignment_check_catches_a_transform_applied_to_the_image_only():
    image, mask = pet_sample()
    flipped, _ = T.RandomHorizontalFlip(p=1.0)(image, mask)
    assert iou(image_region(flipped), mask == PET) < 0.6


@pytest.mark.parametrize(
    "transform",
    [
        T.RandomResizedCrop(32),
        T.RandomHorizontalFlip(),
        T.RandomVerticalFlip(),
        T.RandomRotation(30),
        T.ColorJitter(0.4, 0.4, 0.4, 0.2),
        T.GaussianBlur(5),
        T.train_transform(32),
    ],
    ids=lambda t: type(t).__name__,
)
def test_random_transforms_are_reproducible_by_seed(transform):
    image, mask = pet_sample()
    outputs = [transform(image, mask, np.random.default_rng(s)) for s in range(8)]
    again = [transform(image, mask, np.random.default_rng(s)) for s in range(8)]
    for (a_img, a_mask), (b_img, b_mask) in zip(outputs, again, strict=True):
        np.testing.assert_array_equal(a_img, b_img)
        np.testing.assert_array_equal(a_mask, b_mask)
    distinct = {outputs[s][0].tobytes() for s in range(8)}
    assert len(distinct) > 1, "different seeds should give different draws"


def test_eval_transform_is_deterministic_and_is_resize_then_normalize():
    image, mask = pet_sample()
    ev = T.eval_transform(32)
    runs = [ev(image, mask, np.random.default_rng(s)) for s in range(3)] + [ev(image, mask)]
    for img, m in runs[1:]:
        np.testing.assert_array_equal(img, runs[0][0])
        np.testing.assert_array_equal(m, runs[0][1])
    resized = np.asarray(Image.fromarray(image).resize((32, 32), Image.BILINEAR))
    expected = (resized / 255.0 - np.array(T.IMAGENET_MEAN)) / np.array(T.IMAGENET_STD)
    np.testing.assert_allclose(runs[0][0], expected.transpose(2, 0, 1), rtol=1e-5, atol=1e-5)
    assert T.train_transform(32, augment=False)(image, mask)[0].tobytes() == runs[0][0].tobytes()


def test_train_transform_outputs_and_augments():
    image, mask = pet_sample()
    tt = T.train_transform((24, 40))
    img, m = tt(image, mask, np.random.default_rng(0))
    assert img.shape == (3, 24, 40) and img.dtype == np.float32 and img.flags.c_contiguous
    assert m.shape == (24, 40) and m.dtype == np.int64 and m.flags.c_contiguous
    baseline = T.eval_transform((24, 40))(image, mask)[0]
    assert any(
        not np.array_equal(tt(image, mask, np.random.default_rng(s))[0], baseline) for s in range(4)
    )


def test_unseeded_call_draws_from_a_fresh_generator():
    image, mask = pet_sample()
    img, m = T.RandomRotation(10)(image, mask)
    assert img.shape == image.shape and m.shape == mask.shape


# ------------------------------------------------------------------ geometry details


def test_resize_matches_pil_bilinear_and_nearest():
    image, mask = pet_sample()
    mask = mask + (np.arange(mask.shape[1]) % 3)  # more classes, for nearest to show
    img, m = T.Resize((37, 53))(image, mask)
    np.testing.assert_array_equal(img, np.asarray(Image.fromarray(image).resize((53, 37), 2)))
    pil_mask = Image.fromarray(mask.astype(np.uint8)).resize((53, 37), Image.NEAREST)
    np.testing.assert_array_equal(m, np.asarray(pil_mask))


@pytest.mark.parametrize("shape, expected", [((90, 120), (50, 66)), ((120, 90), (66, 50))])
def test_resize_int_matches_the_smaller_edge(shape, expected):
    image = np.zeros((*shape, 3), np.uint8)
    img, m = T.Resize(50)(image, np.zeros(shape, np.int64))
    assert img.shape[:2] == expected and m.shape == expected


def test_resize_to_the_same_size_is_the_identity():
    image, mask = pet_sample()
    img, m = T.Resize(image.shape[:2])(image, mask)
    assert img is image and m is mask


def test_random_resized_crop_box_follows_torchvision_rule():
    t = T.RandomResizedCrop(32, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    for s in range(50):
        top, left, h, w = t.crop_box(90, 120, np.random.default_rng(s))
        assert 0 <= top and top + h <= 90 and 0 <= left and left + w <= 120
        assert 0.2 * 0.9 <= h * w / (90 * 120) <= 0.6 * 1.1
        assert 0.5 * 0.9 <= w / h <= 2.0 * 1.1
    # No try fits a 10 x 1000 strip: the central crop clamped to the largest ratio.
    narrow = T.RandomResizedCrop(8, scale=(0.9, 1.0))
    assert narrow.crop_box(10, 1000, np.random.default_rng(0)) == (0, 493, 10, 13)
    assert narrow.crop_box(1000, 10, np.random.default_rng(0)) == (493, 0, 13, 10)


def test_random_resized_crop_is_crop_then_resize():
    image, mask = pet_sample()
    t = T.RandomResizedCrop((20, 24))
    top, left, h, w = t.crop_box(*image.shape[:2], np.random.default_rng(3))
    img, m = t(image, mask, np.random.default_rng(3))
    crop = Image.fromarray(image[top : top + h, left : left + w])
    np.testing.assert_array_equal(img, np.asarray(crop.resize((24, 20), Image.BILINEAR)))
    crop_mask = Image.fromarray(mask[top : top + h, left : left + w].astype(np.uint8))
    np.testing.assert_array_equal(m, np.asarray(crop_mask.resize((24, 20), Image.NEAREST)))


def test_flip_probabilities():
    image, mask = pet_sample()
    for p in (0.0, 1.0):
        img, m = T.RandomHorizontalFlip(p)(image, mask, np.random.default_rng(0))
        np.testing.assert_array_equal(img, image[:, ::-1] if p else image)
        np.testing.assert_array_equal(m, mask[:, ::-1] if p else mask)
    flips = sum(
        not np.array_equal(T.RandomVerticalFlip()(image, mask, np.random.default_rng(s))[1], mask)
        for s in range(200)
    )
    assert 70 < flips < 130


def test_rotation_fills_image_and_mask_corners():
    image, mask = pet_sample()
    t = T.RandomRotation((45, 45), fill=(1, 2, 3), mask_fill=7)
    img, m = t(image, mask)
    np.testing.assert_array_equal(img[0, 0], [1, 2, 3])
    assert m[0, 0] == 7 and m[-1, -1] == 7
    assert T.RandomRotation(10).mask_fill == T.TRIMAP_BACKGROUND == 1
    zero = T.RandomRotation((0, 0))(image, mask)
    np.testing.assert_array_equal(zero[0], image)
    np.testing.assert_array_equal(zero[1], mask)


def test_rotation_keeps_mask_values_beyond_uint8():
    image, mask = pet_sample()
    wide = np.where(mask == PET, 300, -2).astype(np.int64)
    _, m = T.RandomRotation((30, 30), mask_fill=1000)(image, wide)
    assert m.dtype == np.int64 and set(np.unique(m)) == {300, -2, 1000}
    _, narrow = T.RandomRotation((30, 30), mask_fill=1000)(image, mask)
    np.testing.assert_array_equal(np.where(m == 300, PET, np.where(m == -2, 1, 1000)), narrow)


# -------------------------------------------------------------------------- colour


def luma(x):
    return 0.2989 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def jitter_reference(x, kind, f):
    """torchvision's tensor definitions on float [0, 255]: blend ratio * x + (1 - ratio) * y
    clamped, with y black, the mean luma, or the pixel luma; hue via colorsys per pixel."""
    if kind == "brightness":
        return np.clip(f * x, 0, 255)
    if kind == "contrast":
        return np.clip(f * x + (1 - f) * luma(x).mean(), 0, 255)
    if kind == "saturation":
        return np.clip(f * x + (1 - f) * luma(x)[..., None], 0, 255)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape[:2]):
        h, s, v = colorsys.rgb_to_hsv(*(x[idx] / 255.0))
        out[idx] = np.array(colorsys.hsv_to_rgb((h + f) % 1.0, s, v)) * 255.0
    return out


ADJUST = {
    "brightness": T.adjust_brightness,
    "contrast": T.adjust_contrast,
    "saturation": T.adjust_saturation,
    "hue": T.adjust_hue,
}


@pytest.mark.parametrize("kind", list(ADJUST))
@pytest.mark.parametrize("factor_index", range(3))
def test_colour_adjustments_match_their_formulas(kind, factor_index):
    rng = np.random.default_rng(factor_index)
    x = rng.integers(0, 256, size=(9, 11, 3)).astype(np.float64)
    x[0, 0] = [80, 80, 80]  # a grey pixel: hue undefined, must stay grey
    x[0, 1] = [255, 0, 0]
    factor = [0.0, 0.37, 1.6][factor_index] if kind != "hue" else [-0.5, 0.13, 0.45][factor_index]
    ours = ADJUST[kind](x.astype(np.float32), factor)
    np.testing.assert_allclose(ours, jitter_reference(x, kind, factor), atol=2e-3, rtol=1e-5)


def test_colour_identity_factors():
    x = np.random.default_rng(0).integers(0, 256, size=(6, 7, 3)).astype(np.float32)
    for kind, f in [("brightness", 1.0), ("contrast", 1.0), ("saturation", 1.0), ("hue", 0.0)]:
        np.testing.assert_allclose(ADJUST[kind](x.copy(), f), x, atol=2e-3)


def test_color_jitter_draws_order_and_factors_like_torchvision():
    image, mask = pet_sample(20, 24)
    cj = T.ColorJitter(brightness=0.3, contrast=(0.5, 1.5), saturation=0.2, hue=0.1)
    assert cj.brightness == (0.7, 1.3) and cj.saturation == (0.8, 1.2) and cj.hue == (-0.1, 0.1)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        order = rng.permutation(4)
        factors = [rng.uniform(0.7, 1.3), rng.uniform(0.5, 1.5), rng.uniform(0.8, 1.2)]
        factors.append(rng.uniform(-0.1, 0.1))
        x = image.astype(np.float64)
        for k in order:
            x = jitter_reference(x, list(ADJUST)[k], factors[k])
        ours, m = cj(image, mask, np.random.default_rng(seed))
        assert ours.dtype == np.uint8 and m is mask
        assert np.abs(ours.astype(int) - np.rint(x)).max() <= 1


def test_color_jitter_off_is_identity_and_checks_ranges():
    image, mask = pet_sample(10, 12)
    assert T.ColorJitter()(image, mask)[0] is image
    assert T.ColorJitter(brightness=0).brightness is None
    for kwargs in [{"hue": 0.6}, {"brightness": -0.1}, {"contrast": (1.5, 0.5)}, {"hue": "x"}]:
        with pytest.raises((ValueError, TypeError)):
            T.ColorJitter(**kwargs)


@pytest.mark.parametrize("kernel_size, sigma", [(3, 0.7), ((5, 3), 1.3), (7, 2.0)])
def test_gaussian_blur_matches_torchvision_kernel_and_reflect_padding(kernel_size, sigma):
    image, mask = pet_sample(17, 23)
    blurred, m = T.GaussianBlur(kernel_size, sigma=sigma)(image, mask)
    kx, ky = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size

    def kernel1d(k):
        x = np.linspace(-(k - 1) / 2, (k - 1) / 2, k)
        pdf = np.exp(-0.5 * (x / sigma) ** 2)
        return pdf / pdf.sum()

    kernel = np.outer(kernel1d(ky), kernel1d(kx))  # (ky, kx): rows are y
    padded = np.pad(image.astype(np.float64), [(ky // 2,) * 2, (kx // 2,) * 2, (0, 0)], "reflect")
    expected = np.zeros(image.shape)
    for dy, dx in np.ndindex(ky, kx):
        expected += kernel[dy, dx] * padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    expected = np.rint(expected)
    assert blurred.dtype == np.uint8 and m is mask
    assert np.abs(blurred.astype(int) - expected).max() <= 1
    assert np.mean(blurred.astype(int) != expected) < 0.01


def test_gaussian_blur_sigma_is_drawn_per_call():
    image, mask = pet_sample(17, 23)
    t = T.GaussianBlur(5, sigma=(0.1, 2.0))
    outs = {t(image, mask, np.random.default_rng(s))[0].tobytes() for s in range(4)}
    assert len(outs) == 4
    with pytest.raises(ValueError, match="odd"):
        T.GaussianBlur(4)


def test_normalize_matches_the_formula():
    image, mask = pet_sample(13, 17)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    out, m = T.Normalize(mean, std)(image, mask.astype(np.int32))
    expected = ((image / 255.0 - np.array(mean)) / np.array(std)).transpose(2, 0, 1)
    assert out.dtype == np.float32 and out.shape == (3, 13, 17) and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert m.dtype == np.int64
    np.testing.assert_array_equal(m, mask)
    default = T.Normalize()(image, mask)[0]
    expected = (image[..., 0] / 255.0 - 0.485) / 0.229
    np.testing.assert_allclose(default[0], expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- bad input


def test_bad_samples_are_named():
    image, mask = pet_sample(8, 9)
    with pytest.raises(TypeError, match="uint8"):
        T.Resize(4)(image.astype(np.float32), mask)
    with pytest.raises(ValueError, match="3 channels"):
        T.Resize(4)(image[..., :2], mask)
    with pytest.raises(ValueError, match="does not match"):
        T.RandomHorizontalFlip()(image, mask[:, :5])
    with pytest.raises(TypeError, match="integer"):
        T.RandomHorizontalFlip()(image, mask.astype(np.float32))
    with pytest.raises(TypeError, match="Normalize must be the last"):
        T.Compose([T.Normalize(), T.ColorJitter(0.1)])(image, mask)
    with pytest.raises(TypeError, match="Generator"):
        T.RandomRotation(5)(image, mask, rng=3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: T.Resize(0),
        lambda: T.Resize((4, -1)),
        lambda: T.RandomResizedCrop(8, scale=(0.9, 0.1)),
        lambda: T.RandomHorizontalFlip(1.5),
        lambda: T.RandomRotation(-3),
        lambda: T.RandomRotation(5, fill=(1, 2)),
        lambda: T.RandomRotation(5, mask_fill=0.5),
        lambda: T.GaussianBlur(3, sigma=0),
        lambda: T.Normalize(std=(1, 0, 1)),
        lambda: T.Compose([T.Resize(4), "x"]),
    ],
)
def test_bad_arguments_raise(make):
    with pytest.raises((ValueError, TypeError)):
        make()
