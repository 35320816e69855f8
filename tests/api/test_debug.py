"""IR dumps, explain_cache_miss, NUMLAZY_DEBUG levels, saved graphs, the recompile warning."""
import os
import subprocess
import sys

import numpy as np
import pytest

import numlazy as nl
from numlazy import executor
from numlazy.executor import RecompileWarning


@pytest.fixture(autouse=True)
def fresh_cache():
    nl.ir_cache.reset()      # explain_cache_miss compares against what is cached


def test_dump_ir_text_dot_backend():
    a = nl.asarray(np.ones(3))
    y = nl.sin(a) * 2.0
    s = nl.sum(y)
    text = nl.debug.dump_ir([y, s])
    assert text.splitlines() == [
        "graph: 5 nodes, outputs [%3, %4]",
        "  %0 = data float64[3]",
        "  %1 = sin(%0) float64[3]",
        "  %2 = param float64[] value=2.0",
        "  %3 = multiply(%1, %2) float64[3]  -> output",
        "  %4 = sum(%3) float64[] axes=(0,)  -> output"]
    dot = nl.debug.dump_ir(y, "dot")
    assert dot.startswith("digraph numlazy {") and "n1 -> n3;" in dot and dot.endswith("}")
    assert nl.debug.render_ir_graph(y) == dot
    source = nl.debug.dump_ir([y, s], "backend")
    assert "# kernel 0:" in source and "def parallel(" in source
    assert "sin(" in source or "xsin8(" in source          # (8 lanes a call on AVX2)
    assert not y._node.realized                       # dumping runs nothing


def test_dump_ir_errors_and_other_devices():
    a = nl.asarray(np.ones(3))
    with pytest.raises(ValueError, match="unknown format 'svg'; use one of text, dot, backend"):
        nl.debug.dump_ir(a + 1, "svg")
    with pytest.raises(TypeError, match="expected numlazy arrays"):
        nl.debug.dump_ir(np.ones(3))
    with pytest.raises(ValueError, match="different devices"):
        nl.debug.dump_ir([a + 1, nl.asarray(np.ones(3), device="numpy") + 1])
    b = nl.asarray(np.ones(3), device="numpy")
    assert "interpreter" in nl.debug.dump_ir(b + 1, "backend")
    nl.config.set("force_fallback", "exp")
    assert "fallback to the interpreter" in nl.debug.dump_ir(nl.exp(a), "backend")


def explain_after(first, second):
    y = first()  # noqa: F841
    nl.mark_step()
    y = second()  # noqa: F841
    nl.mark_step()
    return nl.debug.explain_cache_miss()


def test_explain_before_any_compile():
    assert nl.debug.explain_cache_miss() == "no step has compiled a program yet"
    a = nl.asarray(np.ones(2))
    y = a + 1  # noqa: F841
    nl.mark_step()
    assert "a first compile" in nl.debug.explain_cache_miss()


def test_explain_shape_rank():
    a, b = nl.asarray(np.ones(4)), nl.asarray(np.ones((2, 2)))
    text = explain_after(lambda: nl.sin(a), lambda: nl.sin(b))
    assert "first difference: node %0 (data): shape of rank 2 now, rank 1" in text
    assert "test_debug.py" in text


def test_explain_dtype():
    a, b = nl.asarray(np.ones(4)), nl.asarray(np.ones(4, np.float32))
    text = explain_after(lambda: nl.sin(a), lambda: nl.sin(b))
    assert "node %0 (data): dtype float32 now, float64 in the cached graph" in text


def test_explain_scalar_versus_constant():
    a = nl.asarray(np.ones(4))
    text = explain_after(lambda: a + 2.0, lambda: a + nl.asarray(2.0))
    assert "node %1: a Python scalar (a runtime parameter) in the cached graph" in text


def test_explain_flag():
    a = nl.asarray(np.ones(4))
    y = nl.exp(a)  # noqa: F841
    nl.mark_step()
    nl.config.set("force_fallback", "exp")
    y = nl.exp(a)  # noqa: F841
    nl.mark_step()
    assert "flag force_fallback: {exp} now, {} in the cached graph" in \
        nl.debug.explain_cache_miss()


def test_explain_op_and_length():
    a = nl.asarray(np.ones(4))
    assert "node %1: op cos now, sin" in explain_after(lambda: nl.sin(a), lambda: nl.cos(a))
    text = explain_after(lambda: nl.tan(a), lambda: nl.tan(nl.tan(a)))
    assert "nearest cached graph" in text


def step_twice():
    a = nl.asarray(np.ones(1000))
    for _ in range(2):
        y = nl.sqrt(a) + 1  # noqa: F841
        nl.mark_step()


