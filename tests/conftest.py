"""Shared test setup: the ``gpu`` marker and the GPU skip helper.

Tests marked ``@pytest.mark.gpu`` are skipped unless cupy imports and sees a CUDA device; a test
can also take the ``requires_gpu`` fixture. CuPy is imported only when a GPU test is collected.
"""

import functools

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
