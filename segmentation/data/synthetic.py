"""A synthetic Oxford-IIIT Pet: drawn cats and dogs in the real dataset's on-disk format.

Each image holds one pet-like figure (body, head, ears, legs, tail, fur with stripes, spots
or patches; or a close-up of head and shoulders) over a cluttered background: a gradient,
solid shapes and fur-textured blobs whose colours come from the same palette as the pets'.
Colour alone therefore cannot tell pet from background; the figure's shape can. Some pets
are partly hidden by a foreground shape, which the trimap marks as background, as the real
annotators did.

The files are those of the real archives (see :mod:`segmentation.data.oxford_pets`), with a
few of their odd files: ``._*`` AppleDouble junk, a ``.mat`` file, an unlisted image, one
``.jpg`` that is really a PNG, one grayscale and one CMYK JPEG. Every sample is drawn from
its own generator seeded by ``(seed, sample number)``: the same seed gives the same bytes
(with the same NumPy and Pillow; another JPEG encoder may round differently).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .oxford_pets import BREED_IDS, BREEDS, LIST_HEADER, dataset_exists

# Fur colours (RGB) of pets; backgrounds draw from them too, so colour is no cue.
FUR_COLORS = np.array(
    [
        (28, 24, 22),  # black
        (78, 52, 36),  # dark brown
        (132, 88, 54),  # brown
        (196, 120, 58),  # ginger
        (226, 204, 166),  # cream
        (240, 238, 232),  # white
        (128, 126, 124),  # grey
        (104, 112, 126),  # blue-grey
        (186, 150, 104),  # tan
        (214, 170, 86),  # golden
    ],
    dtype=np.float32,
)
PATTERNS = ("plain", "stripes", "spots", "patches")
# Global sample numbers drawn in an odd format, as some files of the real archive are.
_ODD_FORMATS = {1: "png", 2: "gray", 3: "cmyk"}
_APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + b"\x00\x02" + bytes(4070)
_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: synthetic".ljust(116)


@dataclass(frozen=True)
class BreedStyle:
    """How a breed looks: fur colours (indices into FUR_COLORS), pattern and ear shape."""

    base: int
    second: int
    pattern: str
    ears: str


def breed_style(class_index: int) -> BreedStyle:
    """The fixed look of breed ``class_index`` (0-based), the same for every seed."""
    rng = np.random.default_rng(7919 + class_index)
    base, second = rng.choice(len(FUR_COLORS), size=2, replace=False)
    cat = BREEDS[class_index][1] == 1
    ears = "pointy" if cat else str(rng.choice(["floppy", "floppy", "upright"]))
    return BreedStyle(int(base), int(second), str(rng.choice(PATTERNS)), ears)


@dataclass(frozen=True)
class Sample:
    """One file to write: its global number, id, split and 1-based list-file columns."""

    number: int
    id: str
    split: str
    class_id: int
    species: int
    breed_id: int


def make_synthetic_pets(
    root: str | os.PathLike,
    n_trainval: int = 200,
    n_test: int = 100,
    seed: int = 0,
    size_range: tuple[int, int] = (160, 256),
) -> Path:
    """Write a synthetic Oxford-IIIT Pet dataset under ``root``; read it with OxfordIIITPet.

    Breeds take turns (sample ``k`` of a split is breed ``k % 37``), numbered per breed from
    1 as the real ids are ("Abyssinian_1", "american_bulldog_1", ...). Each image's sides are
    drawn from ``size_range``, alternately landscape and portrait. The split files are
    written last, so an interrupted run leaves no dataset behind, only files to overwrite.

    Args:
        root: target folder (created); must not hold a dataset already.
        n_trainval, n_test: number of samples in each split (together at least 1).
        seed: non-negative int; the same seed writes the same bytes.
        size_range: (min, max) side length in pixels, 32 <= min <= max <= 4096.

    Returns:
        ``Path(root)``.
    """
    _check_arguments(n_trainval, n_test, seed, size_range)
    root = Path(root)
    if dataset_exists(root) or (root / "annotations" / "list.txt").exists():
        raise FileExistsError(f"{root} already holds a dataset; pick an empty folder")
    images, trimaps = root / "images", root / "annotations" / "trimaps"
    images.mkdir(parents=True, exist_ok=True)
    trimaps.mkdir(parents=True, exist_ok=True)
    samples = _plan(n_trainval, n_test)
    unlisted = _unlisted(samples)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        jobs = [(s, seed, size_range, images, trimaps) for s in samples]
        list(pool.map(lambda job: _write_sample(*job), jobs))
    _write_sample(unlisted, seed, size_range, images, None)
    _write_odd_files(samples[0].id, images, trimaps)
    _write_lists(samples, root / "annotations")
    return root


def _check_arguments(n_trainval, n_test, seed, size_range) -> None:
    """Raise ValueError/TypeError naming the argument and the value it got."""
    for name, value in (("n_trainval", n_trainval), ("n_test", n_test), ("seed", seed)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if n_trainval + n_test < 1:
        raise ValueError(f"n_trainval + n_test must be at least 1, got {n_trainval} + {n_test}")
    if (
        not isinstance(size_range, (tuple, list))
        or len(size_range) != 2
        or not all(isinstance(v, (int, np.integer)) for v in size_range)
        or not 32 <= size_range[0] <= size_range[1] <= 4096
    ):
        raise ValueError(
            f"size_range must be two ints (min, max) with 32 <= min <= max <= 4096, "
            f"got {size_range!r}"
        )


def _plan(n_trainval: int, n_test: int) -> list[Sample]:
    """Ids and columns of every sample: breeds in turn, numbered per breed from 1."""
    counts = [0] * len(BREEDS)
    samples = []
    for split, n in (("trainval", n_trainval), ("test", n_test)):
        for k in range(n):
            c = k % len(BREEDS)
            counts[c] += 1
            breed, species = BREEDS[c]
            samples.append(
                Sample(len(samples), f"{breed}_{counts[c]}", split, c + 1, species, BREED_IDS[c])
            )
    return samples


def _unlisted(samples: list[Sample]) -> Sample:
    """An extra image of the first breed that no list file names (the real set has 41)."""
    first = samples[0]
    taken = sum(s.class_id == first.class_id for s in samples)
    breed = BREEDS[first.class_id - 1][0]
    return Sample(
        len(samples), f"{breed}_{taken + 1}", "", first.class_id, first.species, first.breed_id
    )


def _write_sample(sample: Sample, seed, size_range, images: Path, trimaps: Path | None) -> None:
    """Draw sample ``sample.number`` and write its image (and trimap unless None)."""
    rng = np.random.default_rng([seed, sample.number])
    h, w = _image_size(rng, size_range, portrait=sample.number % 2 == 1)
    image, trimap = render_pet(rng, h, w, sample.class_id - 1)
    picture = Image.fromarray(image, "RGB")
    fmt = _ODD_FORMATS.get(sample.number) if sample.split else None
    quality = int(rng.integers(80, 96))
    path = images / f"{sample.id}.jpg"
    if fmt == "png":
        picture.save(path, format="PNG")
    elif fmt == "gray":
        picture.convert("L").save(path, format="JPEG", quality=quality)
    elif fmt == "cmyk":
        picture.convert("CMYK").save(path, format="JPEG", quality=quality)
    else:
        picture.save(path, format="JPEG", quality=quality)
    if trimaps is not None:
        Image.fromarray(trimap, "L").save(trimaps / f"{sample.id}.png", format="PNG")


def _image_size(rng: np.random.Generator, size_range, portrait: bool) -> tuple[int, int]:
    """(height, width) from size_range, the longer side vertical if ``portrait``.

    The sides differ whenever the range allows, so the orientation is never ambiguous.
    """
    lo, hi = size_range
    if lo == hi:
        return lo, lo
    long_side = int(rng.integers(lo + 1, hi + 1))
    short_side = int(rng.integers(lo, long_side))
    return (long_side, short_side) if portrait else (short_side, long_side)


def render_pet(
    rng: np.random.Generator, h: int, w: int, class_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic photo: RGB uint8 (h, w, 3) and its trimap uint8 (h, w) in {1, 2, 3}."""
    style = breed_style(class_index)
    cat = BREEDS[class_index][1] == 1
    background = _background(rng, h, w)
    silhouette, face = _silhouette(rng, h, w, cat, style.ears)
    fur = _fur(rng, h, w, style)
    alpha = np.asarray(
        silhouette.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.4)))),
        dtype=np.float32,
    )[..., None] * np.float32(1 / 255)
    blended = background + alpha * (fur - background)
    picture = Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), "RGB")
    _draw_face(ImageDraw.Draw(picture), rng, face, cat)
    if rng.random() < 0.3:
        _occlude(rng, picture, silhouette)
    noisy = np.asarray(picture, dtype=np.float32) + 3 * rng.standard_normal((h, w, 1), np.float32)
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    return image, _trimap(silhouette, band=max(1, round(min(h, w) / 90)))


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, mode: str = "L"):
    """Low-frequency noise in [-1, 1]: a random cells x cells grid upsampled bicubically.

    Returns float32 (h, w) for mode "L", (h, w, 3) for mode "RGB".
    """
    shape = (cells, cells) if mode == "L" else (cells, cells, 3)
    grid = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
    smooth = np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    return smooth * np.float32(1 / 127.5) - np.float32(1)


