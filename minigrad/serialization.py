"""``save`` / ``load``: a whole training state in one safetensors file, atomically, no pickle.

A checkpoint is a nested structure of dicts (str or int keys), lists and tuples whose leaves
are Tensors, numpy/cupy arrays, Python numbers, strings, bools, None, numpy scalars and
dtypes (a model's state dict, an optimizer's, a scheduler's, the epoch, the RNG state, the
config). :func:`save` splits it in two, the way safetensors wants it:

* every Tensor and array goes to the file's tensor table, from the host, contiguous, under
  its dotted path (``"model.enc1.conv.weight"``, ``"optimizer.state.0.exp_avg"``). A flat
  state dict therefore keeps its keys exactly, and ``safetensors.torch.load_file`` hands
  PyTorch the keys its ``load_state_dict`` expects;
* everything else becomes a JSON tree in the file's metadata (key ``"minigrad"``, with the
  format version under ``"minigrad_format"``). Containers and non-JSON values are tagged
  one-key objects (``{"dict": [[key, node], ...]}``, ``{"tensor": "table key"}``,
  ``{"scalar": ["float32", 0.5]}``...), so key types (``0`` vs ``"0"``), tuples, Tensors vs
  arrays, numpy scalar dtypes and big ints (a PCG64 state) all come back exactly.

The file is streamed (one array on the host at a time) to a temporary file in the same
folder, flushed to disk and renamed over ``path``: a crash leaves either the old checkpoint
or the new one, never half of one. Reading goes through the ``safetensors`` package.
:func:`load` checks the header before trusting it, so a truncated, corrupted or foreign file
raises :class:`CheckpointError` naming the path and what is wrong; a safetensors file that
minigrad did not write (``safetensors.torch.save_file(model.state_dict(), ...)``) loads as a
flat ``{key: Tensor}`` dict. The PyTorch twins are ``torch.save`` / ``torch.load``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets

import numpy
from safetensors import SafetensorError, safe_open

from minigrad import backend
from minigrad.tensor import Tensor

FORMAT_VERSION = 1
_TREE_KEY = "minigrad"
_VERSION_KEY = "minigrad_format"
_RESERVED_KEY = "__metadata__"  # safetensors keeps the metadata under this header key
_MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit

# safetensors header dtype -> numpy dtype, for every dtype both sides can hold.
_HEADER_DTYPES = {
    "F16": numpy.dtype(numpy.float16),
    "F32": numpy.dtype(numpy.float32),
    "F64": numpy.dtype(numpy.float64),
    "I8": numpy.dtype(numpy.int8),
    "I16": numpy.dtype(numpy.int16),
    "I32": numpy.dtype(numpy.int32),
    "I64": numpy.dtype(numpy.int64),
    "U8": numpy.dtype(numpy.uint8),
    "U16": numpy.dtype(numpy.uint16),
    "U32": numpy.dtype(numpy.uint32),
    "U64": numpy.dtype(numpy.uint64),
    "BOOL": numpy.dtype(numpy.bool_),
}
_SAVABLE_DTYPES = frozenset(_HEADER_DTYPES.values())
_HEADER_NAMES = {dtype: name for name, dtype in _HEADER_DTYPES.items()}
_DTYPES_BY_NAME = {dtype.name: dtype for dtype in _SAVABLE_DTYPES}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_TAGS = ("dict", "list", "tuple", "tensor", "array", "float", "scalar", "dtype", "scalar_type")


class CheckpointError(ValueError):
    """A file that is not a readable minigrad/safetensors checkpoint (truncated, corrupted,
    foreign); the message names the path and what is wrong."""


# ------------------------------------------------------------------------------------ save


def save(obj, path) -> None:
    """Write ``obj`` (a nested training state) to ``path`` as one safetensors file, atomically.

    Args:
        obj: dicts (str or int keys), lists and tuples nesting Tensors (any device), numpy or
            cupy arrays (any of float16/32/64, int8-64, uint8-64, bool; any shape, 0-d and
            non-contiguous included), Python numbers, strings, bools, None, numpy scalars and
            numpy dtypes. A Tensor's ``requires_grad`` and graph are not stored, as in PyTorch.
        path: the file to write (str or os.PathLike); its folder must exist. An existing file
            is replaced only once the new one is completely on disk.

    Raises:
        TypeError: a value or dict key of a kind that cannot be stored (named by its path).
        ValueError: a container that contains itself.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            errno.ENOENT, "save: the folder to write into does not exist", folder
        )
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "save: path is a folder, not a file", path)
    arrays: dict[str, numpy.ndarray] = {}
    tree = _encode(obj, (), arrays, set())
    metadata = {
        _TREE_KEY: json.dumps(tree, allow_nan=False, separators=(",", ":")),
        _VERSION_KEY: str(FORMAT_VERSION),
    }
    _write_atomically(path, arrays, metadata)


