"""nl.accelerator and the caching allocator on the CUDA backend (a GPU, or Numba's simulator):
device rules, streams, and memory numbers checked against the allocator's real blocks; the
precision flags' effect on CUDA matmul (tf32) and kernels (fast). Tiny arrays only."""
import gc

import numpy as np
import pytest

import numlazy as nl
from numlazy import accelerator as acc
from numlazy import metrics

from .conftest import SIMULATED


@pytest.fixture
def cuda(device):
    if not device.startswith("cuda"):
        pytest.skip("CUDA backend only")
    backend = nl.registry.backend_for(nl.device("cuda"))
    gc.collect()
    yield backend
    gc.collect()


def _address(buf) -> int:
    if SIMULATED:
        return buf._ary.__array_interface__["data"][0]
    return buf.device_ctypes_pointer.value


def test_device_queries_and_index_rules(cuda):
    assert acc.is_available() and acc.device_count() == cuda.device_count() >= 1
    assert acc.current_accelerator(check_available=True) == nl.device("cuda")
    acc.set_device_index(0)
    acc.set_device_index("cuda:0")
    assert acc.current_device_index() == 0
    with acc.device_index(0):
        assert acc.current_device_index() == 0
    with pytest.raises(ValueError, match="not a device of the current accelerator"):
        acc.set_device_index("cpu:0")
    with pytest.raises(ValueError, match="has no index"):
        acc.set_device_index("cuda")
    with pytest.raises(RuntimeError, match="out of range"):
        acc.set_device_index(acc.device_count())
    free, total = acc.get_memory_info()
    assert isinstance(free, int) and 0 < free <= total


def test_streams(cuda):
    from numba import cuda as nbcuda
    default = acc.current_stream()
    assert default is acc.current_stream(0)
    s = nbcuda.stream()
    acc.set_stream(s)
    try:
        assert acc.current_stream() is s
        acc.synchronize()
        acc.synchronize("cuda:0")
    finally:
        acc.set_stream(default)
    with pytest.raises(TypeError, match="numba.cuda stream"):
        acc.set_stream("not a stream")


def test_memory_numbers_follow_the_allocators_real_blocks(cuda):
    from numlazy_cuda.allocator import round_size
    acc.empty_cache()
    acc.reset_peak_memory_stats()
    acc.reset_accumulated_memory_stats()
    base_alloc, base_res = acc.memory_allocated(), acc.memory_reserved()
    base_requested = acc.memory_stats()["requested_bytes.all.current"]
    assert base_res == base_alloc                       # nothing cached after empty_cache
    x = nl.asarray(np.arange(10.0), device="cuda")      # 80 bytes -> one 512-byte block
    y = x * 2 + 1
    nl.mark_step("cuda")
    blocks = round_size(80) * 2
    assert acc.memory_allocated() == base_alloc + blocks
    assert acc.memory_reserved() == base_res + blocks
    stats = acc.memory_stats()
    assert list(stats) == sorted(stats)
    assert stats["requested_bytes.all.current"] == base_requested + 160     # exact sizes
    assert stats["num_device_alloc"] == 2 and stats["allocation.all.allocated"] == 2
    old = _address(y._node.buffer)
    del y
    gc.collect()
    assert acc.memory_allocated() == base_alloc + blocks // 2       # back in the pool
    assert acc.memory_reserved() == base_res + blocks               # still reserved (cached)
    assert acc.memory_stats()["cached_bytes.all.current"] >= blocks // 2
    # The same block serves another shape and dtype of the same rounded size.
    z = nl.asarray(np.arange(20, dtype=np.int32), device="cuda")
    assert _address(z._node.buffer) == old
    assert np.asarray(z).tolist() == list(range(20))
    stats = acc.memory_stats()
    assert stats["num_pool_hits"] == 1 and stats["num_device_alloc"] == 2
    assert acc.max_memory_allocated() == base_alloc + blocks
    del x, z
    gc.collect()
    assert acc.memory_allocated() == base_alloc
    acc.reset_peak_memory_stats()
    assert acc.max_memory_allocated() == base_alloc
    acc.empty_cache()
    assert acc.memory_reserved() == base_res
    stats = acc.memory_stats()
    assert stats["num_device_free"] == 2 and stats["segment.all.freed"] == 2
    acc.reset_accumulated_memory_stats()
    stats = acc.memory_stats()
    assert stats["allocated_bytes.all.allocated"] == stats["num_device_alloc"] == 0


def test_views_keep_a_block_until_the_last_one_is_gone(cuda):
    alloc = cuda.allocator(0)
    before = alloc.stats()["allocated_bytes.all.current"]
    x = alloc.allocate((4, 4), np.float32)
    v = x.reshape(16)[2:5]
    del x
    gc.collect()
    assert alloc.stats()["allocated_bytes.all.current"] == before + 512
    v.copy_to_host()
    del v
    gc.collect()
    assert alloc.stats()["allocated_bytes.all.current"] == before