def _random_color(rng: np.random.Generator) -> np.ndarray:
    """Half the time a fur colour (jittered), else any colour: float32 (3,)."""
    if rng.random() < 0.5:
        return FUR_COLORS[rng.integers(len(FUR_COLORS))] + rng.normal(0, 10, 3).astype(np.float32)
    return rng.uniform(0, 255, 3).astype(np.float32)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cluttered scene, float32 (h, w, 3): gradient, shading, shapes, fur-like blobs, and a
    grain of varying strength (carpet, grass), so fine texture alone does not mark the pet."""
    theta = rng.uniform(0, 2 * np.pi)
    ys = np.arange(h, dtype=np.float32)[:, None] / max(h - 1, 1)
    xs = np.arange(w, dtype=np.float32)[None, :] / max(w - 1, 1)
    t = (np.cos(theta) * xs + np.sin(theta) * ys)[..., None]
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c0, c1 = _random_color(rng), _random_color(rng)
    scene = c0 + t * (c1 - c0) + 25 * _smooth_noise(rng, h, w, 5, "RGB")
    picture = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(4, 11))):
        _random_shape(draw, rng, h, w, tuple(int(v) for v in np.clip(_random_color(rng), 0, 255)))
    for _ in range(int(rng.integers(1, 3))):
        _fur_blob(rng, picture, h, w)
    grain = rng.uniform(0, 12) * (_smooth_noise(rng, h, w, 3) + 1) / 2
    return np.asarray(picture, dtype=np.float32) + (
        grain[..., None] * rng.standard_normal((h, w, 1), np.float32)
    )


def _random_shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, h, w, fill) -> None:
    """One ellipse, rectangle, polygon or thick line of random size at a random place."""
    size = min(h, w)
    x0, y0 = rng.uniform(-0.1, 1.0) * w, rng.uniform(-0.1, 1.0) * h
    dx, dy = rng.uniform(0.05, 0.45, 2) * size
    kind = rng.integers(4)
    if kind == 0:
        draw.ellipse([x0, y0, x0 + dx, y0 + dy], fill=fill)
    elif kind == 1:
        draw.rectangle([x0, y0, x0 + dx, y0 + dy], fill=fill)
    elif kind == 2:
        points = rng.uniform(-0.25, 0.25, (int(rng.integers(3, 7)), 2)) * size + (x0, y0)
        draw.polygon(points.ravel().tolist(), fill=fill)
    else:
        points = rng.uniform(-0.4, 0.4, (3, 2)) * size + (x0, y0)
        draw.line(points.ravel().tolist(), fill=fill, width=int(rng.integers(2, 10)))


def _fur_blob(rng: np.random.Generator, picture: Image.Image, h: int, w: int) -> None:
    """Paste an ellipse of some breed's fur: a pet's texture and colour, not its shape."""
    size = min(h, w)
    rx, ry = (int(v) for v in rng.uniform(0.08, 0.25, 2) * size)
    x0, y0 = int(rng.integers(-rx, w)), int(rng.integers(-ry, h))
    stencil = Image.new("L", (2 * rx, 2 * ry), 0)
    ImageDraw.Draw(stencil).ellipse([0, 0, 2 * rx - 1, 2 * ry - 1], fill=255)
    fur = _fur(rng, 2 * ry, 2 * rx, breed_style(int(rng.integers(len(BREEDS)))))
    texture = Image.fromarray(np.clip(fur, 0, 255).astype(np.uint8), "RGB")
    picture.paste(texture, (x0, y0), mask=stencil)


def _ellipse(cx, cy, rx, ry, angle, n=40) -> list[float]:
    """A rotated ellipse as a flat polygon point list [x0, y0, x1, y1, ...]."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1).ravel().tolist()