def _where(path: tuple) -> str:
    """The dotted path of a value, for messages."""
    return ".".join(path) if path else "<root>"


def _encode(value, path: tuple, arrays: dict, active: set):
    """The JSON node for ``value``; its arrays go into ``arrays`` under their dotted paths.

    ``active`` holds the ids of the containers being encoded, to catch self-containment.
    """
    if isinstance(value, Tensor):
        return {"tensor": _store_array(value.data, path, arrays)}
    if backend.is_gpu_array(value) or isinstance(value, numpy.ndarray):
        return {"array": _store_array(value, path, arrays)}
    if isinstance(value, str):  # before numpy.generic, which numpy.str_ also is
        return value
    if isinstance(value, numpy.generic):
        return _encode_scalar(value, path)
    if isinstance(value, numpy.dtype):
        return {"dtype": _savable_dtype(value, path).name}
    if isinstance(value, type) and issubclass(value, numpy.generic):
        return {"scalar_type": _savable_dtype(numpy.dtype(value), path).name}
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, dict | list | tuple):
        return _encode_container(value, path, arrays, active)
    raise TypeError(
        f"save: cannot store {_type_name(value)} at {_where(path)!r}; a checkpoint holds "
        "dicts, lists, tuples, Tensors, numpy/cupy arrays, numbers, strings, bools, None, "
        "numpy scalars and dtypes"
    )


def _type_name(value) -> str:
    """``set`` for builtins, ``torch.Tensor`` or ``numpy.int64`` for the rest."""
    kind = type(value)
    module = kind.__module__.split(".")[0]
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _encode_container(value, path: tuple, arrays: dict, active: set) -> dict:
    """The node of a dict (``[key, node]`` pairs, in order), list or tuple."""
    if id(value) in active:
        raise ValueError(f"save: the {type(value).__name__} at {_where(path)!r} contains itself")
    active.add(id(value))
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(
                    f"save: dict keys must be str or int, got {_type_name(key)} {key!r} "
                    f"at {_where(path)!r}"
                )
            items.append([key, _encode(item, (*path, str(key)), arrays, active)])
        node = {"dict": items}
    else:
        nodes = [_encode(item, (*path, str(i)), arrays, active) for i, item in enumerate(value)]
        node = {"tuple" if isinstance(value, tuple) else "list": nodes}
    active.discard(id(value))
    return node


def _encode_float(value: float):
    """A float as JSON: itself when finite (repr round-trips exactly), else a tag."""
    if math.isfinite(value):
        return value
    return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _encode_scalar(value: numpy.generic, path: tuple) -> dict:
    """A numpy scalar as its dtype name and Python value (exact for every savable dtype)."""
    dtype = _savable_dtype(value.dtype, path)
    item = value.item()
    return {"scalar": [dtype.name, _encode_float(item) if isinstance(item, float) else item]}


def _savable_dtype(dtype: numpy.dtype, path: tuple) -> numpy.dtype:
    """``dtype`` in native byte order, if a checkpoint can hold it (else TypeError)."""
    native = dtype.newbyteorder("=")
    if native not in _SAVABLE_DTYPES:
        names = ", ".join(sorted(_DTYPES_BY_NAME))
        raise TypeError(f"save: cannot store dtype {dtype} at {_where(path)!r}; supported: {names}")
    return native


def _store_array(data, path: tuple, arrays: dict) -> str:
    """Put ``data`` (a numpy or cupy array, not copied yet) in ``arrays`` under a free key.

    The key is the dotted path; only if that is taken (``{"a.b": x, "a": {"b": y}}``) or is
    safetensors' reserved ``"__metadata__"`` does it get a ``#n`` suffix.
    """
    _savable_dtype(data.dtype, path)
    key = ".".join(path)
    if key in arrays or key == _RESERVED_KEY:
        n = 1
        while f"{key}#{n}" in arrays:
            n += 1
        key = f"{key}#{n}"
    arrays[key] = data
    return key


