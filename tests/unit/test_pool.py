"""The CPU backend's host buffer pool: reuse only what nobody can see."""
import numpy as np

import numlazy as nl
from numlazy_cpu.pool import HostPool

BIG = (1 << 18,)          # 2 MiB of float64: pooled


def test_a_block_is_reused_once_its_array_is_gone():
    pool = HostPool(lambda: 1 << 30)
    a = pool.allocate(BIG, np.dtype(np.float64))
    address = a.__array_interface__["data"][0]
    del a
    b = pool.allocate((512, 512), np.dtype(np.float64))
    assert b.__array_interface__["data"][0] == address and b.shape == (512, 512)


def test_a_block_seen_through_a_view_is_never_reused():
    pool = HostPool(lambda: 1 << 30)
    a = pool.allocate(BIG, np.dtype(np.float64))
    a[:] = 7.0
    view = a[::2]
    del a
    b = pool.allocate(BIG, np.dtype(np.float64))
    b[:] = 0.0
    assert (view == 7.0).all()


def test_the_cap_bounds_what_the_pool_holds():
    pool = HostPool(lambda: 3 << 20)
    arrays = [pool.allocate(BIG, np.dtype(np.float64)) for _ in range(4)]
    assert pool.held_bytes <= 3 << 20 and len(arrays) == 4
    small = pool.allocate((10,), np.dtype(np.float64))
    assert small.base is None                      # small arrays are not pooled


def test_steady_state_steps_reuse_output_memory_and_keep_results_right():
    x = nl.asarray(np.arange(BIG[0], dtype=np.float64))
    addresses, kept = set(), []
    for k in range(4):
        y = x * float(k)
        host = np.asarray(y)
        addresses.add(host.__array_interface__["data"][0])
        kept.append(host)                       # a live read-only view: must stay intact
    for k, host in enumerate(kept):
        assert host[3] == 3.0 * k
    assert len(addresses) == 4
    del kept, host
    for k in range(4):
        y = x * float(k)
        addresses.add(np.asarray(y).__array_interface__["data"][0])
    assert len(addresses) <= 6                 # freed blocks come back