def _silhouette(rng: np.random.Generator, h: int, w: int, cat: bool, ears: str):
    """The pet's shape as an "L" image (255 inside) and its face (x, y, head radius, facing).

    A whole body (ellipse, head, ears, legs, tail) most of the time, else a close-up of the
    head and shoulders rising from the bottom edge, as many of the real photos are.
    """
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    size = min(h, w)
    facing = 1.0 if rng.random() < 0.5 else -1.0
    if rng.random() < 0.3:
        head_r = size * rng.uniform(0.16, 0.26)
        hx, hy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.55)
        draw.polygon(
            _ellipse(hx, h + head_r * 0.6, head_r * 1.6, (h - hy) + head_r * 0.3, 0.0), fill=255
        )
    else:
        length = size * rng.uniform(0.42, 0.7)
        tilt = rng.uniform(-0.45, 0.45)
        cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.45, 0.65)
        a, b = length / 2, length * rng.uniform(0.17, 0.26)
        along = np.array([np.cos(tilt), np.sin(tilt)]) * facing
        up = np.array([np.sin(tilt), -np.cos(tilt)]) * facing
        up = up if up[1] < 0 else -up
        draw.polygon(_ellipse(cx, cy, a, b, tilt), fill=255)
        _legs(draw, rng, (cx, cy), along, up, a, b, length)
        _tail(draw, rng, (cx, cy), along, up, a, length, cat)
        head_r = length * rng.uniform(0.17, 0.23)
        hx, hy = np.array([cx, cy]) + along * a * 0.85 + up * b * 1.1
    draw.polygon(_ellipse(hx, hy, head_r, head_r * rng.uniform(0.85, 1.0), 0.0), fill=255)
    _ears(draw, rng, hx, hy, head_r, facing, ears)
    if not cat:
        snout_x = hx + facing * head_r * 0.8
        draw.polygon(
            _ellipse(snout_x, hy + head_r * 0.25, head_r * 0.55, head_r * 0.38, 0.0), fill=255
        )
    return mask, (float(hx), float(hy), float(head_r), facing)


