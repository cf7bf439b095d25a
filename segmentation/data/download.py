"""Fetch and unpack dataset archives: resumable, verified downloads and safe tar extraction.

:func:`download_url` writes to ``path + ".part"``, resumes an earlier ``.part`` with an HTTP
``Range`` request, checks size and checksums and only then renames the file to ``path``, so a
file under its final name is always whole. :func:`extract_archive` finds the compression by
its magic bytes (not the file name) and refuses any member that would land outside the
destination folder. torchvision's twins are ``torchvision.datasets.utils.download_url`` and
``extract_archive``; these take the final file path instead of a folder and file name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

CHUNK_BYTES = 1 << 20
RETRY_BACKOFF_S = 1.0
USER_AGENT = "minigrad-segmentation/0.1 (+urllib)"

_MAGIC = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_TAR_MAGIC_OFFSET = 257


class DownloadError(OSError):
    """A download failed: the server answered with an error, or the connection kept breaking."""


class IntegrityError(DownloadError):
    """A downloaded file's size or checksum is not the expected one."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the destination folder, or is a device."""


def download_url(
    url: str,
    path: str | os.PathLike,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    *,
    retries: int = 3,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``path``, resuming a partial download and verifying the result.

    Bytes go to ``path + ".part"``. An existing ``.part`` is continued with ``Range: bytes=N-``;
    a server that ignores the range (answers 200 instead of 206) makes the download restart
    from the first byte. A connection that breaks is retried ``retries`` times, each retry
    resuming where the last one stopped. When the bytes are in, ``size``, ``md5`` and
    ``sha256`` (those given) are checked and the file is renamed to ``path``. If ``path``
    already exists and passes the same checks, nothing is downloaded.

    Args:
        url: http(s):// or file:// address.
        path: the final file name; its folder is created.
        md5, sha256: expected hex digests, or None to skip that check.
        size: expected size in bytes, or None.
        progress: show a tqdm progress bar on stderr.
        retries: how many times a broken connection is resumed before giving up.
        timeout: seconds a connect or read may block.

    Returns:
        ``Path(path)``.

    Raises:
        IntegrityError: size or a checksum differs; the bad ``.part`` is deleted.
        DownloadError: the server answered with an HTTP error, or the connection broke more
            than ``retries`` times (the ``.part`` is kept for a later resume).
    """
    path = Path(path)
    _check_expected(md5, sha256, size)
    if path.exists():
        if not _integrity_problems(path, md5, sha256, size):
            return path
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    _fetch_with_retries(url, part, size, progress, retries, timeout)
    problems = _integrity_problems(part, md5, sha256, size)
    if problems:
        part.unlink()
        raise IntegrityError(
            f"{part} (from {url}): {'; '.join(problems)}; the partial file was deleted, "
            "run again to download it afresh"
        )
    os.replace(part, path)
    return path


def _check_expected(md5, sha256, size) -> None:
    """Reject malformed expectations before any byte is fetched."""
    for name, value, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if value is not None and (
            not isinstance(value, str)
            or len(value) != length
            or any(c not in "0123456789abcdefABCDEF" for c in value)
        ):
            raise ValueError(f"{name} must be {length} hex digits or None, got {value!r}")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ValueError(f"size must be a non-negative int or None, got {size!r}")


def _fetch_with_retries(url, part: Path, size, progress, retries, timeout) -> None:
    """Run :func:`_fetch` until the file is complete, resuming after each broken connection."""
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, size, progress, timeout)
            return
        except DownloadError:
            raise
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == retries:
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, FileNotFoundError) or attempt == retries:
                raise DownloadError(f"{url}: {e.reason}") from e
        except (OSError, http.client.HTTPException) as e:
            if attempt == retries:
                raise DownloadError(
                    f"{url}: connection failed {retries + 1} times ({e!r}); "
                    f"{part} is kept and a later call resumes it"
                ) from e
        time.sleep(RETRY_BACKOFF_S * 2**attempt)


def _fetch(url, part: Path, size, progress, timeout) -> None:
    """One request: append to ``part`` from its current length, or restart it from zero.

    Raises ``http.client.IncompleteRead`` when the server closes before the announced end.
    """
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and offset == size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not offset:
            raise
        if e.headers.get("Content-Range", "") == f"bytes */{offset}":
            return
        part.unlink()
        _fetch(url, part, size, progress, timeout)
        return
    with response:
        status = response.getcode() or 200
        if status != 206:
            offset = 0
        total = _announced_total(response, offset, url)
        if size is not None and total is not None and total != size:
            raise IntegrityError(f"{url}: the server announces {total} bytes, expected {size}")
        _copy_body(response, part, offset, total, progress)


def _announced_total(response, offset: int, url: str) -> int | None:
    """The whole file's length from Content-Range (206) or Content-Length, or None."""
    content_range = response.headers.get("Content-Range")
    if offset and content_range:
        unit, _, spec = content_range.partition(" ")
        first, _, rest = spec.partition("-")
        _, _, whole = rest.partition("/")
        if unit != "bytes" or not first.isdigit() or int(first) != offset:
            raise DownloadError(
                f"{url}: asked for bytes from {offset}, the server sent {content_range!r}"
            )
        return int(whole) if whole.isdigit() else None
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _copy_body(response, part: Path, offset: int, total, progress: bool) -> None:
    """Stream the body onto ``part`` (appending at ``offset``, or truncating when 0)."""
    with (
        open(part, "ab" if offset else "wb") as f,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
        ) as bar,
    ):
        while chunk := response.read(CHUNK_BYTES):
            f.write(chunk)
            bar.update(len(chunk))
        f.flush()
        os.fsync(f.fileno())
        written = f.tell()
    if total is not None and written < total:
        raise http.client.IncompleteRead(b"", total - written)


