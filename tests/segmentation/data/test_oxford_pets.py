"""OxfordIIITPet on a tiny dataset in the real format (tests/segmentation/data/conftest.py):
the index, decoding by content, targets, torchvision's class attributes, bad files with and
without skip_bad, the joint transform."""

import numpy as np
import pytest
from PIL import Image

from segmentation.data import OxfordIIITPet
from segmentation.data.oxford_pets import (
    BREEDS,
    CLASSES,
    BadSampleError,
    decode_image,
    read_split_file,
)


def test_index_comes_from_the_split_file_in_its_order(pets):
    for split in ("trainval", "test"):
        ds = OxfordIIITPet(pets.root, split=split)
        assert ds.ids == pets.ids(split)
        assert len(ds) == len(pets.ids(split))
    assert "Abyssinian_99" not in OxfordIIITPet(pets.root).ids


def test_paths_name_the_files_of_the_distribution(pets):
    ds = OxfordIIITPet(pets.root)
    assert ds.image_path(2) == pets.root / "images" / "american_bulldog_1.jpg"
    assert ds.mask_path(-1) == pets.root / "annotations" / "trimaps" / "Bengal_2.png"


@pytest.mark.parametrize("split", ["trainval", "test"])
def test_every_format_decodes_to_rgb_uint8(pets, split):
    ds = OxfordIIITPet(pets.root, split=split)
    for i, id_ in enumerate(ds.ids):
        image, mask = ds[i]
        want = pets.images[id_]
        assert image.dtype == np.uint8 and image.shape == want.shape, id_
        assert mask.dtype == np.int64 and mask.shape == want.shape[:2], id_
        error = np.abs(image.astype(np.int64) - want.astype(np.int64))
        if pets.formats[id_] in ("png", "gif", "rgba"):
            assert error.max() == 0, id_
        else:
            assert error.mean() < 8, (id_, error.mean())
        if pets.formats[id_] == "gray":
            assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()


def test_decode_image_reads_by_content_not_extension(tmp_path):
    pixels = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    path = tmp_path / "photo.gif"
    Image.fromarray(pixels).save(path, format="PNG")
    np.testing.assert_array_equal(decode_image(path), pixels)


def test_trimap_target_maps_1_2_3_to_0_1_2(pets):
    ds = OxfordIIITPet(pets.root, target="trimap")
    for i, id_ in enumerate(ds.ids):
        np.testing.assert_array_equal(ds[i][1], pets.trimaps[id_].astype(np.int64) - 1)


def test_binary_target_is_pet_and_border_against_background(pets):
    ds = OxfordIIITPet(pets.root, target="binary")
    for i, id_ in enumerate(ds.ids):
        raw = pets.trimaps[id_]
        mask = ds[i][1]
        assert set(np.unique(mask)) == {0, 1}
        np.testing.assert_array_equal(mask, (raw != 2).astype(np.int64))


def test_classes_and_species_as_torchvision_has_them(pets):
    ds = OxfordIIITPet(pets.root)
    assert len(ds.classes) == 37
    assert ds.classes[:3] == ["Abyssinian", "American Bulldog", "American Pit Bull Terrier"]
    assert ds.classes[33] == "Sphynx" and ds.classes[36] == "Yorkshire Terrier"
    assert ds.class_to_idx["Egyptian Mau"] == 11
    assert ds.bin_classes == ["Cat", "Dog"] and ds.bin_class_to_idx == {"Cat": 0, "Dog": 1}
    # torchvision: _labels = class_id - 1, _bin_labels = species - 1, names from the ids
    assert ds.class_ids == [0, 0, 1, 1, 5, 5]
    assert ds.species == [0, 0, 1, 1, 0, 0]
    for id_, label in zip(ds.ids, ds.class_ids, strict=True):
        assert ds.classes[label] == " ".join(p.title() for p in id_.rsplit("_", 1)[0].split("_"))
    test = OxfordIIITPet(pets.root, split="test")
    assert test.class_ids == [36, 33] and test.species == [1, 0]


def test_breed_table_matches_the_real_list_file_conventions():
    assert len(BREEDS) == 37 and len(set(CLASSES)) == 37
    assert [b for b, _ in BREEDS] == sorted((b for b, _ in BREEDS), key=str.lower)
    for breed, species in BREEDS:
        assert breed[0].isupper() == (species == 1), breed
    assert sum(species == 1 for _, species in BREEDS) == 12


def test_transform_gets_the_pair_and_its_result_is_returned(pets):
    calls = []

    def transform(image, mask):
        calls.append((image.shape, mask.dtype))
        return image[::2], mask[::2] + 10

    ds = OxfordIIITPet(pets.root, transform=transform)
    image, mask = ds[0]
    assert calls == [((30, 40, 3), np.int64)]
    assert image.shape == (15, 40, 3) and mask.min() >= 10


