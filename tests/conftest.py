"""Shared test setup: the ``gpu`` marker and the GPU skip helper.

Tests marked ``@pytest.mark.gpu`` are skipped unless cupy imports and sees a CUDA device; a test
can also take the ``requires_gpu`` fixture. CuPy is imported only when a GPU test is collected.
"""

import functools
import sys

import pytest

from cupy_bsparse._arrays import gpu_available as _gpu_available

_NO_GPU = "needs cupy and a usable CUDA GPU"
gpu_available = functools.cache(_gpu_available)  # the marker is registered in setup.cfg


def pytest_collection_modifyitems(config, items):
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
