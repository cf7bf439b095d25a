"""minigrad.save / minigrad.load: round trips of every kind of value, torch interop both ways,
atomic writes, and clear errors for truncated, foreign and corrupted files."""

import json
import math
import os
import struct

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import backend, serialization

SAVABLE = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
]
TORCH_DTYPES = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.int32: np.int32,
    torch.int64: np.int64,
    torch.uint8: np.uint8,
    torch.bool: np.bool_,
}


# ------------------------------------------------------------------------------- helpers


def assert_same(expected, actual, device, where="<root>"):
    """``actual`` (loaded on ``device``) equals ``expected`` exactly, types and key order
    included: Tensors stay Tensors, arrays arrays, tuples tuples, int keys int keys."""
    if isinstance(expected, mg.Tensor):
        assert type(actual) is mg.Tensor, where
        assert actual.device == backend.canonical_device(device), where
        assert not actual.requires_grad and actual.grad_fn is None, where
        assert_same_array(expected.data, actual.data, where)
    elif backend.is_array(expected) and not isinstance(expected, np.generic):
        assert backend.is_array(actual) and not isinstance(actual, mg.Tensor), where
        assert backend.device_of(actual) == backend.canonical_device(device), where
        assert_same_array(expected, actual, where)
    elif isinstance(expected, dict):
        assert type(actual) is dict, where
        assert [(type(k), k) for k in actual] == [(type(k), k) for k in expected], where
        for key, value in expected.items():
            assert_same(value, actual[key], device, f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert type(actual) is type(expected) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_same(e, a, device, f"{where}.{i}")
    elif isinstance(expected, float) and math.isnan(expected):
        assert type(actual) is type(expected) and math.isnan(actual), where
    else:
        assert type(actual) is type(expected), where
        assert actual == expected, where
        if isinstance(expected, float):
            assert math.copysign(1, actual) == math.copysign(1, expected), where


def assert_same_array(expected, actual, where):
    e, a = backend.to_host(expected), backend.to_host(actual)
    assert a.dtype == e.dtype and a.shape == e.shape, where
    assert np.array_equal(a, e, equal_nan=e.dtype.kind == "f"), where
    assert a.flags.writeable, where  # optimizers update loaded state in place


def on(device, array):
    """``array`` moved to ``device``'s array module."""
    return backend.to_device(array, device)


def training_state(device):
    """A checkpoint the way a training loop writes one."""
    gen = np.random.default_rng(0)
    weight = mg.tensor(gen.standard_normal((4, 3, 3, 3)).astype(np.float32), device=device)
    return {
        "model": {
            "enc1.conv.weight": weight,
            "enc1.bn.running_var": mg.tensor(gen.random(4), device=device),
            "enc1.bn.num_batches_tracked": mg.tensor(np.array(7), device=device),
        },
        "optimizer": {
            "state": {0: {"step": mg.tensor(np.array(3.0)), "exp_avg": weight * 0.5}},
            "param_groups": [
                {"lr": 1e-3, "betas": (0.9, 0.999), "amsgrad": False, "params": [0]},
            ],
        },
        "scheduler": {"last_epoch": 4, "base_lrs": [0.01], "_last_lr": [0.0095]},
        "epoch": 5,
        "best": {"val_miou": np.float32(0.625), "at": np.int64(3)},
        "rng": np.random.default_rng(1234).bit_generator.state,
        "config": {
            "name": "unet ✓",
            "base_channels": 64,
            "dropout": None,
            "amp": True,
            "dtype": np.dtype(np.float32),
            "param_dtype": mg.float64,
            "tolerance": -0.0,
            "limits": [float("inf"), float("-inf"), float("nan"), 2**80, -(2**70)],
        },
        "raw": on(device, gen.standard_normal((2, 5))[:, ::2]),
        "flags": on(device, np.array([True, False])),
        "empty": {},
        "nothing": [],
    }


def header_of(path) -> tuple[int, dict]:
    """(header length, header JSON) of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return n, json.loads(f.read(n))


def write_raw(path, header, data=b""):
    """A safetensors-shaped file with any header (a dict, or raw bytes) and data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def files_in(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------------------- round trips


def test_training_state_round_trips_exactly(device, tmp_path):
    state = training_state(device)
    path = tmp_path / "last.safetensors"
    mg.save(state, path)
    assert_same(state, mg.load(path, device=device), device)


def test_loads_onto_another_device(device, tmp_path):
    other = "cpu" if device == "gpu" else "gpu"
    state = training_state(device)
    mg.save(state, tmp_path / "c.safetensors")
    assert_same(state, mg.load(str(tmp_path / "c.safetensors"), device=other), other)


@pytest.mark.parametrize("dtype", SAVABLE, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "0-d", "empty"])
def test_every_dtype_and_layout(dtype, layout, device, tmp_path):
    gen = np.random.default_rng(3)
    info = np.finfo(dtype) if np.dtype(dtype).kind == "f" else None
    if info is not None:
        base = gen.standard_normal((3, 4)).astype(dtype)
        base.flat[:3] = [info.max, info.tiny, np.nan]
    elif dtype is np.bool_:
        base = gen.random((3, 4)) > 0.5
    else:
        limits = np.iinfo(dtype)
        base = gen.integers(limits.min, limits.max, (3, 4), dtype=dtype, endpoint=True)
    array = {
        "contiguous": base,
        "transposed": base.T,
        "strided": base[::2, 1::2],
        "0-d": base[1, 2].reshape(()).copy(),
        "empty": base[:0],
    }[layout]
    value = on(device, array)
    obj = {"tensor": mg.Tensor._wrap(value), "array": value}
    if array.size:
        obj["scalar"] = array.reshape(-1)[0]
    mg.save(obj, tmp_path / "d.safetensors")
    assert_same(obj, mg.load(tmp_path / "d.safetensors", device=device), device)


leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
    | hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    )
    | st.builds(mg.Tensor._wrap, hnp.arrays(np.float32, hnp.array_shapes(max_dims=2)))
)
keys = st.text(max_size=4) | st.integers(min_value=-3, max_value=3)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(keys, children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=25, deadline=None)
@given(obj=trees)
def test_drawn_structures_round_trip(obj, tmp_path_factory):
    path = tmp_path_factory.mktemp("drawn") / "x.safetensors"
    mg.save(obj, path)
    assert_same(obj, mg.load(path), "cpu")