def test_no_dataset_says_where_and_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        OxfordIIITPet(tmp_path / "empty")
    message = str(info.value)
    assert str(tmp_path / "empty") in message
    assert "download=True" in message and "make_synthetic_pets" in message


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"split": "train"}, "split must be one of"),
        ({"target": "category"}, "target must be one of"),
    ],
)
def test_bad_arguments_name_the_argument(pets, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        OxfordIIITPet(pets.root, **kwargs)


def test_transform_must_be_callable(pets):
    with pytest.raises(TypeError, match="transform must be callable"):
        OxfordIIITPet(pets.root, transform=3)


def test_mask_values_outside_the_trimap_are_named(pets):
    bad = pets.trimaps["Abyssinian_1"].copy()
    bad[0, 0], bad[1, 1] = 0, 4
    Image.fromarray(bad).save(pets.root / "annotations" / "trimaps" / "Abyssinian_1.png")
    ds = OxfordIIITPet(pets.root)
    with pytest.raises(BadSampleError, match=r"Abyssinian_1\.png.*values \[0, 4\]"):
        ds[0]
    ds[1]


def test_rgb_mask_is_refused_with_its_mode(pets):
    rgb = np.repeat(pets.trimaps["Abyssinian_2"][..., None], 3, axis=2)
    Image.fromarray(rgb).save(pets.root / "annotations" / "trimaps" / "Abyssinian_2.png")
    with pytest.raises(BadSampleError, match=r"Abyssinian_2\.png.*mode RGB"):
        OxfordIIITPet(pets.root)[1]


@pytest.mark.parametrize(
    "content", [b"not an image at all", "truncated"], ids=["garbage", "truncated"]
)
def test_undecodable_image_is_named(pets, content):
    path = pets.root / "images" / "Abyssinian_1.jpg"
    if content == "truncated":
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(BadSampleError, match=r"Abyssinian_1\.jpg: cannot decode"):
        OxfordIIITPet(pets.root)[0]


def test_image_and_mask_of_different_sizes_are_named(pets):
    Image.fromarray(np.full((5, 5), 2, np.uint8)).save(
        pets.root / "annotations" / "trimaps" / "Abyssinian_1.png"
    )
    with pytest.raises(BadSampleError, match=r"Abyssinian_1\.png: trimap is 5x5.*40x30"):
        OxfordIIITPet(pets.root)[0]


def test_missing_listed_file_fails_at_construction(pets):
    (pets.root / "images" / "Bengal_1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"Bengal_1\.jpg.*skip_bad=True"):
        OxfordIIITPet(pets.root)
    assert len(OxfordIIITPet(pets.root, split="test")) == 2


def test_skip_bad_leaves_out_bad_samples_with_one_warning(pets):
    trimaps = pets.root / "annotations" / "trimaps"
    (pets.root / "images" / "Abyssinian_2.jpg").write_bytes(b"garbage")
    (trimaps / "american_bulldog_1.png").unlink()
    Image.fromarray(np.full((28, 44), 7, np.uint8)).save(trimaps / "american_bulldog_2.png")
    Image.fromarray(np.full((3, 3), 1, np.uint8)).save(trimaps / "Bengal_2.png")
    with pytest.warns(UserWarning) as record:
        ds = OxfordIIITPet(pets.root, skip_bad=True)
    assert len(record) == 1
    message = str(record[0].message)
    assert "left out 4 of 6" in message
    for id_ in ("Abyssinian_2", "american_bulldog_1", "american_bulldog_2", "Bengal_2"):
        assert id_ in message
    assert "values [7]" in message
    assert ds.ids == ["Abyssinian_1", "Bengal_1"]
    assert [id_ for id_, _ in ds.skipped] == [
        "Abyssinian_2",
        "american_bulldog_1",
        "american_bulldog_2",
        "Bengal_2",
    ]
    assert ds.class_ids == [0, 5] and ds.species == [0, 0]
    for i in range(len(ds)):
        ds[i]


def test_skip_bad_on_a_clean_dataset_keeps_everything_silently(pets):
    ds = OxfordIIITPet(pets.root, skip_bad=True)
    assert ds.ids == pets.ids("trainval") and ds.skipped == []


def test_split_file_reader_skips_comments_and_names_bad_lines(pets, tmp_path):
    rows = read_split_file(pets.root / "annotations" / "list.txt")
    assert len(rows) == 8 and rows[0].id == "Abyssinian_1" and rows[-1].breed_id == 12
    bad = tmp_path / "trainval.txt"
    bad.write_text("# comment\nAbyssinian_1 1 1 1\nAbyssinian_2 1 one 1\n")
    with pytest.raises(ValueError, match=r"trainval\.txt, line 3: expected"):
        read_split_file(bad)
    bad.write_text("Abyssinian_1 38 1 1\n")
    with pytest.raises(ValueError, match="class_id must be in 1..37"):
        read_split_file(bad)