def _integrity_problems(path: Path, md5, sha256, size) -> list[str]:
    """What differs from the expectations, as "what: expected X, got Y" strings."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return [f"size expected {size} bytes, got {actual_size}"]
    digests = {name: hashlib.new(name) for name, want in (("md5", md5), ("sha256", sha256)) if want}
    if digests:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                for digest in digests.values():
                    digest.update(chunk)
    wanted = {"md5": md5, "sha256": sha256}
    return [
        f"{name} expected {wanted[name].lower()}, got {digest.hexdigest()}"
        for name, digest in digests.items()
        if digest.hexdigest() != wanted[name].lower()
    ]


def extract_archive(path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a tar archive (plain, gzip, bzip2 or xz, told apart by content) into ``dest``.

    Every member is checked before it is written: an absolute name, a ``..`` that leaves
    ``dest``, a symbolic or hard link whose target lies outside ``dest`` (also through links
    extracted before it), or a device or FIFO raises :class:`UnsafeArchiveError` naming the
    member. Python's ``tarfile`` ``"data"`` filter is applied on top where it exists
    (3.10.12+, 3.11.4+, 3.12+).

    Returns:
        ``Path(dest)``.
    """
    path, dest = Path(path), Path(dest)
    compression = sniff_compression(path)
    dest.mkdir(parents=True, exist_ok=True)
    dest_real = os.path.realpath(dest)
    filter_kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with tarfile.open(path, mode=f"r:{compression}") as tar:
            for member in tar:
                _check_member(path, member, dest_real)
                try:
                    tar.extract(member, dest, **filter_kwargs)
                except tarfile.FilterError as e:
                    raise UnsafeArchiveError(f"{path}: member {member.name!r}: {e}") from e
    except (tarfile.ReadError, EOFError) as e:
        raise ValueError(f"{path}: not a readable tar archive ({e})") from e
    return dest


def sniff_compression(path: str | os.PathLike) -> str:
    """The tarfile compression of ``path`` from its first bytes: "gz", "bz2", "xz" or ""."""
    with open(path, "rb") as f:
        head = f.read(_TAR_MAGIC_OFFSET + 8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar" or _is_v7_tar(path):
        return ""
    raise ValueError(
        f"{path}: not a tar, gzip, bzip2 or xz archive (it starts with {head[:8].hex(' ')})"
    )


def _is_v7_tar(path) -> bool:
    """Whether an old tar without the "ustar" magic is readable as plain tar."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            return tar.next() is not None
    except tarfile.TarError:
        return False


def _check_member(archive: Path, member: tarfile.TarInfo, dest_real: str) -> None:
    """Raise :class:`UnsafeArchiveError` if ``member`` would write or point outside dest."""
    name = member.name

    def unsafe(why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"{archive}: member {name!r} {why}; nothing of it was written")

    if os.path.isabs(name) or name.startswith(("/", "\\")):
        raise unsafe("has an absolute path")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise unsafe("is a device or FIFO, which a dataset archive never holds")
    target = _destination(dest_real, name)
    if not _inside(target, dest_real):
        how = " (it climbs out with '..')" if ".." in name.replace("\\", "/").split("/") else ""
        raise unsafe(f"would be written to {target}, outside {dest_real}{how}")
    if member.issym() or member.islnk():
        link = member.linkname
        if os.path.isabs(link):
            raise unsafe(f"links to the absolute path {link!r}")
        base = os.path.dirname(target) if member.issym() else dest_real
        pointed = os.path.realpath(os.path.join(base, link))
        if not _inside(pointed, dest_real):
            raise unsafe(f"links to {link!r}, which resolves to {pointed}, outside {dest_real}")


def _destination(dest_real: str, name: str) -> str:
    """Where the OS puts ``name`` under dest: its folder resolved through links on disk.

    The last component is kept as is (a link member is created there, not followed), unless
    it is "." or "..".
    """
    parent = os.path.realpath(os.path.join(dest_real, os.path.dirname(name)))
    leaf = os.path.basename(name)
    if leaf in ("", ".", ".."):
        return os.path.realpath(os.path.join(parent, leaf))
    return os.path.join(parent, leaf)


def _inside(path: str, folder: str) -> bool:
    """Whether the resolved ``path`` is ``folder`` or below it."""
    return os.path.commonpath([path, folder]) == folder