def _legs(draw, rng, centre, along, up, a, b, length) -> None:
    """Four legs hanging from the body's underside, front and back pairs."""
    width = max(2, int(length * rng.uniform(0.07, 0.1)))
    leg = length * rng.uniform(0.25, 0.4)
    for offset in (-0.65, -0.45, 0.45, 0.65):
        top = np.array(centre) + along * a * offset - up * b * 0.6
        foot = top + np.array([rng.uniform(-0.1, 0.1) * leg, leg])
        draw.line([*top, *foot], fill=255, width=width)


def _tail(draw, rng, centre, along, up, a, length, cat: bool) -> None:
    """A curved tail from the body's rear end: long and thin for cats, shorter for dogs."""
    base = np.array(centre) - along * a * 0.9
    reach = length * (rng.uniform(0.4, 0.6) if cat else rng.uniform(0.2, 0.4))
    bend = rng.uniform(0.3, 1.0)
    points = [base, base - along * reach * 0.5 + up * reach * 0.3]
    points.append(points[-1] - along * reach * 0.3 * (1 - bend) + up * reach * 0.6 * bend)
    width = max(2, int(length * (rng.uniform(0.04, 0.06) if cat else rng.uniform(0.05, 0.09))))
    draw.line(np.concatenate(points).tolist(), fill=255, width=width, joint="curve")