def test_debug_level_1_one_line_per_step(capsys):
    nl.config.set("debug", 1)
    step_twice()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "cache miss" in lines[0] and "cache hit" in lines[1]
    assert "1 kernel(s)" in lines[0] and "test_debug.py:" in lines[0]
    nl.config.set("debug", 0)
    step_twice()
    assert capsys.readouterr().err == ""


def test_debug_levels_2_to_4(capsys):
    nl.config.set("debug", 2)
    step_twice()
    err = capsys.readouterr().err
    assert err.count("  kernel 0: loop over (1000,) -> %") == 2 and " ms" in err
    nl.ir_cache.reset()
    nl.config.set("debug", 3)
    step_twice()
    err = capsys.readouterr().err
    assert err.count("numlazy compile [cpu]") == 1 and "%1 = sqrt(%0)" in err
    assert "def serial" not in err
    nl.ir_cache.reset()
    nl.config.set("debug", 4)
    step_twice()
    assert "def serial(" in capsys.readouterr().err


def test_debug_from_the_environment():
    code = "import numpy as np, numlazy as nl\ny = nl.asarray(np.ones(3)) + 1\nnl.mark_step()\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "NUMLAZY_DEBUG": "1"}, timeout=120)
    assert "numlazy step 1 [cpu]" in result.stderr and "<string>:3" in result.stderr


def test_save_graphs_file(tmp_path):
    path = tmp_path / "graphs.txt"
    nl.config.set("save_graphs_file", str(path))
    step_twice()
    text = path.read_text()
    assert text.count("# step on cpu at") == 2 and text.count("%1 = sqrt(%0)") == 2


def test_recompile_warning_points_at_explain(monkeypatch):
    monkeypatch.setattr(executor, "_warned_sites", set())
    nl.config.set("recompile_warning", 3)
    a = nl.asarray(np.ones(3))
    with pytest.warns(RecompileWarning, match="explain_cache_miss") as record:
        for k in range(1, 6):
            y = a
            for _ in range(k):   # a longer graph each step (say, an unrolled loop)
                y = nl.cos(y)
            nl.mark_step()
    assert len(record) == 1 and record[0].filename == __file__


def test_no_recompile_warning_for_cache_hits(recwarn, monkeypatch):
    monkeypatch.setattr(executor, "_warned_sites", set())
    nl.config.set("recompile_warning", 2)
    a = nl.asarray(np.ones(3))
    for _ in range(5):
        y = nl.atan(a) + 1.0  # noqa: F841
        nl.mark_step()
    assert not [w for w in recwarn if issubclass(w.category, RecompileWarning)]


def test_explain_names_the_nearest_graph_and_where_it_was_compiled():
    a = nl.asarray(np.ones(4))
    y = nl.sum(a)  # noqa: F841
    nl.mark_step()
    y = nl.sin(a) * 2.0 + 1.0  # noqa: F841
    nl.mark_step(); line = sys._getframe().f_lineno  # noqa: E702
    y = nl.sin(a.astype(nl.float32)) * 2.0 + 1.0  # noqa: F841
    nl.mark_step()
    text = nl.debug.explain_cache_miss()
    assert (f"nearest cached graph: 6 nodes on cpu, compiled at {__file__}:{line} "
            f"(data, sin, param, multiply, param, add); 2 graph(s) were cached") in text
    assert "first difference: node %1 (astype float32 rank 1) is only there now" in text


def test_explain_aliasing():
    x, y = nl.asarray(np.ones(4)), nl.asarray(np.ones(4))
    text = explain_after(lambda: x + y, lambda: x + x)
    assert "(data, data, add)" in text
    assert "is only there in the cached graph (an input array; one array passed in two " \
        "places is one input" in text


def test_explain_attribute():
    b = nl.asarray(np.ones((2, 3)))
    text = explain_after(lambda: nl.sum(b, axis=0), lambda: nl.sum(b, axis=1))
    assert "node %1 (sum): attribute ((1,),) now, ((0,),) in the cached graph" in text


def test_explain_scalar_versus_constant_deeper_in_the_graph():
    a = nl.asarray(np.ones(4))
    text = explain_after(lambda: nl.sin(a) * 2.0, lambda: nl.sin(a) * nl.asarray(2.0))
    assert "node %2: a Python scalar (a runtime parameter) in the cached graph, an array " \
        "constant in the other graph" in text


def test_first_difference_of_equal_keys_and_versions():
    from numlazy import debug
    a = nl.asarray(np.ones(4))
    y = a + 1  # noqa: F841
    nl.mark_step()
    key = executor.last_miss.key
    other = (key[0], key[1], key[2], ("0.0", "0", "0"))
    assert debug.first_difference(other, key).startswith("versions (numlazy, numba, numpy)")
    assert debug.first_difference(key, key).startswith("outputs")
    assert debug.nearest(key, [other, key]) is key
