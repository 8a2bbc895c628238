"""Every kernel specialisation compiles with NVRTC for sm_80 and sm_90, with no GPU (the
sm_90-only templates, ``_gpu_ops.MIN_ARCH``, for sm_90 alone).

Needs CuPy and NVRTC (the ``nvidia-cuda-nvrtc`` wheel from the ``cuda13`` extra); skipped when
they are missing. The resource table (registers, stack, spills) is printed at the end of the run.
"""
import concurrent.futures
import functools
import os

import pytest

from cupy_bsparse import _gpu_ops, compiler

ARCHS = ("80", "90")
SPECS = _gpu_ops.all_specializations()


def _nvrtc_available():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _nvrtc_available(), reason="needs CuPy with NVRTC")


def _spec_id(name, spec, entry):
    return name.replace(".cu", "") + "-" + "-".join(f"{k}{v}" for k, v in spec)


@functools.lru_cache(maxsize=None)
def _compiled(arch):
    """Compile every specialisation for one architecture, in parallel: {spec: (log or exc)}."""
    def one(item):
        name, spec, _ = item
        try:
            return item, compiler.compile_cubin(name, spec, arch)[1]
        except Exception as e:  # reported per specialisation below
            return item, e

    todo = [s for s in SPECS if int(arch) >= _gpu_ops.MIN_ARCH.get(s[0], 0)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        return dict(ex.map(one, todo))


RESOURCES = []


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("item", SPECS, ids=[_spec_id(*s) for s in SPECS])
def test_specialisation_compiles(item, arch):
    if int(arch) < _gpu_ops.MIN_ARCH.get(item[0], 0):
        pytest.skip(f"{item[0]} needs sm_{_gpu_ops.MIN_ARCH[item[0]]} (TMA)")
    res = _compiled(arch)[item]
    if isinstance(res, Exception):
        pytest.fail(str(res))
    usage = compiler.resource_usage(res)
    RESOURCES.append((arch, _spec_id(*item), usage))
    assert usage["registers"] > 0, res
    if arch == "90":  # the tuned target; sm_80 only has to build
        assert usage["spill_stores"] == 0 and usage["spill_loads"] == 0, f"spills: {usage}"


def test_source_fingerprint_changes_with_template(tmp_path, monkeypatch):
    """The specialised source (CuPy's disk-cache key) inlines headers, so editing one shows."""
    src = compiler.kernel_source("dsd.cu", SPECS[0][1])
    assert '#include "common.cuh"' not in src and "warp_mma" in src
    for fn in os.listdir(compiler.kernel_dir()):
        (tmp_path / fn).write_text(open(os.path.join(compiler.kernel_dir(), fn)).read())
    (tmp_path / "common.cuh").write_text((tmp_path / "common.cuh").read_text() + "\n// edit\n")
    monkeypatch.setattr(compiler, "kernel_dir", lambda: str(tmp_path))
    compiler._template.cache_clear()
    try:
        assert compiler.kernel_source("dsd.cu", SPECS[0][1]) != src
    finally:
        compiler._template.cache_clear()
