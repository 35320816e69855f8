"""Flags: declared once, parsed strictly, and the run-time ones (force_fallback, trimming)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import numlazy as nl
from numlazy import config, executor


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_every_flag_is_declared_with_env_type_default_help():
    for name, flag in config.FLAGS.items():
        assert flag.env == "NUMLAZY_" + name.upper() and flag.help and flag.accepted
        assert config.get(name) == flag.default or flag.env in os.environ
    assert config.FLAGS["force_fallback"].changes_code
    assert dict(config.code_flags())["force_fallback"] == frozenset()


@pytest.mark.parametrize("env, value, message", [
    ("NUMLAZY_DEBUG", "9", "NUMLAZY_DEBUG='9' is not valid: expected an integer from 0 to 4"),
    ("NUMLAZY_FORCE_FALLBACK", "sin,nosuch", "unknown op name(s) nosuch"),
    ("NUMLAZY_TRIM_GRAPH_SIZE", "0", "NUMLAZY_TRIM_GRAPH_SIZE='0' is not valid"),
    ("NUMLAZY_MAX_ASYNC_QUEUE", "many", "expected an integer >= 1"),
])
def test_a_bad_environment_value_fails_at_import(env, value, message):
    result = run_python("import numlazy", **{env: value})
    assert result.returncode != 0 and message in result.stderr


def test_environment_values_are_read():
    code = ("import numlazy as nl; c = nl.config; print(sorted(c.get('force_fallback')), "
            "c.get('trim_graph_size'), c.get('max_async_queue'), c.get('debug'))")
    result = run_python(code, NUMLAZY_FORCE_FALLBACK="exp, sin", NUMLAZY_TRIM_GRAPH_SIZE="77",
                        NUMLAZY_MAX_ASYNC_QUEUE="3", NUMLAZY_DEBUG="0")
    assert result.stdout.strip() == "['exp', 'sin'] 77 3 0", result.stderr


def test_set_validates_strings_and_values():
    with pytest.raises(ValueError, match="debug=7 is not valid"):
        config.set("debug", 7)
    with pytest.raises(ValueError, match="unknown op name"):
        config.set("force_fallback", ["sin", "nope"])
    with pytest.raises(KeyError, match="unknown numlazy flag"):
        config.set("nope", 1)
    config.set("force_fallback", "sin, cos")
    assert config.get("force_fallback") == frozenset({"sin", "cos"})


def test_force_fallback_changes_at_run_time_and_is_in_the_compile_key():
    host = np.linspace(0, 1, 50)
    a = nl.asarray(host)

    def step():
        y = nl.sin(a) * 2 + 1
        nl.mark_step()
        np.testing.assert_allclose(np.asarray(y), np.sin(host) * 2 + 1)

    step()
    assert nl.metrics.counter_value("fallback::sin") is None
    config.set("force_fallback", "sin")
    step()
    assert nl.metrics.counter_value("fallback::sin") == 1
    compiles = nl.metrics.counter_value("UncachedCompile") or 0
    config.set("force_fallback", "")
    step()                                            # back to the first program: a hit
    assert nl.metrics.counter_value("fallback::sin") == 1
    assert (nl.metrics.counter_value("UncachedCompile") or 0) == compiles


def test_force_fallback_of_an_opaque_op():
    config.set("force_fallback", "matmul")
    x = nl.asarray(np.arange(6.0).reshape(2, 3))
    y = x @ x.T
    np.testing.assert_allclose(np.asarray(y), np.arange(6.0).reshape(2, 3) @
                               np.arange(6.0).reshape(2, 3).T)
    assert nl.metrics.counter_value("fallback::matmul") == 1


def test_graph_trimming_executes_early_and_warns_once(monkeypatch):
    monkeypatch.setattr(executor, "_trim_warned", False)
    config.set("trim_graph_size", 40)
    y = nl.asarray(np.zeros(8))
    with pytest.warns(RuntimeWarning, match="executed early"):
        for _ in range(200):
            y = y + 1.0
    trims = nl.metrics.counter_value("TrimIrGraph")
    assert trims and trims >= 2
    assert y.tolist() == [200.0] * 8
    assert len(executor.live_arrays()) == 0


def test_no_trimming_below_the_limit():
    y = nl.asarray(np.zeros(4))
    for _ in range(300):
        y = y + 1.0
    assert nl.metrics.counter_value("TrimIrGraph") is None
    assert y.tolist() == [300.0] * 4


def test_ir_cache_dump_and_reset(tmp_path):
    nl.ir_cache.reset()                  # whatever earlier tests cached
    a = nl.asarray(np.ones(3))
    y = nl.exp(a) + 1  # noqa: F841
    nl.mark_step()
    nl.ir_cache.dump(tmp_path / "cache.txt")
    text = (tmp_path / "cache.txt").read_text()
    assert "cached program(s)" in text and "exp(%0) float64 rank 1" in text
    nl.ir_cache.dump(str(tmp_path / "cache.dot"))
    assert (tmp_path / "cache.dot").read_text().startswith("digraph ir_cache {")
    with pytest.raises(ValueError, match="unknown format"):
        nl.ir_cache.dump(tmp_path / "x", fmt="svg")
    nl.ir_cache.reset()
    y = nl.exp(a) + 1  # noqa: F841
    nl.mark_step()
    assert nl.metrics.counter_value("UncachedCompile") == 2


def test_every_flag_has_a_type_and_a_checked_set():
    for name, flag in config.FLAGS.items():
        assert flag.type in (bool, int, str, frozenset), name
        assert flag.convert is not None, f"{name}: set() would store an unchecked value"
        assert isinstance(config.get(name), flag.type), name


@pytest.mark.parametrize("name, value, message", [
    ("debug", True, "expected an integer, got bool"),
    ("trim_graph_size", 1.5, "expected an integer, got float"),     # not silently 1
    ("compile_cache_size", -3, "expected an integer >= 1"),
    ("serial_threshold", None, "expected an integer, got NoneType"),
    ("disk_cache", 5, "expected True or False, got int"),
    ("save_graphs_file", 3, "expected a string, got int"),
    ("save_graphs_file", "/no/such/dir/graphs.txt", "does not exist"),
    ("cache_dir", "", "an empty path"),
    ("device", "cuda:x", "such as cpu, numpy or cuda:0"),
])
def test_set_rejects_values_of_the_wrong_type_or_range(name, value, message):
    before = config.get(name)
    with pytest.raises(ValueError, match=f"{name}=.* is not valid: .*{message}"):
        config.set(name, value)
    assert config.get(name) == before


def test_values_of_the_right_type_are_taken():
    config.set("disk_cache", False)
    config.set("trim_graph_size", 10)
    config.set("debug", "2")
    config.set("device", "numpy")
    assert (config.get("disk_cache"), config.get("trim_graph_size"), config.get("debug"),
            config.get("device")) == (False, 10, 2, "numpy")


@pytest.mark.parametrize("env, value, message", [
    ("NUMLAZY_DEVICE", "cuda:x", "NUMLAZY_DEVICE='cuda:x' is not valid"),
    ("NUMLAZY_DEVICE", "tpu", "NUMLAZY_DEVICE='tpu' is not valid: expected a device string "
                              "of a registered backend (cpu, "),
    ("NUMLAZY_CACHE_DIR", "", "NUMLAZY_CACHE_DIR='' is not valid"),
    ("NUMLAZY_SAVE_GRAPHS_FILE", "/no/such/dir/g.txt", "the directory of '/no/such/dir/g.txt'"),
    ("NUMLAZY_DISK_CACHE", "maybe", "expected 1/0, true/false, yes/no, on/off"),
    ("NUMLAZY_TRIM_GRAPH_SIZE", "1e5", "expected an integer >= 1"),
])
def test_more_bad_environment_values_fail_at_import(env, value, message):
    result = run_python("import numlazy", **{env: value})
    assert result.returncode != 0 and message in result.stderr