def test_out_of_memory_empties_the_pool_retries_then_raises_clearly(cuda):
    from numlazy_cuda.allocator import OutOfMemoryError
    alloc = cuda.allocator(0)
    alloc.empty_cache()
    start = alloc.stats()["reserved_bytes.all.current"]
    alloc.limit = start + 1536
    try:
        a = alloc.allocate((100,), np.uint8)            # 512
        b = alloc.allocate((512,), np.uint8)            # 512, then cached
        del b
        gc.collect()
        c = alloc.allocate((1000,), np.uint8)           # 1024: only fits without the cache
        stats = alloc.stats()
        assert stats["num_alloc_retries"] == 1 and stats["cached_bytes.all.current"] == 0
        with pytest.raises(OutOfMemoryError, match=r"tried to allocate 1000 bytes \(a 1.00 "
                                                   r"KiB block\); 1.50 KiB is allocated"):
            alloc.allocate((1000,), np.uint8)
        assert alloc.stats()["num_ooms"] == 1
        del a, c
    finally:
        alloc.limit = None
        gc.collect()
        alloc.empty_cache()


def test_round_size():
    from numlazy_cuda.allocator import round_size
    assert [round_size(n) for n in (1, 512, 513, 1 << 20)] == [512, 512, 1024, 1 << 20]
    assert round_size((1 << 20) + 1) == (1 << 20) + (1 << 18)
    assert round_size(3 << 20) == 3 << 20 and round_size((3 << 20) + 1) == (7 << 19)


def test_tf32_matmul_rounds_operands_and_stays_within_tf32_error(cuda):
    rng = np.random.default_rng(0)
    a = (rng.random((8, 8)) + 0.5).astype(np.float32)
    b = (rng.random((8, 8)) + 0.5).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    x, y = nl.asarray(a, device="cuda"), nl.asarray(b, device="cuda")
    ieee = np.asarray(x @ y)
    with nl.backends.cuda.matmul.flags(fp32_precision="tf32"):
        tf32 = np.asarray(x @ y)
        f64 = np.asarray(nl.asarray(a.astype(np.float64), device="cuda") @
                         nl.asarray(b.astype(np.float64), device="cuda"))
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    assert np.all(np.abs(ieee - exact) <= 8 * 2.0 ** -24 * scale)
    err = np.abs(tf32 - exact)
    assert np.all(err <= 2 * 2.0 ** -11 * scale)         # TF32: 11 significant bits
    assert err.max() > 8 * 2.0 ** -24 * scale.max() / 8   # and visibly coarser than ieee
    assert np.allclose(f64, exact, rtol=1e-12)            # float64 is never TF32
    if cuda.simulator or cuda._cupy_module() is None:
        assert metrics.counter_value("cuda::matmul_tiled_tf32") == 1
    else:
        assert metrics.counter_value("cuda::matmul_cupy_tf32") == 1


def test_fast_kernels_carry_the_flag_set_and_keep_nan_semantics(cuda):
    x = nl.asarray(np.array([0.5, np.nan, 2.0], dtype=np.float32), device="cuda")
    from numlazy import executor
    from numlazy.ir import Graph
    with nl.backends.cuda.flags(fp32_precision="fast"):
        s, n = nl.sin(x), nl.isnan(x)
        program, _ = executor._program(Graph([s._node, n._node]), nl.device("cuda"), cuda)
        nl.mark_step("cuda")
    with open(program.compiled[0].module.__file__) as f:
        assert "fastmath={'afn', 'arcp', 'contract', 'nsz', 'reassoc'}" in f.read()
    assert np.asarray(n).tolist() == [False, True, False]
    assert abs(float(np.asarray(s)[0]) - np.sin(np.float32(0.5))) < 1e-5


def test_empty_cache_gives_memory_back_to_the_driver(cuda):
    """Numba frees the pooled blocks' memory (cuMemFree) when the cache is emptied, not
    later: its memory manager defers frees, and numlazy flushed the context's own (unused)
    queue instead of the manager's (64 MiB stayed reserved on the H200). Numba's tables are
    the measure, not the device's free memory, which the suite's other processes share."""
    if cuda.simulator:
        pytest.skip("the simulator's device memory is host memory")
    x = nl.zeros(16 << 20, dtype=nl.float32, device="cuda")      # 64 MiB
    nl.mark_step("cuda")
    acc.synchronize()
    address = _address(x._node.buffer)
    ctx = cuda.cuda.current_context()
    held = lambda: address in {int(k) for k in ctx.memory_manager.allocations}  # noqa: E731
    assert held()
    del x
    gc.collect()
    assert acc.memory_stats()["cached_bytes.all.current"] >= 64 << 20
    assert held()                                                # pooled, still reserved
    frees = acc.memory_stats()["num_device_free"]
    acc.empty_cache()
    assert not held() and acc.memory_stats()["cached_bytes.all.current"] == 0
    assert acc.memory_stats()["num_device_free"] > frees
    assert not ctx.memory_manager.deallocations._cons            # no free left pending