def _ears(draw, rng, hx, hy, r, facing, ears: str) -> None:
    """Two ears on the head: pointed triangles, upright rounded ones, or hanging flaps."""
    for side in (-1.0, 1.0):
        x = hx + side * r * 0.55 + facing * r * 0.1
        if ears == "floppy":
            draw.polygon(
                _ellipse(x + side * r * 0.35, hy + r * 0.2, r * 0.3, r * 0.65, side * 0.3),
                fill=255,
            )
            continue
        height = r * (rng.uniform(0.8, 1.1) if ears == "pointy" else rng.uniform(0.6, 0.8))
        base_y = hy - r * 0.6
        half = r * 0.38
        apex = (x + side * r * 0.15, base_y - height)
        draw.polygon([x - half, base_y + r * 0.2, x + half, base_y + r * 0.2, *apex], fill=255)


def _fur(rng: np.random.Generator, h: int, w: int, style: BreedStyle) -> np.ndarray:
    """Fur over the whole frame, float32 (h, w, 3): base colour, shading, hair, pattern."""
    base = FUR_COLORS[style.base] + rng.normal(0, 10, 3).astype(np.float32)
    second = FUR_COLORS[style.second] + rng.normal(0, 10, 3).astype(np.float32)
    shade = 22 * _smooth_noise(rng, h, w, 4)[..., None]
    hair = 9 * rng.standard_normal((h, w, 1), np.float32)
    weight = _pattern(rng, h, w, style.pattern)
    return base + weight[..., None] * (second - base) + shade + hair


def _pattern(rng: np.random.Generator, h: int, w: int, pattern: str) -> np.ndarray:
    """Where the second colour shows, float32 (h, w) in [0, 1]."""
    if pattern == "plain":
        return np.zeros((h, w), dtype=np.float32)
    if pattern == "stripes":
        phi = rng.uniform(0, np.pi)
        period = min(h, w) * rng.uniform(0.04, 0.08)
        ys = np.arange(h, dtype=np.float32)[:, None]
        xs = np.arange(w, dtype=np.float32)[None, :]
        warp = 2.5 * _smooth_noise(rng, h, w, 5)
        phase = (np.cos(phi) * xs + np.sin(phi) * ys) / period + warp
        return (np.sin(phase) > 0.3).astype(np.float32)
    cells = int(min(h, w) / (12 if pattern == "spots" else 40)) + 3
    return (_smooth_noise(rng, h, w, cells) > 0.35).astype(np.float32)


