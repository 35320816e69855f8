"""bench/ pytest configuration.

pyproject.toml's addopts carries --benchmark-disable (so `pytest` over tests/ never times
anything), and pytest-benchmark refuses --benchmark-only together with --benchmark-disable.
Asking for --benchmark-only here means "time them": turn benchmarks back on.  Without
--benchmark-only, `pytest bench/` runs every case once as a plain correctness test.
"""
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if config.getoption("benchmark_only", default=False):
        config.option.benchmark_enable = True