def _write_atomically(path: str, arrays: dict, metadata: dict) -> None:
    """Write the file next to ``path``, flush and fsync it, then rename it over ``path``.

    On any error the temporary file is removed and whatever was at ``path`` is untouched.
    """
    folder, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
    file = open(temp, "xb")  # O_EXCL; created with the umask's permissions, as open() does
    try:
        with file:
            _write_safetensors(file, arrays, metadata)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        os.remove(temp)
        raise
    if os.name == "posix":  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_safetensors(file, arrays: dict, metadata: dict) -> None:
    """Stream ``arrays`` and ``metadata`` to ``file`` in the safetensors layout.

    Layout: the header length n (8 bytes, little-endian), n bytes of JSON padded with spaces
    to a multiple of 8 (``{"__metadata__": {str: str}, key: {"dtype", "shape",
    "data_offsets"}}``), then each array's bytes, C order, little-endian, back to back.
    Arrays go from the widest dtype to the narrowest, as safetensors' own writer orders them,
    so every one starts aligned to its item size; each is copied to the host only while it is
    written, so the peak extra memory is one array, not the checkpoint.
    """
    order = sorted(arrays, key=lambda key: -arrays[key].dtype.itemsize)  # stable
    header: dict = {_RESERVED_KEY: metadata}
    offset = 0
    for key in order:
        array = arrays[key]
        dtype = array.dtype.newbyteorder("=")
        end = offset + array.size * dtype.itemsize
        header[key] = {
            "dtype": _HEADER_NAMES[dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    file.write(len(raw).to_bytes(8, "little"))
    file.write(raw)
    for key in order:
        file.write(_little_endian_bytes(arrays[key]))


def _little_endian_bytes(array) -> numpy.ndarray:
    """The bytes of ``array`` as a flat uint8 host array, C order, little-endian."""
    dtype = array.dtype.newbyteorder("<")
    host = numpy.require(backend.to_host(array), dtype=dtype, requirements="C")
    return host.reshape(-1).view(numpy.uint8)


# ------------------------------------------------------------------------------------ load


def load(path, device="cpu"):
    """Read a checkpoint written by :func:`save`, or any safetensors file, onto ``device``.

    Args:
        path: the file (str or os.PathLike).
        device: where Tensors and arrays go: "cpu" (numpy) or "gpu"/"cuda" (cupy).

    Returns:
        The structure that was saved: Tensors come back as plain Tensors (no grad) and arrays
        as arrays of ``device``'s array module. A safetensors file without minigrad's metadata
        (one from ``safetensors.torch.save_file``) gives a flat ``{key: Tensor}`` dict.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, not a safetensors file, has a corrupted header
            or minigrad metadata, or holds a dtype numpy cannot (bfloat16, float8).
    """
    path = os.fspath(path)
    device = backend.canonical_device(device)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "load: no checkpoint at this path", path)
    metadata = _read_header(path)
    try:
        with safe_open(path, framework="np") as file:
            if metadata is None or _TREE_KEY not in metadata:
                return {key: _to_tensor(file.get_tensor(key), device) for key in file.keys()}
            tree = _parse_tree(path, metadata)
            reader = _Reader(path, file, set(file.keys()), device)
            return reader.decode(tree, ())
    except SafetensorError as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file: {exc}") from exc


def _to_tensor(array, device: str) -> Tensor:
    """A plain Tensor around ``array`` moved to ``device``."""
    return Tensor._wrap(backend.to_device(array, device))


def _read_header(path: str) -> dict | None:
    """Check the safetensors header against the file and return its metadata (or None).

    Layout: an 8-byte little-endian header length n, n bytes of JSON
    (``{key: {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}``), the data.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise CheckpointError(
                f"{path}: not a safetensors file (or truncated): it is {size:,} bytes, "
                "shorter than the 8-byte header length"
            )
        n = int.from_bytes(prefix, "little")
        if n > min(size - 8, _MAX_HEADER_BYTES):
            # A plausible length followed by JSON (or by nothing) is a cut-off header.
            truncated = n <= _MAX_HEADER_BYTES and f.read(1) in (b"{", b"")
            raise CheckpointError(
                f"{path}: "
                + ("truncated" if truncated else "not a safetensors file")
                + f": header length is {n:,} bytes, but the file is {size:,} bytes"
            )
        raw = f.read(n)
    header = _parse_header_json(path, raw)
    metadata = header.pop(_RESERVED_KEY, None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise CheckpointError(f"{path}: corrupted header: __metadata__ is not a str -> str map")
    data_bytes = max((_check_entry(path, key, entry) for key, entry in header.items()), default=0)
    expected = 8 + n + data_bytes
    if size != expected:
        problem = "truncated" if size < expected else "corrupted (trailing bytes)"
        raise CheckpointError(
            f"{path}: {problem}: file is {size:,} bytes, header says {expected:,}"
        )
    return metadata


def _parse_header_json(path: str, raw: bytes) -> dict:
    """The header's JSON object; text that is not JSON at all means a foreign file."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if not raw.lstrip().startswith(b"{"):
            raise CheckpointError(
                f"{path}: not a safetensors file: the {len(raw):,}-byte header is not JSON"
            ) from exc
        raise CheckpointError(f"{path}: corrupted header: invalid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupted header: not a JSON object")
    return header


def _check_entry(path: str, key: str, entry) -> int:
    """Validate one tensor's header entry; return where its data ends."""
    if not (isinstance(entry, dict) and {"dtype", "shape", "data_offsets"} <= entry.keys()):
        raise CheckpointError(
            f"{path}: corrupted header: tensor {key!r} lacks dtype, shape or data_offsets"
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _HEADER_DTYPES:
        raise CheckpointError(
            f"{path}: tensor {key!r} has dtype {dtype!r}, which minigrad cannot load "
            f"(supported: {', '.join(_HEADER_DTYPES)}); convert it to float32 before saving"
        )
    if not (_int_list(shape) and _int_list(offsets) and len(offsets) == 2):
        raise CheckpointError(
            f"{path}: corrupted header: tensor {key!r} has shape {shape!r} and "
            f"data_offsets {offsets!r}"
        )
    begin, end = offsets
    nbytes = math.prod(shape) * _HEADER_DTYPES[dtype].itemsize
    if end - begin != nbytes:
        raise CheckpointError(
            f"{path}: corrupted header: tensor {key!r} of shape {shape} and dtype {dtype} "
            f"needs {nbytes:,} bytes, its data_offsets {offsets} span {end - begin:,}"
        )
    return end


def _int_list(value) -> bool:
    """True for a JSON list of non-negative ints (a shape, data offsets)."""
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


def _parse_tree(path: str, metadata: dict):
    """The JSON tree of a minigrad checkpoint, after checking its format version."""
    version = metadata.get(_VERSION_KEY)
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path}: minigrad checkpoint format {version!r}, this minigrad reads "
            f"{str(FORMAT_VERSION)!r}"
        )
    try:
        return json.loads(metadata[_TREE_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupted minigrad metadata: invalid JSON ({exc})") from exc


class _Reader:
    """Rebuilds the saved structure from its JSON tree and the file's tensor table."""

    def __init__(self, path: str, file, keys: set, device: str):
        self.path, self.file, self.keys, self.device = path, file, keys, device

    def fail(self, path: tuple, problem: str) -> CheckpointError:
        return CheckpointError(
            f"{self.path}: corrupted minigrad metadata at {_where(path)!r}: {problem}"
        )

    def decode(self, node, path: tuple):
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if not (isinstance(node, dict) and len(node) == 1 and next(iter(node)) in _TAGS):
            raise self.fail(path, f"unknown node {node!r:.80}")
        tag, body = next(iter(node.items()))
        return getattr(self, "decode_" + tag)(body, path)

    def decode_dict(self, body, path: tuple) -> dict:
        if not (isinstance(body, list) and all(_is_item(item) for item in body)):
            raise self.fail(path, "a dict node needs [key, value] pairs with str or int keys")
        return {key: self.decode(value, (*path, str(key))) for key, value in body}

    def decode_list(self, body, path: tuple) -> list:
        if not isinstance(body, list):
            raise self.fail(path, "a list node needs a JSON list")
        return [self.decode(item, (*path, str(i))) for i, item in enumerate(body)]

    def decode_tuple(self, body, path: tuple) -> tuple:
        return tuple(self.decode_list(body, path))

    def decode_array(self, body, path: tuple):
        if not isinstance(body, str) or body not in self.keys:
            raise self.fail(path, f"tensor {body!r} is not in the file")
        return backend.to_device(self.file.get_tensor(body), self.device)

    def decode_tensor(self, body, path: tuple) -> Tensor:
        return Tensor._wrap(self.decode_array(body, path))

    def decode_float(self, body, path: tuple) -> float:
        if not isinstance(body, str) or body not in _NON_FINITE:
            raise self.fail(path, f"unknown float {body!r}")
        return _NON_FINITE[body]

    def decode_scalar(self, body, path: tuple) -> numpy.generic:
        if not (isinstance(body, list) and len(body) == 2):
            raise self.fail(path, "a scalar node needs [dtype, value]")
        dtype = self.decode_dtype(body[0], path)
        value = self.decode(body[1], path)
        if not isinstance(value, bool | int | float):
            raise self.fail(path, f"scalar value {value!r} is not a number")
        try:
            return dtype.type(value)
        except (OverflowError, ValueError) as exc:
            raise self.fail(path, f"scalar value {value!r} does not fit {dtype}") from exc

    def decode_dtype(self, body, path: tuple) -> numpy.dtype:
        if not isinstance(body, str) or body not in _DTYPES_BY_NAME:
            raise self.fail(path, f"unknown dtype {body!r}")
        return _DTYPES_BY_NAME[body]

    def decode_scalar_type(self, body, path: tuple) -> type:
        return self.decode_dtype(body, path).type


def _is_item(item) -> bool:
    """True for a dict node's ``[key, node]`` pair."""
    return isinstance(item, list) and len(item) == 2 and isinstance(item[0], str | int)
