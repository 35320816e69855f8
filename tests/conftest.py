"""Shared fixtures: every test starts with default flags, empty metrics and no pending work.

Compiled kernels are shared across tests (the in-memory program cache is kept, and Numba's
disk cache under NUMLAZY_CACHE_DIR), because compiling is what makes a suite slow.
"""
import gc

import pytest

import numlazy as nl


@pytest.fixture(autouse=True)
def _clean_state():
    nl.config.reset()
    nl.metrics.reset()
    yield
    nl.config.reset()
    gc.collect()