def test_int_and_str_keys_stay_apart(tmp_path):
    obj = {0: np.zeros(2), "0": np.ones(2), 1: "one", "1": 1, "": {-5: None, "-5": 2.5}}
    mg.save(obj, tmp_path / "k.safetensors")
    assert_same(obj, mg.load(tmp_path / "k.safetensors"), "cpu")


def test_colliding_dotted_paths_get_distinct_table_keys(tmp_path):
    obj = {"a.b": np.zeros(1), "a": {"b": np.ones(1)}, "__metadata__": np.full(1, 2.0)}
    path = tmp_path / "c.safetensors"
    mg.save(obj, path)
    assert_same(obj, mg.load(path), "cpu")
    assert set(safetensors.numpy.load_file(path)) == {"a.b", "a.b#1", "__metadata__#1"}


def test_requires_grad_is_not_stored(tmp_path):
    weight = mg.randn(2, 3, requires_grad=True)
    loss = (weight * 2).sum()
    loss.backward()
    mg.save({"w": weight, "y": weight * 3}, tmp_path / "g.safetensors")
    loaded = mg.load(tmp_path / "g.safetensors")
    assert not loaded["w"].requires_grad and loaded["w"].grad is None
    np.testing.assert_array_equal(loaded["y"].numpy(), weight.detach().numpy() * 3)


