"""The CPU backend's choice between a kernel's serial and parallel variants: by loop size
times the kernel's weight (1, plus TRANSCENDENTAL_WEIGHT per transcendental op that is not
computed in SIMD lanes)."""
import numpy as np

import numlazy as nl
from numlazy import executor, ir
from numlazy.registry import backend_for
from numlazy_cpu import TRANSCENDENTAL_WEIGHT, vmath


def _launched(make, x):
    """The Launcher of the one kernel `make(nl, x)` compiles to, after a step that ran it
    (and gave NumPy's `make(np, x)`)."""
    y = make(nl, x)
    graph = ir.Graph([y._node])
    program, _ = executor._program(graph, y.device, backend_for(y.device))
    assert len(program.compiled) == 1
    nl.mark_step()
    np.testing.assert_allclose(np.asarray(y), make(np, np.asarray(x)),
                               rtol=1e-12 if x.dtype == np.float64 else 2e-6)
    return program.compiled[0]


def test_a_kernel_of_transcendental_ops_takes_all_cores_at_a_smaller_size():
    host = np.random.default_rng(0).random(4000)
    x, x32 = nl.asarray(host, device="cpu"), nl.asarray(host.astype(np.float32), device="cpu")
    with nl.config.override(serial_threshold=32768):
        cheap = _launched(lambda xp, v: v * 2.0 + 1.0, x)
        costly = _launched(lambda xp, v: xp.tan(v) * xp.tanh(v), x)
        in_lanes = [_launched(lambda xp, v: xp.sin(v) * xp.exp(v) + xp.tan(v), a)
                    for a in (x, x32)]
    assert (cheap.weight, costly.weight) == (1, 1 + 2 * TRANSCENDENTAL_WEIGHT)
    assert cheap.called == {cheap.serial}                 # 4000 < 32768
    assert costly.called == {costly.parallel}             # 4000 * 9 >= 32768
    # sin and exp run 8 lanes at a time (where the CPU has AVX2), tan does not
    assert [k.weight for k in in_lanes] == \
        [1 + TRANSCENDENTAL_WEIGHT * (1 if vmath.AVAILABLE else 3)] * 2
    # an argmax's loop has control flow: its exp stays scalar and weighs
    scalar = _launched(lambda xp, v: xp.argmax(xp.exp(v)), x)
    assert scalar.weight == 1 + TRANSCENDENTAL_WEIGHT


def test_a_row_kernel_weighs_the_transcendental_ops_of_all_its_phases():
    m = nl.asarray(np.random.default_rng(1).random((40, 100)), device="cpu")
    row = _launched(lambda xp, v: xp.tanh(v - xp.max(v, axis=-1, keepdims=True)) /
                    xp.sum(xp.tanh(v), axis=-1, keepdims=True), m)
    assert row.weight == 1 + 2 * TRANSCENDENTAL_WEIGHT
