"""nl.save / nl.load on damaged, foreign and hostile files, and trees that cannot be saved."""
import io
import json
import pickle

import numpy as np
import pytest

import numlazy as nl


def archive(path, tree, **arrays):
    meta = json.dumps({"format": "numlazy-save", "version": 1, "tree": tree}).encode()
    np.savez(path, __tree__=np.frombuffer(meta, np.uint8), **arrays)
    return path


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    nl.save({"w": nl.ones(3), "n": [7, "x"], "i": np.arange(4, dtype=np.int32)}, path)
    return path


def not_a_save_file(path, detail):
    with pytest.raises(ValueError, match=r"is not a numlazy save file \(.*" + detail):
        nl.load(path)


def test_truncated_and_empty_files(good, tmp_path):
    data = good.read_bytes()
    for i, cut in enumerate((0, 10, len(data) // 2, len(data) - 10)):
        path = tmp_path / f"cut{i}.npz"
        path.write_bytes(data[:cut])
        not_a_save_file(path, "")


def test_every_truncation_or_flipped_byte_is_a_clear_error_or_a_clean_load(good):
    data = good.read_bytes()
    for i in range(0, len(data), 7):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        for blob in (data[:i], bytes(flipped)):
            try:
                nl.load(io.BytesIO(blob))
            except ValueError as exc:
                assert "is not a numlazy save file" in str(exc)


def test_pickles_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    not_a_save_file(path, "pickled or object data, which load never unpickles")
    obj = tmp_path / "obj.npz"
    archive(obj, {"array": "a0", "device": "cpu"}, a0=np.array([{"evil": 1}], dtype=object))
    not_a_save_file(obj, "pickled or object data")


def test_garbage_and_foreign_files(tmp_path):
    (tmp_path / "g").write_bytes(b"not a zip file at all")
    not_a_save_file(tmp_path / "g", "")
    np.save(tmp_path / "single.npy", np.ones(2))
    not_a_save_file(tmp_path / "single.npy", "a single .npy array, not an .npz archive")
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    not_a_save_file(tmp_path / "plain.npz", r"without a numlazy tree \(__tree__\)")
    np.savez(tmp_path / "json.npz", __tree__=np.frombuffer(b"{not json", np.uint8))
    not_a_save_file(tmp_path / "json.npz", "JSONDecodeError")
    np.savez(tmp_path / "list.npz", __tree__=np.frombuffer(b"[1, 2]", np.uint8))
    not_a_save_file(tmp_path / "list.npz", "not in numlazy's format")


@pytest.mark.parametrize("tree, arrays, detail", [
    ({"array": "a9", "device": "cpu"}, {}, "no such array"),
    ({"dict": [[1, {"value": 3}]]}, {}, "keys must be strings"),
    ({"value": {"x": 1}}, {}, "bad value"),
    ({"set": []}, {}, "bad tree entry"),
    ({"array": "a0", "device": "cpu"}, {"a0": np.ones(2, np.float16)}, "dtype float16"),
    ({"array": "a0", "device": "cpu"}, {"a0": np.ones(2, np.clongdouble)}, "dtype complex256"),
    ({"complex": [1.0, "x"]}, {}, "bad complex value"),
    ({"array": "a0", "device": "cpu"}, {"a0": np.array(["s"])}, "dtype <U1"),
])
def test_malformed_trees(tmp_path, tree, arrays, detail):
    not_a_save_file(archive(tmp_path / "t.npz", tree, **arrays), detail)


def test_a_deeply_nested_description_is_rejected(tmp_path):
    deep = b'{"format":"numlazy-save","version":1,"tree":' + b'{"list":[' * 3000 + \
        b']}' * 3000 + b"}"
    np.savez(tmp_path / "deep.npz", __tree__=np.frombuffer(deep, np.uint8))
    not_a_save_file(tmp_path / "deep.npz", "")
    other = b'{"format":"numlazy-save","version":2,"tree":{"value":1}}'
    np.savez(tmp_path / "v2.npz", __tree__=np.frombuffer(other, np.uint8))
    not_a_save_file(tmp_path / "v2.npz", "format version 2; this numlazy reads version 1")


def test_big_endian_arrays_load_in_native_order(tmp_path):
    path = archive(tmp_path / "be.npz", {"array": "a0", "device": "cpu"},
                   a0=np.arange(3, dtype=">f8"))
    got = nl.load(path)
    assert got.dtype == np.float64 and got.tolist() == [0.0, 1.0, 2.0]


def test_devices_the_caller_names_and_devices_the_file_names(good, tmp_path):
    with pytest.raises(ValueError, match="unknown device type 'tpu'; registered types") as info:
        nl.load(good, device="tpu")
    assert "not a numlazy save file" not in str(info.value)      # the caller's error
    path = archive(tmp_path / "tpu.npz", {"array": "a0", "device": "tpu"}, a0=np.ones(2))
    with pytest.raises(ValueError, match="saved from device 'tpu'.*pass device="):
        nl.load(path)
    assert nl.load(path, device="cpu").tolist() == [1.0, 1.0]


def test_path_problems_stay_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        nl.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        nl.load(tmp_path)
    for bad in (None, 3):
        with pytest.raises(TypeError, match="file must be a path or a binary file object"):
            nl.load(bad)
        with pytest.raises(TypeError, match="file must be a path or a binary file object"):
            nl.save([1], bad)


@pytest.mark.parametrize("leaf, message", [
    (np.ones(2, np.clongdouble), "cannot save an array of dtype complex256"),
    (np.array([{}], dtype=object), "cannot save an array of dtype object"),
    (np.ones(2, np.float16), "cannot save an array of dtype float16"),
    (np.int32(3), "cannot save a leaf of type int32"),
    ({1, 2}, "cannot save a leaf of type set"),
])
def test_save_refuses_leaves_load_could_not_read(tmp_path, leaf, message):
    with pytest.raises(TypeError, match=message):
        nl.save([leaf], tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())


def test_a_tree_that_contains_itself_is_an_error_not_a_hang(tmp_path):
    loop = [nl.ones(1)]
    loop.append(loop)
    for fn in (lambda: nl.save(loop, tmp_path / "x.npz"), lambda: nl.to_cpu(loop)):
        with pytest.raises(ValueError, match="nested more than .* levels deep"):
            fn()


def test_scalars_round_trip_exactly(tmp_path):
    tree = [float("nan"), float("inf"), 2 ** 70, -0.0, "", None, True]
    nl.save(tree, tmp_path / "s.npz")
    got = nl.load(tmp_path / "s.npz")
    assert np.isnan(got[0]) and got[1:] == tree[1:] and type(got[6]) is bool