def test_rng_state_with_big_ints_resumes_the_same_stream(tmp_path):
    gen = np.random.default_rng(2024)
    gen.standard_normal(7)
    state = gen.bit_generator.state
    assert state["state"]["state"] > 2**64  # JSON must carry ints beyond 64 bits
    mg.save({"rng": state}, tmp_path / "r.safetensors")
    resumed = np.random.Generator(np.random.PCG64())
    resumed.bit_generator.state = mg.load(tmp_path / "r.safetensors")["rng"]
    np.testing.assert_array_equal(resumed.standard_normal(5), gen.standard_normal(5))


def test_file_layout_follows_the_safetensors_format(tmp_path):
    obj = {"flag": np.ones(3, bool), "w": np.ones((2, 3)), "step": np.int32(4), "h": np.ones(5)}
    obj.update(half=np.ones(3, np.float16), i=np.ones(3, np.int32))
    path = tmp_path / "f.safetensors"
    mg.save(obj, path)
    n, header = header_of(path)
    assert n % 8 == 0
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    assert list(entries) == ["w", "h", "i", "half", "flag"]  # widest first, then as saved
    end = 0
    for key, entry in entries.items():
        assert entry["data_offsets"][0] == end, key  # back to back
        assert end % obj[key].dtype.itemsize == 0, key  # aligned, as 8 + n is
        end = entry["data_offsets"][1]
    assert 8 + n + end == path.stat().st_size
    strict = dict(safetensors.deserialize(path.read_bytes()))  # the reference parser
    assert strict.keys() == entries.keys()
    assert header["__metadata__"]["minigrad_format"] == "1"


def test_big_endian_arrays_are_stored_little_endian(tmp_path):
    array = np.arange(6, dtype=">f8").reshape(2, 3)
    mg.save({"a": array, "t": mg.Tensor._wrap(array[:, ::2])}, tmp_path / "b.safetensors")
    loaded = mg.load(tmp_path / "b.safetensors")
    assert loaded["a"].dtype == np.float64 and loaded["a"].dtype.isnative
    np.testing.assert_array_equal(loaded["a"], array)
    np.testing.assert_array_equal(loaded["t"].numpy(), array[:, ::2])
    assert safetensors.torch.load_file(tmp_path / "b.safetensors")["a"].tolist() == array.tolist()


def test_path_like_and_overwrite(tmp_path):
    path = tmp_path / "o.safetensors"
    mg.save({"v": 1}, path)
    mg.save({"v": 2}, str(path))
    assert mg.load(path) == {"v": 2}
    assert files_in(tmp_path) == ["o.safetensors"]


def test_new_file_follows_the_umask(tmp_path):
    mask = os.umask(0o022)
    try:
        mg.save({"v": 1}, tmp_path / "m.safetensors")
    finally:
        os.umask(mask)
    assert os.stat(tmp_path / "m.safetensors").st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------- torch interop


def test_flat_state_dict_loads_in_torch_with_the_same_keys(device, tmp_path):
    torch_model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    for buffer in torch_model.buffers():
        buffer.add_(1)
    ours = {
        key: mg.tensor(value.numpy(), device=device)
        for key, value in torch_model.state_dict().items()
    }
    path = tmp_path / "m.safetensors"
    mg.save(ours, path)
    loaded = safetensors.torch.load_file(path)
    assert sorted(loaded) == sorted(ours)
    reference = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    reference.load_state_dict(loaded)  # strict: the keys are exactly torch's
    for key, value in reference.state_dict().items():
        assert value.dtype == torch_model.state_dict()[key].dtype, key
        assert torch.equal(value, torch_model.state_dict()[key]), key


def test_every_torch_dtype_reads_back_in_torch(tmp_path):
    gen = np.random.default_rng(5)
    arrays = {
        f"t.{np.dtype(d).name}": np.abs(gen.standard_normal((2, 3)) * 50).astype(d)
        for d in TORCH_DTYPES.values()
    }
    mg.save({k: mg.tensor(v) for k, v in arrays.items()}, tmp_path / "t.safetensors")
    loaded = safetensors.torch.load_file(tmp_path / "t.safetensors")
    for key, array in arrays.items():
        assert TORCH_DTYPES[loaded[key].dtype] == array.dtype, key
        np.testing.assert_array_equal(loaded[key].numpy(), array, err_msg=key)


