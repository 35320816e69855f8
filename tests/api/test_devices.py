"""Device strings, the default device, the backend registry and entry points."""
import os
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

import numlazy as nl
from numlazy.interpreter import InterpreterBackend


def test_device_strings_parse():
    d = nl.device("cpu:0")
    assert (d.type, d.index) == ("cpu", 0) and str(d) == "cpu:0" and d == "cpu"
    assert nl.asarray(np.ones(2)).device == "cpu"


def test_default_device_scope_nests_and_restores():
    with nl.default_device("numpy"):
        assert nl.zeros(2).device == "numpy"
        with nl.default_device("cpu"):
            assert nl.zeros(2).device == "cpu"
        assert nl.ones(2).device == "numpy"
    assert nl.zeros(2).device == "cpu"


def test_cpu_backend_comes_from_the_entry_point_group():
    names = {ep.name for ep in entry_points(group="numlazy.backends")}
    assert "cpu" in names
    assert {"cpu", "cuda"} <= names
    # every entry point is registered (available or not) next to the built-in interpreter
    assert nl.list_backends() == sorted(names | {"numpy"})


def test_register_backend_adds_a_device_type():
    class Recording(InterpreterBackend):
        runs = 0

        def compile_graph(self, graph):
            Recording.runs += 1
            return super().compile_graph(graph)

    nl.register_backend("recording", Recording)
    try:
        y = nl.asarray(np.arange(3.0), device="recording") * 2
        assert y.tolist() == [0.0, 2.0, 4.0] and Recording.runs == 1
        assert "recording" in nl.list_backends()
    finally:
        from numlazy import registry
        registry._factories.pop("recording")
        registry._instances.pop("recording", None)
    with pytest.raises(ValueError, match="without ':'"):
        nl.register_backend("a:b", Recording)


def test_to_device_moves_data():
    x = nl.asarray(np.arange(3.0)) + 1
    y = x.to_device("numpy")
    assert y.device == "numpy" and y.tolist() == [1.0, 2.0, 3.0]


def run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_numlazy_device_env_selects_the_interpreter_with_the_same_answers():
    code = ("import numpy as np, numlazy as nl\n"
            "a = nl.asarray(np.linspace(0, 1, 11))\n"
            "y = nl.sin(a) * 2 + a\n"
            "print(y.device, repr(np.asarray(y).tolist()))\n")
    numpy_run, cpu_run = run(code, NUMLAZY_DEVICE="numpy"), run(code, NUMLAZY_DEVICE="cpu")
    assert numpy_run.stdout.split()[0] == "numpy" and cpu_run.stdout.split()[0] == "cpu"
    a = np.array(eval(numpy_run.stdout.split(" ", 1)[1]))
    b = np.array(eval(cpu_run.stdout.split(" ", 1)[1]))
    np.testing.assert_allclose(a, b, rtol=1e-15)


def test_bad_environment_value_fails_at_import_naming_the_variable():
    result = run("import numlazy", NUMLAZY_COMPILE_CACHE_SIZE="lots")
    assert result.returncode != 0
    assert "NUMLAZY_COMPILE_CACHE_SIZE='lots' is not valid: expected an integer >= 1" \
        in result.stderr


def test_op_a_backend_cannot_lower_falls_back_to_the_interpreter_and_is_counted():
    from numlazy_cpu import CpuBackend

    class NoHypot(CpuBackend):
        def can_lower(self, op_name):
            return op_name != "hypot"

    nl.register_backend("nohypot", NoHypot)
    try:
        a = nl.asarray(np.array([3.0, 5.0]), device="nohypot")
        y = nl.hypot(a, 4.0) * 2
        assert y.tolist() == [10.0, 2 * np.hypot(5.0, 4.0)]
        assert nl.metrics.counter_value("fallback::hypot") == 1
        del a, y
    finally:
        from numlazy import registry
        registry._factories.pop("nohypot")
        registry._instances.pop("nohypot", None)