def _draw_face(draw: ImageDraw.ImageDraw, rng, face, cat: bool) -> None:
    """Eyes and nose on the head, inside the silhouette so the trimap is unchanged."""
    hx, hy, r, facing = face
    eye = (int(rng.integers(120, 200)), int(rng.integers(120, 200)), 40) if cat else (30, 20, 15)
    for side in (-1.0, 1.0):
        ex, ey = hx + side * r * 0.38 + facing * r * 0.15, hy - r * 0.1
        draw.ellipse([ex - r * 0.13, ey - r * 0.1, ex + r * 0.13, ey + r * 0.1], fill=eye)
        draw.ellipse([ex - r * 0.04, ey - r * 0.09, ex + r * 0.04, ey + r * 0.09], fill=(0, 0, 0))
    nx = hx + facing * r * (0.95 if not cat else 0.2)
    ny = hy + r * (0.25 if not cat else 0.3)
    draw.ellipse([nx - r * 0.12, ny - r * 0.08, nx + r * 0.12, ny + r * 0.08], fill=(20, 16, 16))


def _occlude(rng: np.random.Generator, picture: Image.Image, silhouette: Image.Image) -> None:
    """Draw a foreground bar or blob over the pet and cut it out of the silhouette."""
    w, h = picture.size
    shape = Image.new("L", (w, h), 0)
    fill = tuple(int(v) for v in np.clip(_random_color(rng), 0, 255))
    x = rng.uniform(0.2, 0.8) * w
    half = rng.uniform(0.03, 0.08) * min(h, w)
    if rng.random() < 0.5:
        ImageDraw.Draw(shape).rectangle([x - half, -1, x + half, h], fill=255)
    else:
        y = rng.uniform(0.6, 1.0) * h
        ImageDraw.Draw(shape).ellipse(
            [x - 3 * half, y - 2 * half, x + 3 * half, h + half], fill=255
        )
    picture.paste(fill, mask=shape)
    silhouette.paste(0, mask=shape)


def _trimap(silhouette: Image.Image, band: int) -> np.ndarray:
    """Trimap uint8 (h, w): 1 pet, 2 background, 3 a border band of ``band`` px each side.

    A pixel is pet when its whole (2 band + 1)^2 window is inside the silhouette, background
    when none of it is, border otherwise (an erosion and a dilation by one window count). The
    frame's edge is replicated, so a pet cut by the frame gets no band along it.
    """
    inside = np.asarray(silhouette) > 127
    count = _window_count(inside, band)
    trimap = np.full(inside.shape, 3, dtype=np.uint8)
    trimap[count == 0] = 2
    trimap[count == (2 * band + 1) ** 2] = 1
    return trimap


def _window_count(mask: np.ndarray, r: int) -> np.ndarray:
    """How many True pixels each (2r + 1)^2 window holds (edge replicated), int32 (h, w)."""
    padded = np.pad(mask, r, mode="edge")
    table = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1), dtype=np.int32)
    np.cumsum(padded, axis=0, dtype=np.int32, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    k = 2 * r + 1
    return table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]


def _write_odd_files(first_id: str, images: Path, trimaps: Path) -> None:
    """The real archive's clutter: ``._`` AppleDouble files and a ``.mat`` beside an image."""
    (images / f"._{first_id}.jpg").write_bytes(_APPLEDOUBLE)
    (trimaps / f"._{first_id}.png").write_bytes(_APPLEDOUBLE)
    (images / f"{first_id}.mat").write_bytes(_MAT_HEADER + bytes(8) + b"\x00\x01IM")


def _write_lists(samples: list[Sample], annotations: Path) -> None:
    """list.txt (6 header lines, all samples), trainval.txt and test.txt, by class and number."""
    ordered = sorted(samples, key=lambda s: (s.class_id, int(s.id.rsplit("_", 1)[1])))
    for split in ("trainval", "test"):
        rows = [_row(s) for s in ordered if s.split == split]
        (annotations / f"{split}.txt").write_text("".join(r + "\n" for r in rows))
    everything = [*LIST_HEADER, *(_row(s) for s in ordered)]
    (annotations / "list.txt").write_text("".join(r + "\n" for r in everything))


def _row(sample: Sample) -> str:
    """A sample's line in the list files: "id class_id species breed_id"."""
    return f"{sample.id} {sample.class_id} {sample.species} {sample.breed_id}"
