"""Shared test setup: the ``gpu`` marker, the GPU skip helper and test shards.

Tests marked ``@pytest.mark.gpu`` are skipped unless cupy imports and sees a CUDA device; a test
can also take the ``requires_gpu`` fixture. CuPy is imported only when a GPU test is collected.

``CUPY_BSPARSE_SHARD=i/n`` keeps every n-th selected test from the i-th (0 <= i < n) and
deselects the rest, so n pytest processes share one GPU (``.ci/gpu``'s ``GPU_SHARDS``).
"""

import functools
import os
import sys

import pytest

from cupy_bsparse._arrays import gpu_available as _gpu_available

_NO_GPU = "needs cupy and a usable CUDA GPU"
gpu_available = functools.cache(_gpu_available)  # the marker is registered in setup.cfg


def parse_shard(value):
    """(i, n) of a ``CUPY_BSPARSE_SHARD`` value "i/n" (0 <= i < n); ValueError otherwise."""
    try:
        i, n = (int(v) for v in value.split("/"))
    except ValueError:
        raise ValueError(f"CUPY_BSPARSE_SHARD must be 'i/n' with integers, got {value!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"CUPY_BSPARSE_SHARD must have 0 <= i < n, got {value!r}")
    return i, n


@pytest.hookimpl(trylast=True)   # after -m / -k have deselected: shards share what is left
def pytest_collection_modifyitems(config, items):
    value = os.environ.get("CUPY_BSPARSE_SHARD")
    if value:
        i, n = parse_shard(value)
        dropped = [item for k, item in enumerate(items) if k % n != i]
        items[:] = items[i::n]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and not gpu_available():
        skip = pytest.mark.skip(reason=_NO_GPU)
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture
def requires_gpu():
    """Skip the test unless a GPU is usable; returns the cupy module."""
    if not gpu_available():
        pytest.skip(_NO_GPU)
    import cupy

    return cupy


def pytest_terminal_summary(terminalreporter):
    """Print the kernels' resource usage collected by tests/test_compile.py, if it ran."""
    mod = sys.modules.get("test_compile") or sys.modules.get("tests.test_compile")
    rows = getattr(mod, "RESOURCES", None)
    if not rows:
        return
    tr = terminalreporter
    tr.section("kernel resource usage (NVRTC / ptxas)")
    tr.write_line(f"{'arch':<5} {'regs':>4} {'stack':>5} {'spill st/ld':>11}  specialisation")
    for arch, name, u in sorted(rows):
        tr.write_line(f"sm_{arch:<2} {u['registers']:>4} {u['stack']:>5} "
                      f"{u['spill_stores']:>5}/{u['spill_loads']:<5}  {name}")