def test_torch_save_file_loads_as_a_flat_dict_of_tensors(device, tmp_path):
    torch.manual_seed(0)
    state = {
        "head.weight": torch.randn(3, 4),
        "head.bias": torch.randn(3, dtype=torch.float64),
        "bn.num_batches_tracked": torch.tensor(9),
        "mask": torch.rand(2, 2) > 0.5,
        "half": torch.randn(2).half(),
        "pixels": torch.randint(0, 255, (2, 2), dtype=torch.uint8),
        "index": torch.arange(3, dtype=torch.int32),
        "scalar": torch.tensor(2.5),
    }
    path = tmp_path / "torch_model.safetensors"
    safetensors.torch.save_file(state, path, metadata={"format": "pt"})
    loaded = mg.load(path, device=device)
    assert list(loaded) == sorted(state)
    for key, value in state.items():
        assert type(loaded[key]) is mg.Tensor and loaded[key].device == device, key
        assert loaded[key].dtype == TORCH_DTYPES[value.dtype], key
        np.testing.assert_array_equal(loaded[key].numpy(), value.numpy(), err_msg=key)


def test_torch_bfloat16_is_refused_by_name(tmp_path):
    path = tmp_path / "bf16.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, path)
    with pytest.raises(mg.CheckpointError, match=r"tensor 'w' has dtype 'BF16'") as info:
        mg.load(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------------- atomic


def test_failure_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    mg.save({"epoch": 1, "w": np.zeros(1000), "v": np.zeros(10)}, path)
    before = path.read_bytes()
    written = []
    real = serialization._little_endian_bytes

    def second_array_fails(array):
        if written:
            raise OSError("disk full")
        written.append(real(array))
        return written[-1]

    monkeypatch.setattr(serialization, "_little_endian_bytes", second_array_fails)
    with pytest.raises(OSError, match="disk full"):
        mg.save({"epoch": 2, "w": np.ones(1000), "v": np.ones(10)}, path)
    assert len(written) == 1  # the header and one array had gone to the temporary file
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["last.safetensors"]
    assert mg.load(path)["epoch"] == 1


def test_failure_at_fsync_leaves_no_file_behind(tmp_path, monkeypatch):
    def crash(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        mg.save({"w": np.ones(3)}, tmp_path / "new.safetensors")
    assert files_in(tmp_path) == []


def test_bad_value_fails_before_touching_the_disk(tmp_path):
    path = tmp_path / "c.safetensors"
    mg.save({"epoch": 1}, path)
    with pytest.raises(TypeError, match=r"cannot store set at 'config\.classes'"):
        mg.save({"epoch": 2, "config": {"classes": {1, 2}}}, path)
    assert mg.load(path) == {"epoch": 1} and files_in(tmp_path) == ["c.safetensors"]


def test_missing_folder_is_named(tmp_path):
    folder = tmp_path / "runs" / "exp1"
    with pytest.raises(FileNotFoundError, match="folder to write into does not exist") as info:
        mg.save({"v": 1}, folder / "last.safetensors")
    assert str(folder) in str(info.value)


def test_saving_onto_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="path is a folder"):
        mg.save({"v": 1}, tmp_path)


# ------------------------------------------------------------------------ bad save input


@pytest.mark.parametrize(
    ("obj", "error", "message"),
    [
        ({"a": [1, 2j]}, TypeError, r"cannot store complex at 'a\.1'"),
        ({"a": object()}, TypeError, r"cannot store object at 'a'"),
        ({np.int64(0): 1}, TypeError, r"keys must be str or int, got numpy\.int64 np\.int64\(0\)"),
        ({(1, 2): 1}, TypeError, r"dict keys must be str or int, got tuple"),
        ({"w": np.array(["a"])}, TypeError, r"cannot store dtype <U1 at 'w'"),
        ({"w": np.zeros(2, np.complex64)}, TypeError, r"cannot store dtype complex64 at 'w'"),
        ({"t": np.datetime64("2024-01-01")}, TypeError, r"cannot store dtype datetime64\[D\]"),
        ({"d": np.dtype(np.float128)}, TypeError, r"cannot store dtype float128 at 'd'"),
        ({"w": torch.zeros(2)}, TypeError, r"cannot store torch\.Tensor at 'w'"),
    ],
)
def test_unstorable_values_are_named(obj, error, message, tmp_path):
    with pytest.raises(error, match=message):
        mg.save(obj, tmp_path / "x.safetensors")
    assert files_in(tmp_path) == []


def test_self_containing_structure_is_refused(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match=r"the dict at 'a\.0' contains itself"):
        mg.save(loop, tmp_path / "x.safetensors")


def test_shared_values_are_not_a_cycle(tmp_path):
    shared = [1, 2]
    obj = {"a": shared, "b": shared, "c": (shared, shared)}
    mg.save(obj, tmp_path / "s.safetensors")
    assert mg.load(tmp_path / "s.safetensors") == obj


# ------------------------------------------------------------------------- bad load input


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="no checkpoint at this path") as info:
        mg.load(path)
    assert str(path) in str(info.value)


