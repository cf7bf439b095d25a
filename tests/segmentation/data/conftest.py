"""Fixtures for the data tests: a tiny Oxford-IIIT Pet in the real on-disk format, and a local
HTTP server with byte ranges, cut connections and ignored ranges on demand.

The fixture dataset holds the odd files of the real archive: images that are PNG or GIF under
a .jpg name, grayscale, CMYK and RGBA images, a palette trimap, ``._*`` AppleDouble junk, a
``.mat`` file, an unlisted image and a README.
"""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HEADER = (
    "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
    "#BREED ID: 1-25:Cat 1:12:Dog\n#All images with 1st letter as captial are cat images\n"
    "#images with small first letter are dog images\n"
)
# id, split, class_id, species, breed_id, (height, width), how the image file is written
SAMPLES = (
    ("Abyssinian_1", "trainval", 1, 1, 1, (30, 40), "jpeg"),
    ("Abyssinian_2", "trainval", 1, 1, 1, (24, 36), "png"),
    ("american_bulldog_1", "trainval", 2, 2, 1, (32, 28), "gif"),
    ("american_bulldog_2", "trainval", 2, 2, 1, (28, 44), "gray"),
    ("Bengal_1", "trainval", 6, 1, 2, (36, 36), "cmyk"),
    ("Bengal_2", "trainval", 6, 1, 2, (26, 30), "rgba"),
    ("yorkshire_terrier_1", "test", 37, 2, 25, (40, 30), "jpeg"),
    ("Sphynx_9", "test", 34, 1, 12, (30, 34), "jpeg"),
)


@dataclass
class PetsFixture:
    """A built fixture dataset: its root and, per id, the pixels before encoding."""

    root: Path
    images: dict = field(default_factory=dict)
    trimaps: dict = field(default_factory=dict)
    formats: dict = field(default_factory=dict)

    def ids(self, split: str) -> list[str]:
        return [s[0] for s in SAMPLES if s[1] == split]


def smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Blocky RGB uint8 (h, w, 3): 8x8-pixel blocks of few colours, so JPEG stays close."""
    palette = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    blocks = rng.integers(0, 6, ((h + 7) // 8, (w + 7) // 8))
    return palette[np.kron(blocks, np.ones((8, 8), dtype=np.int64))[:h, :w]]


def trimap_pattern(h: int, w: int) -> np.ndarray:
    """uint8 (h, w): background 2, a pet rectangle 1, a border ring 3 around it."""
    t = np.full((h, w), 2, dtype=np.uint8)
    t[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 3
    t[h // 4 + 2 : 3 * h // 4 - 2, w // 4 + 2 : 3 * w // 4 - 2] = 1
    return t


def write_image(path: Path, pixels: np.ndarray, how: str) -> np.ndarray:
    """Write ``pixels`` as ``how`` says under ``path``; return the RGB a reader should see."""
    im = Image.fromarray(pixels, "RGB")
    if how == "jpeg":
        im.save(path, format="JPEG", quality=95, subsampling=0)
    elif how == "png":
        im.save(path, format="PNG")
    elif how == "gif":
        im.quantize(colors=16).save(path, format="GIF")
        with Image.open(path) as saved:
            return np.asarray(saved.convert("RGB"))
    elif how == "gray":
        im.convert("L").save(path, format="JPEG", quality=95, subsampling=0)
        return np.repeat(np.asarray(im.convert("L"))[..., None], 3, axis=2)
    elif how == "cmyk":
        im.convert("CMYK").save(path, format="JPEG", quality=95, subsampling=0)
    elif how == "rgba":
        rgba = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 128, np.uint8)], 2)
        Image.fromarray(rgba, "RGBA").save(path, format="PNG")
    return pixels


def build_pets(root: Path, seed: int = 0) -> PetsFixture:
    """Write the fixture dataset under ``root``."""
    rng = np.random.default_rng(seed)
    images, trimaps = root / "images", root / "annotations" / "trimaps"
    images.mkdir(parents=True)
    trimaps.mkdir(parents=True)
    (root / "annotations" / "xmls").mkdir()
    fixture = PetsFixture(root)
    lines = {"trainval": [], "test": []}
    for id_, split, class_id, species, breed_id, (h, w), how in SAMPLES:
        fixture.images[id_] = write_image(images / f"{id_}.jpg", smooth_image(rng, h, w), how)
        fixture.formats[id_] = how
        trimap = trimap_pattern(h, w)
        mask = Image.fromarray(trimap, "L")
        if id_ == "Abyssinian_2":
            mask = mask.convert("P")
        mask.save(trimaps / f"{id_}.png")
        fixture.trimaps[id_] = trimap
        lines[split].append(f"{id_} {class_id} {species} {breed_id}\n")
    annotations = root / "annotations"
    (annotations / "trainval.txt").write_text("".join(lines["trainval"]))
    (annotations / "test.txt").write_text("".join(lines["test"]))
    (annotations / "list.txt").write_text(HEADER + "".join(lines["trainval"] + lines["test"]))
    (annotations / "README").write_text("OXFORD-IIIT PET Dataset\n")
    junk = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)
    (images / "._Abyssinian_1.jpg").write_bytes(junk)
    (trimaps / "._Abyssinian_1.png").write_bytes(junk)
    (images / "Abyssinian_1.mat").write_bytes(b"MATLAB 5.0 MAT-file".ljust(128))
    Image.fromarray(smooth_image(rng, 20, 20)).save(images / "Abyssinian_99.jpg")
    return fixture


@pytest.fixture
def pets(tmp_path) -> PetsFixture:
    """The fixture dataset in a fresh folder."""
    return build_pets(tmp_path / "pets")


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes) with ``Range: bytes=N-`` support.

    Paths in ``server.ignore_range`` answer 200 with the whole file whatever the Range;
    paths in ``server.cut_once`` send half the body and close, and paths in
    ``server.fail_once`` answer 503, the first time they are asked.
    Every request is logged in ``server.log`` as (path, Range header or None).
    """

    def do_GET(self):
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if self.path in server.fail_once:
            server.fail_once.discard(self.path)
            self.send_error(503)
            return
        start = 0
        wanted = self.headers.get("Range")
        if wanted and self.path not in server.ignore_range:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.path in server.cut_once:
            server.cut_once.discard(self.path)
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A threaded HTTP server on 127.0.0.1; ``server.url(path)`` gives a full address."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    server.daemon_threads = True
    server.files, server.log = {}, []
    server.ignore_range, server.cut_once, server.fail_once = set(), set(), set()
    server.url = lambda path: f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()
