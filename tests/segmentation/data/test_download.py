"""download_url against a local HTTP server (conftest.py): verified, resumed, restarted when
the server ignores ranges, refused when corrupted; extract_archive on archives built here,
malicious ones included; OxfordIIITPet(download=True) end to end through a mirror."""

import hashlib
import io
import os
import tarfile

import numpy as np
import pytest

from segmentation.data import OxfordIIITPet, download_url, extract_archive, oxford_pets
from segmentation.data import download as download_module
from segmentation.data.download import DownloadError, IntegrityError, UnsafeArchiveError

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(download_module, "RETRY_BACKOFF_S", 0.0)


def test_good_download_is_verified_and_not_fetched_twice(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    path = tmp_path / "sub" / "a.bin"
    got = download_url(http_server.url("/a.bin"), path, md5=MD5, sha256=SHA256, size=len(PAYLOAD))
    assert got == path and path.read_bytes() == PAYLOAD
    assert not path.with_name("a.bin.part").exists()
    download_url(http_server.url("/a.bin"), path, md5=MD5, size=len(PAYLOAD))
    assert http_server.log == [("/a.bin", None)]


def test_corrupted_download_raises_and_deletes_the_part(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD[:1000] + b"X" + PAYLOAD[1001:]
    path = tmp_path / "a.bin"
    with pytest.raises(IntegrityError) as info:
        download_url(http_server.url("/a.bin"), path, md5=MD5, progress=False)
    message = str(info.value)
    assert "a.bin.part" in message and f"md5 expected {MD5}, got " in message
    assert hashlib.md5(http_server.files["/a.bin"]).hexdigest() in message
    assert not path.exists() and not path.with_name("a.bin.part").exists()


def test_sha256_mismatch_is_named(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    with pytest.raises(IntegrityError, match="sha256 expected 0{64}"):
        download_url(http_server.url("/a.bin"), tmp_path / "a.bin", sha256="0" * 64)


def test_size_announced_by_the_server_is_checked_before_downloading(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    with pytest.raises(IntegrityError, match=f"announces {len(PAYLOAD)} bytes, expected 5"):
        download_url(http_server.url("/a.bin"), tmp_path / "a.bin", size=5)
    assert not (tmp_path / "a.bin").exists()


def test_interrupted_download_resumes_with_a_range_request(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    http_server.cut_once.add("/a.bin")
    path = tmp_path / "a.bin"
    download_url(http_server.url("/a.bin"), path, md5=MD5, size=len(PAYLOAD))
    assert path.read_bytes() == PAYLOAD
    assert http_server.log == [("/a.bin", None), ("/a.bin", f"bytes={len(PAYLOAD) // 2}-")]


def test_broken_connection_keeps_the_part_for_a_later_call(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    http_server.cut_once.add("/a.bin")
    path = tmp_path / "a.bin"
    with pytest.raises(DownloadError, match="kept and a later call resumes it"):
        download_url(http_server.url("/a.bin"), path, md5=MD5, retries=0)
    part = path.with_name("a.bin.part")
    assert part.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2] and not path.exists()
    download_url(http_server.url("/a.bin"), path, md5=MD5)
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert http_server.log[-1] == ("/a.bin", f"bytes={len(PAYLOAD) // 2}-")


def test_existing_part_is_resumed(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    path = tmp_path / "a.bin"
    path.with_name("a.bin.part").write_bytes(PAYLOAD[:12345])
    download_url(http_server.url("/a.bin"), path, md5=MD5, size=len(PAYLOAD))
    assert path.read_bytes() == PAYLOAD
    assert http_server.log == [("/a.bin", "bytes=12345-")]


def test_complete_part_is_only_verified(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    path = tmp_path / "a.bin"
    path.with_name("a.bin.part").write_bytes(PAYLOAD)
    download_url(http_server.url("/a.bin"), path, md5=MD5)
    assert path.read_bytes() == PAYLOAD
    assert http_server.log == [("/a.bin", f"bytes={len(PAYLOAD)}-")]


def test_server_ignoring_range_restarts_from_the_first_byte(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    http_server.ignore_range.add("/a.bin")
    path = tmp_path / "a.bin"
    path.with_name("a.bin.part").write_bytes(b"stale bytes from another file")
    download_url(http_server.url("/a.bin"), path, md5=MD5, size=len(PAYLOAD))
    assert path.read_bytes() == PAYLOAD
    assert http_server.log == [("/a.bin", "bytes=29-")]


def test_existing_final_file_that_fails_is_downloaded_again(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    path = tmp_path / "a.bin"
    path.write_bytes(b"truncated")
    download_url(http_server.url("/a.bin"), path, md5=MD5)
    assert path.read_bytes() == PAYLOAD and len(http_server.log) == 1


def test_server_error_is_retried(http_server, tmp_path):
    http_server.files["/a.bin"] = PAYLOAD
    http_server.fail_once.add("/a.bin")
    path = download_url(http_server.url("/a.bin"), tmp_path / "a.bin", md5=MD5)
    assert path.read_bytes() == PAYLOAD and len(http_server.log) == 2


def test_http_error_names_the_url_and_status(http_server, tmp_path):
    url = http_server.url("/missing.bin")
    with pytest.raises(DownloadError, match=f"{url}: HTTP 404"):
        download_url(url, tmp_path / "m.bin")
    assert len(http_server.log) == 1


def test_file_urls_work(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    path = download_url(source.as_uri(), tmp_path / "copy.bin", md5=MD5, size=len(PAYLOAD))
    assert path.read_bytes() == PAYLOAD


def test_missing_local_file_fails_at_once(tmp_path, monkeypatch):
    calls = []
    urlopen = download_module.urllib.request.urlopen

    def counting(*args, **kwargs):
        calls.append(args)
        return urlopen(*args, **kwargs)

    monkeypatch.setattr(download_module.urllib.request, "urlopen", counting)
    with pytest.raises(DownloadError, match="No such file"):
        download_url((tmp_path / "nothing.bin").as_uri(), tmp_path / "copy.bin", retries=5)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"md5": "abc"}, "md5 must be 32 hex digits"),
        ({"sha256": "z" * 64}, "sha256 must be 64 hex digits"),
        ({"size": -1}, "size must be a non-negative int"),
    ],
)
def test_bad_expectations_are_refused_before_any_request(http_server, tmp_path, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        download_url(http_server.url("/a.bin"), tmp_path / "a.bin", **kwargs)
    assert http_server.log == []


def make_tar(members, compression: str = "") -> bytes:
    """A tar archive in memory from (TarInfo kwargs, data or None) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


GOOD = [
    ({"name": "top", "type": tarfile.DIRTYPE, "mode": 0o755}, None),
    ({"name": "top/a.txt"}, b"alpha"),
    ({"name": "top/sub/b.txt"}, b"beta"),
    ({"name": "top/link", "type": tarfile.SYMTYPE, "linkname": "sub/b.txt"}, None),
]


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz", ""])
def test_extracts_whatever_the_compression_and_the_name(tmp_path, compression):
    archive = tmp_path / "data.tar.gz"
    archive.write_bytes(make_tar([(dict(f), d) for f, d in GOOD], compression))
    dest = extract_archive(archive, tmp_path / "out")
    assert (dest / "top" / "a.txt").read_bytes() == b"alpha"
    assert (dest / "top" / "sub" / "b.txt").read_bytes() == b"beta"
    assert (dest / "top" / "link").read_bytes() == b"beta"


def test_not_an_archive_is_named_with_its_first_bytes(tmp_path):
    path = tmp_path / "images.tar.gz"
    path.write_bytes(b"<html>not found</html>" * 30)
    with pytest.raises(ValueError, match=r"images\.tar\.gz: not a tar.*3c 68 74 6d"):
        extract_archive(path, tmp_path / "out")


def test_truncated_archive_is_named(tmp_path):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(make_tar([({"name": "f"}, PAYLOAD)], "gz")[:2000])
    with pytest.raises(ValueError, match=r"a\.tar\.gz: not a readable tar archive"):
        extract_archive(path, tmp_path / "out")


def malicious(outside):
    """Per case: the archive's members, the member to be named, and words of the reason."""
    sym, hard = tarfile.SYMTYPE, tarfile.LNKTYPE
    return {
        "absolute": ([({"name": f"{outside}/evil.txt"}, b"x")], f"{outside}/evil.txt", "absolute"),
        "dotdot": (
            [({"name": "top/../../../outside/evil.txt"}, b"x")],
            "top/../../../outside/evil.txt",
            "climbs out",
        ),
        "symlink-absolute": (
            [({"name": "out", "type": sym, "linkname": str(outside)}, None)],
            "out",
            f"links to the absolute path '{outside}'",
        ),
        "symlink-out": (
            [({"name": "top/up", "type": sym, "linkname": "../../../outside"}, None)],
            "top/up",
            "outside",
        ),
        "hardlink-out": (
            [({"name": "h", "type": hard, "linkname": "../../outside/secret"}, None)],
            "h",
            "outside",
        ),
        "through-a-link": (
            [
                ({"name": "b", "type": sym, "linkname": "."}, None),
                ({"name": "a", "type": sym, "linkname": "b/../../outside"}, None),
                ({"name": "a/evil.txt"}, b"x"),
            ],
            "a",
            "outside",
        ),
        "device": ([({"name": "dev", "type": tarfile.CHRTYPE}, None)], "dev", "device"),
    }


MALICIOUS_CASES = list(malicious("/x"))


@pytest.mark.parametrize("with_filter", [True, False], ids=["data-filter", "own-check-only"])
@pytest.mark.parametrize("case", MALICIOUS_CASES)
def test_malicious_archive_is_refused_naming_the_member(tmp_path, monkeypatch, case, with_filter):
    if not with_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    members, name, why = malicious(outside)[case]
    archive = tmp_path / "bad.tar"
    archive.write_bytes(make_tar(members))
    dest = tmp_path / "box" / "dest"
    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, dest)
    assert f"member {name!r}" in str(info.value)
    assert why in str(info.value)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert sorted(os.listdir(tmp_path / "box")) == ["dest"]


def pets_archives(pets, folder):
    """images.tar.gz and annotations.tar.gz of the fixture, laid out as the real ones."""
    resources = []
    for name, top in (("images.tar.gz", "images"), ("annotations.tar.gz", "annotations")):
        path = folder / name
        with tarfile.open(path, "w:gz") as tar:
            tar.add(pets.root / top, arcname=top)
        data = path.read_bytes()
        resources.append(oxford_pets.Resource(name, len(data), hashlib.md5(data).hexdigest()))
    return tuple(resources)


def test_pets_download_end_to_end_through_a_mirror(pets, http_server, tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    monkeypatch.setattr(oxford_pets, "RESOURCES", pets_archives(pets, served))
    for name in ("images.tar.gz", "annotations.tar.gz"):
        http_server.files[f"/pets/{name}"] = (served / name).read_bytes()
    http_server.cut_once.add("/pets/images.tar.gz")
    root = tmp_path / "fetched"
    ds = OxfordIIITPet(root, download=True, mirror=http_server.url("/pets"))
    assert ds.ids == pets.ids("trainval")
    np.testing.assert_array_equal(ds[1][0], pets.images["Abyssinian_2"])
    assert [p for p, _ in http_server.log].count("/pets/images.tar.gz") == 2
    assert (root / "images.tar.gz").is_file() and not (root / "images.tar.gz.part").exists()
    before = len(http_server.log)
    again = OxfordIIITPet(root, split="test", download=True, mirror=http_server.url("/pets"))
    assert again.ids == pets.ids("test") and len(http_server.log) == before


def test_pets_download_from_a_local_folder(pets, tmp_path, monkeypatch):
    served = tmp_path / "copy"
    served.mkdir()
    monkeypatch.setattr(oxford_pets, "RESOURCES", pets_archives(pets, served))
    ds = OxfordIIITPet(tmp_path / "fetched", download=True, mirror=served)
    assert ds.ids == pets.ids("trainval")


def test_pets_download_refuses_a_corrupted_archive(pets, http_server, tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    resources = pets_archives(pets, served)
    monkeypatch.setattr(oxford_pets, "RESOURCES", resources)
    data = bytearray((served / "images.tar.gz").read_bytes())
    data[100] ^= 0xFF
    http_server.files["/images.tar.gz"] = bytes(data)
    with pytest.raises(IntegrityError, match=rf"images\.tar\.gz\.part.*{resources[0].md5}"):
        OxfordIIITPet(tmp_path / "fetched", download=True, mirror=http_server.url("/"))
    assert not (tmp_path / "fetched" / "images").exists()


def test_pets_default_mirror_is_the_oxford_site():
    assert oxford_pets._base_url(None) == "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"
    assert oxford_pets._base_url("http://host/x") == "http://host/x/"
    names = [(r.name, r.size, r.md5) for r in oxford_pets.RESOURCES]
    assert names == [
        ("images.tar.gz", 791_918_971, "5c4f3ee8e5d25df40f4fd59a7f44e54c"),
        ("annotations.tar.gz", 19_173_078, "95a8c909bbe2e81eed6a22bccdf3f68f"),
    ]