def test_unknown_device_is_refused(tmp_path):
    mg.save({"v": 1}, tmp_path / "v.safetensors")
    with pytest.raises(mg.DeviceError, match="device must be"):
        mg.load(tmp_path / "v.safetensors", device="tpu")


def test_truncated_file_at_every_part(tmp_path):
    path = tmp_path / "full.safetensors"
    mg.save({"w": np.arange(100, dtype=np.float32), "epoch": 3}, path)
    whole = path.read_bytes()
    n, _ = header_of(path)
    cuts = {
        0: "shorter than the 8-byte header length",
        5: "it is 5 bytes, shorter than the 8-byte header length",
        8: f"truncated: header length is {n:,} bytes, but the file is 8 bytes",
        8 + n // 2: f"truncated: header length is {n:,} bytes, but the file is {8 + n // 2:,}",
        8 + n: f"truncated: file is {8 + n:,} bytes, header says {len(whole):,}",
        len(whole) - 1: f"truncated: file is {len(whole) - 1:,} bytes, header says {len(whole):,}",
    }
    for cut, message in cuts.items():
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(whole[:cut])
        with pytest.raises(mg.CheckpointError) as info:
            mg.load(bad)
        assert str(info.value).startswith(f"{bad}: "), cut
        assert message in str(info.value), (cut, str(info.value))


def test_trailing_bytes_are_reported(tmp_path):
    path = tmp_path / "t.safetensors"
    mg.save({"w": np.zeros(4)}, path)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(mg.CheckpointError, match=rf"trailing bytes\): file is {size + 4:,}"):
        mg.load(path)


