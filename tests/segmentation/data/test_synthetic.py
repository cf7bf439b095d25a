"""make_synthetic_pets: the real archive's format and odd files, determinism by seed, read back
by OxfordIIITPet, and pets that colour alone cannot find."""

import warnings

import numpy as np
import pytest
from PIL import Image

from segmentation.data import OxfordIIITPet, make_synthetic_pets
from segmentation.data.oxford_pets import BREED_IDS, BREEDS, LIST_HEADER, read_split_file

SIZE_RANGE = (64, 96)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """45 trainval and 20 test samples, small."""
    root = tmp_path_factory.mktemp("synthetic") / "pets"
    return make_synthetic_pets(root, n_trainval=45, n_test=20, seed=5, size_range=SIZE_RANGE)


def all_files(root):
    """Relative path -> bytes of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_writes_the_same_bytes(tmp_path):
    kwargs = {"n_trainval": 5, "n_test": 3, "size_range": (48, 64)}
    a = all_files(make_synthetic_pets(tmp_path / "a", seed=1, **kwargs))
    b = all_files(make_synthetic_pets(tmp_path / "b", seed=1, **kwargs))
    c = all_files(make_synthetic_pets(tmp_path / "c", seed=2, **kwargs))
    assert a == b
    assert a.keys() == c.keys()
    images = [k for k in a if k.startswith("images/") and k.endswith(".jpg") and "/._" not in k]
    assert len(images) == 9
    assert all(a[k] != c[k] for k in images)


def test_list_files_follow_the_real_format(synthetic):
    annotations = synthetic / "annotations"
    lines = (annotations / "list.txt").read_text().splitlines()
    assert tuple(lines[:6]) == LIST_HEADER
    trainval = read_split_file(annotations / "trainval.txt")
    test = read_split_file(annotations / "test.txt")
    assert (len(trainval), len(test)) == (45, 20)
    assert not (annotations / "trainval.txt").read_text().startswith("#")
    assert [r.id for r in read_split_file(annotations / "list.txt")] == sorted(
        (r.id for r in trainval + test),
        key=lambda i: (i.rsplit("_", 1)[0].lower(), int(i.rsplit("_", 1)[1])),
    )
    numbers = {}
    for row in trainval + test:
        breed, number = row.id.rsplit("_", 1)
        assert (breed, row.species) == BREEDS[row.class_id - 1]
        assert row.breed_id == BREED_IDS[row.class_id - 1]
        numbers.setdefault(breed, []).append(int(number))
    assert len(numbers) == 37 and numbers["Abyssinian"] == [1, 2, 3]
    assert all(sorted(n) == list(range(1, len(n) + 1)) for n in numbers.values())
    assert numbers["american_bulldog"] == [1, 2, 3] and numbers["yorkshire_terrier"] == [1]


def test_odd_files_of_the_real_archive_are_there(synthetic):
    images, trimaps = synthetic / "images", synthetic / "annotations" / "trimaps"
    assert (images / "._Abyssinian_1.jpg").read_bytes()[:4] == b"\x00\x05\x16\x07"
    assert (trimaps / "._Abyssinian_1.png").is_file()
    assert (images / "Abyssinian_1.mat").read_bytes().startswith(b"MATLAB 5.0 MAT-file")
    listed = {r.id for r in read_split_file(synthetic / "annotations" / "list.txt")}
    unlisted = {p.stem for p in images.glob("*.jpg") if not p.name.startswith("._")} - listed
    assert unlisted == {"Abyssinian_4"}
    formats = {}
    for path in images.glob("[!.]*.jpg"):
        with Image.open(path) as im:
            formats.setdefault((im.format, im.mode), []).append(path.stem)
    assert formats[("PNG", "RGB")] == ["american_bulldog_1"]
    assert formats[("JPEG", "L")] == ["american_pit_bull_terrier_1"]
    assert formats[("JPEG", "CMYK")] == ["basset_hound_1"]
    assert len(formats[("JPEG", "RGB")]) == 65 - 3 + 1


def test_reader_reads_every_sample_with_a_border_band(synthetic):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sets = [OxfordIIITPet(synthetic, split=s, skip_bad=True) for s in ("trainval", "test")]
    shapes = set()
    for ds in sets:
        for i in range(len(ds)):
            image, mask = ds[i]
            h, w = mask.shape
            assert image.shape == (h, w, 3)
            assert SIZE_RANGE[0] <= min(h, w) and max(h, w) <= SIZE_RANGE[1]
            shapes.add("portrait" if h > w else "landscape" if w > h else "square")
            assert set(np.unique(mask)) == {0, 1, 2}, ds.ids[i]
            pet, background = mask == 0, mask == 1
            touching = (pet[1:] & background[:-1]) | (pet[:-1] & background[1:])
            touching_x = (pet[:, 1:] & background[:, :-1]) | (pet[:, :-1] & background[:, 1:])
            assert not touching.any() and not touching_x.any(), ds.ids[i]
    assert shapes == {"portrait", "landscape"}


def colour_bins(image):
    """8 levels per channel: 512 colour bins, int (H, W)."""
    q = image // 32
    return (q[..., 0].astype(np.int64) * 8 + q[..., 1]) * 8 + q[..., 2]


def test_colour_alone_does_not_find_the_pet(synthetic):
    """A per-pixel colour classifier fitted on trainval is no better than "all background"."""
    train = OxfordIIITPet(synthetic, target="binary")
    counts = np.zeros((2, 512))
    fractions = []
    for i in range(len(train)):
        image, mask = train[i]
        fractions.append(mask.mean())
        for c in (0, 1):
            counts[c] += np.bincount(colour_bins(image)[mask == c], minlength=512)
    assert 0.1 < np.mean(fractions) < 0.5 and min(fractions) > 0.02
    says_pet = counts[1] > counts[0]
    test = OxfordIIITPet(synthetic, split="test", target="binary")
    right = total = pets = 0
    for i in range(len(test)):
        image, mask = test[i]
        right += (says_pet[colour_bins(image)] == mask).sum()
        total += mask.size
        pets += mask.sum()
    majority = max(pets, total - pets) / total
    assert right / total < majority + 0.03


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"n_trainval": -1}, "n_trainval must be a non-negative int"),
        ({"n_trainval": 0, "n_test": 0}, "at least 1"),
        ({"seed": 1.5}, "seed must be a non-negative int"),
        ({"size_range": (100, 50)}, "size_range must be two ints"),
        ({"size_range": (16, 50)}, "32 <= min"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_synthetic_pets(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_refuses_to_write_over_a_dataset(synthetic):
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        make_synthetic_pets(synthetic, n_trainval=1, n_test=0)