@pytest.mark.parametrize(
    "content",
    [
        b"PK\x03\x04" + bytes(200),  # a torch.save zip archive
        b"\x80\x04\x95" + bytes(100),  # a raw pickle stream
        b"hello, this is plain text and not a checkpoint at all\n",
        bytes(range(256)) * 4,
    ],
    ids=["zip", "pickle", "text", "binary"],
)
def test_garbage_is_not_a_safetensors_file(content, tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(content)
    with pytest.raises(mg.CheckpointError, match="not a safetensors file") as info:
        mg.load(path)
    assert str(path) in str(info.value)


def test_small_length_over_non_json_is_not_a_safetensors_file(tmp_path):
    path = tmp_path / "x.bin"
    write_raw(path, b"\xff\xfe not json", b"")
    with pytest.raises(mg.CheckpointError, match="not a safetensors file: the 11-byte header"):
        mg.load(path)


F32_ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        (b'{"w": {"dtype": "F32", "shape": [2]', b"", r"corrupted header: invalid JSON"),
        (b"[1, 2, 3]", b"", r"corrupted header: not a JSON object"),
        ({"w": {"dtype": "F32"}}, b"", r"tensor 'w' lacks dtype, shape or data_offsets"),
        ({"w": {**F32_ENTRY, "shape": [2, -1]}}, bytes(8), r"tensor 'w' has shape \[2, -1\]"),
        ({"w": {**F32_ENTRY, "data_offsets": [0]}}, bytes(8), r"data_offsets \[0\]"),
        ({"w": {**F32_ENTRY, "dtype": "XYZ"}}, bytes(8), r"dtype 'XYZ', which minigrad cannot"),
        ({"w": {**F32_ENTRY, "shape": [3]}}, bytes(8), r"needs 12 bytes, its data_offsets"),
        ({"w": F32_ENTRY, "__metadata__": {"a": 1}}, bytes(8), r"__metadata__ is not a str"),
        (
            {"w": F32_ENTRY, "v": {**F32_ENTRY, "data_offsets": [4, 12]}},
            bytes(12),
            r"unreadable safetensors file",
        ),
    ],
    ids=[
        "bad-json",
        "not-object",
        "missing-fields",
        "negative-dim",
        "short-offsets",
        "unknown-dtype",
        "size-mismatch",
        "metadata-types",
        "overlap",
    ],
)
def test_corrupted_header(header, data, message, tmp_path):
    path = tmp_path / "h.safetensors"
    write_raw(path, header, data)
    with pytest.raises(mg.CheckpointError, match=message) as info:
        mg.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_foreign_metadata_loads_as_a_flat_dict(tmp_path):
    path = tmp_path / "hf.safetensors"
    weights = {"w": np.arange(3, dtype=np.float32)}
    safetensors.numpy.save_file(weights, path, metadata={"format": "np", "author": "someone"})
    loaded = mg.load(path)
    assert list(loaded) == ["w"] and type(loaded["w"]) is mg.Tensor
    np.testing.assert_array_equal(loaded["w"].numpy(), weights["w"])


def test_file_without_metadata_or_tensors_is_an_empty_dict(tmp_path):
    path = tmp_path / "e.safetensors"
    safetensors.numpy.save_file({}, path)
    assert mg.load(path) == {}


def mangled(tmp_path, tree, version="1"):
    """A file with minigrad metadata of our choosing."""
    path = tmp_path / "mangled.safetensors"
    text = tree if isinstance(tree, str) else json.dumps(tree)
    metadata = {"minigrad_format": version, "minigrad": text}
    safetensors.numpy.save_file({}, path, metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ('{"dict": [', r"corrupted minigrad metadata: invalid JSON"),
        ({"set": [1]}, r"at '<root>': unknown node \{'set': \[1\]\}"),
        ({"dict": [["a", {"tensor": "gone"}]]}, r"at 'a': tensor 'gone' is not in the file"),
        ({"dict": [[None, 1]]}, r"a dict node needs \[key, value\] pairs"),
        ({"list": {"a": 1}}, r"a list node needs a JSON list"),
        ({"list": [{"float": "big"}]}, r"at '0': unknown float 'big'"),
        ({"scalar": ["float32"]}, r"a scalar node needs \[dtype, value\]"),
        ({"scalar": ["float32", "x"]}, r"scalar value 'x' is not a number"),
        ({"dtype": "float128"}, r"unknown dtype 'float128'"),
        ({"dtype": ["float32"]}, r"unknown dtype \['float32'\]"),
        ({"tensor": ["w"]}, r"tensor \['w'\] is not in the file"),
        ({"float": {"nan": 1}}, r"unknown float \{'nan': 1\}"),
        ({"scalar": ["uint8", 300]}, r"scalar value 300 does not fit uint8"),
        ({"tuple": [1], "list": [1]}, r"unknown node"),
    ],
)
def test_corrupted_minigrad_metadata(tree, message, tmp_path):
    path = mangled(tmp_path, tree)
    with pytest.raises(mg.CheckpointError, match=message) as info:
        mg.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_other_format_version_is_refused(tmp_path):
    path = mangled(tmp_path, {"list": []}, version="2")
    with pytest.raises(mg.CheckpointError, match=r"minigrad checkpoint format '2'.* reads '1'"):
        mg.load(path)
