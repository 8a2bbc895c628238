"""Every kernel specialisation compiles with NVRTC for sm_80 and sm_90, with no GPU (the
sm_90-only templates, ``_specs.MIN_ARCH``, for sm_90 alone; wgmma specialisations for sm_90a).

Needs CuPy and NVRTC (the ``nvidia-cuda-nvrtc`` wheel from the ``cuda13`` extra); skipped when
they are missing. The resource table (registers, stack, spills) is printed at the end of the run.
"""
import concurrent.futures
import functools
import os

import pytest

from cupy_bsparse import _specs, compiler

ARCHS = ("80", "90")
SPECS = _specs.all_specializations()


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
            return item, compiler.compile_cubin(name, spec, compiler.target_arch(spec, arch))[1]
        except Exception as e:  # reported per specialisation below
            return item, e

    todo = [s for s in SPECS if _builds_for(s, arch)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        return dict(ex.map(one, todo))


RESOURCES = []

#: Spill bytes (stores, loads) a specialisation may have on sm_90, where measured to cost
#: nothing: sddmm_tall.cu's float32 wgmma consumer under its 168-register cap (two CTAs an SM)
#: keeps three loop-invariant words in local memory, one 12-byte reload a step
#: (docs/perf-notes.md v25: 1.48 -> 1.13 ms against mma.sync at M = 4096).
SPILLS_MEASURED = {"sddmm_tall.cu": (20, 24)}


def _builds_for(item, arch):
    """sm_90-only templates (TMA) skip sm_80; wgmma specialisations build for sm_90a alone."""
    if compiler.needs_sm90a(item[1]):
        return arch == "90"
    return int(arch) >= _specs.MIN_ARCH.get(item[0], 0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("item", SPECS, ids=[_spec_id(*s) for s in SPECS])
def test_specialisation_compiles(item, arch):
    if not _builds_for(item, arch):
        pytest.skip(f"{item[0]} {dict(item[1])} does not build for sm_{arch}")
    res = _compiled(arch)[item]
    if isinstance(res, Exception):
        pytest.fail(str(res))
    usage = compiler.resource_usage(res)
    RESOURCES.append((arch, _spec_id(*item), usage))
    assert usage["registers"] > 0, res
    # ptxas's C7511 / C7512 / C7520 ...: wgmma serialised (each waits for the previous), e.g.
    # under a register cap or behind a branch inside a batch
    assert "wgmma.mma_async instructions are serialized" not in res, res
    if arch == "90":  # the tuned target; sm_80 only has to build
        stores, loads = (SPILLS_MEASURED.get(item[0], (0, 0)) if dict(item[1]).get("WGMMA")
                         else (0, 0))
        assert usage["spill_stores"] <= stores and usage["spill_loads"] <= loads, f"spills: {usage}"


FITTED = [(arch, item) for arch in (80, 86) for item in _specs.fitted_specializations(arch)]


@pytest.mark.parametrize("arch,item", FITTED, ids=[f"sm{a}-{_spec_id(*i)}" for a, i in FITTED])
def test_fitted_specialisation_compiles(arch, item):
    """The smaller steps GPUs with less shared memory get (``_specs.fit_shared``) compile for
    them without spills."""
    image, log = compiler.compile_cubin(item[0], item[1], arch)
    usage = compiler.resource_usage(log)
    assert usage["registers"] > 0 and usage["spill_stores"] == 0, usage


def _grouped(bs, did, tw, **extra):
    return ("dsd_grouped_tma.cu", tuple(sorted({
        **dict(_specs.dsd_grouped_tma_spec(bs, did, 64, tw, wcp=extra.pop("WCP", None))),
        **extra}.items())))


# probes/p19.py's builds (before its TIMELINE; v21's producer cases but the spilling 3-CTA ones)
PROBED = ([_grouped(bs, did, tw, **extra) for bs, did in ((8, 1), (16, 2), (8, 0))
           for tw in (False, True) for extra in ({}, {"PF": 3}, {"PW": 2})]
          + [_grouped(8, 1, False, WCP=1), _grouped(16, 1, False, WCP=1),
             _grouped(16, 1, True, WCP=1), _grouped(8, 1, False, WCP=1, PW=2)]
          + [("dsd_stream.cu", _specs.dsd_stream_spec(bs, did, M, tw, wgmma=wg))
             for bs, did, M, wg in ((32, 1, 64, False), (64, 1, 64, True), (64, 1, 4096, False),
                                    (16, 0, 64, False), (64, 0, 64, False))
             for tw in (False, True)])


@pytest.mark.parametrize("name,spec", PROBED, ids=[_spec_id(n, s, "") for n, s in PROBED])
def test_timeline_instrumentation_compiles(name, spec):
    """probes/p19.py's builds (TIMELINE, kernels/timeline.cuh) compile for their target without
    spills, and hold the timeline array."""
    spec = tuple(sorted({**dict(spec), "TIMELINE": 1024}.items()))
    image, log = compiler.compile_cubin(name, spec, compiler.target_arch(spec, "90"))
    usage = compiler.resource_usage(log)
    assert usage["registers"] > 0 and usage["spill_stores"] == 0, usage
    assert b"bsmm_timeline" in image


# dsd_stream.cu's 512-row tiles (_specs.STREAM_TALL_SETS; probes/p26.py tall)
TALL = [("dsd_stream.cu", _specs.dsd_stream_spec(32, did, 4096, tw, r=1, tall=t))
        for did in (1, 2) for tw in (False, True) for t in (1, 2, 3)]


@pytest.mark.parametrize("name,spec", TALL, ids=[_spec_id(n, s, "") for n, s in TALL])
def test_tall_tiles_compile(name, spec):
    """BM 512 compiles without spills; the launch bounds (MINB 2) fit two CTAs of nine warps an
    SM (at most 112 registers), and every box the launcher builds is a legal TMA box (at most
    256 rows)."""
    image, log = compiler.compile_cubin(name, spec, compiler.target_arch(spec, "90"))
    usage = compiler.resource_usage(log)
    assert usage["registers"] > 0 and usage["spill_stores"] == 0, usage
    if dict(spec).get("MINB") == 2:
        assert usage["registers"] <= 112, usage
    assert _specs.tma_boxes(name, spec)[0] == (256, 32)
    assert all(rows <= 256 for rows, _ in _specs.tma_boxes(name, spec))


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


def test_sm90a_specialisations_are_marked():
    """wgmma specialisations build for sm_90a (their own cubin cache); the rest for plain sm_XX."""
    wg = [s for s in SPECS if compiler.needs_sm90a(s[1])]
    assert wg and all(dict(s[1])["WGMMA"] == 1 for s in wg)
    assert {s[0] for s in wg} == {"dsd_stream.cu", "sddmm_stream.cu", "sddmm_tall.cu"}
    assert compiler.target_arch(wg[0][1], "90") == "90a"
    plain = next(s for s in SPECS if not compiler.needs_sm90a(s[1]))
    assert compiler.target_arch(plain[1], 90) == "90"


def test_sm90a_cubin_cache(tmp_path, monkeypatch):
    """The sm_90a cubin is compiled once into CUPY_BSPARSE_CACHE_DIR, then read from there."""
    monkeypatch.setenv("CUPY_BSPARSE_CACHE_DIR", str(tmp_path))
    item = next(s for s in SPECS if compiler.needs_sm90a(s[1]))
    calls = []
    real = compiler.compile_cubin

    def counting(name, spec, arch):
        calls.append(arch)
        return real(name, spec, arch)

    monkeypatch.setattr(compiler, "compile_cubin", counting)
    path = compiler._cached_cubin(item[0], item[1], "90a")
    assert calls == ["90a"] and os.path.dirname(path) == str(tmp_path)
    image = open(path, "rb").read()
    assert image[:4] == b"\x7fELF" and len(image) == compiler.elf_extent(image)
    assert compiler._cached_cubin(item[0], item[1], "90a") == path and calls == ["90a"]


def _tiny_elf():
    """64 bytes that are a whole ELF64 image by their own headers (no tables)."""
    head = bytearray(64)
    head[:5] = b"\x7fELF\x02"
    head[0x28:0x30] = (64).to_bytes(8, "little")      # e_shoff: the end of the header
    return bytes(head)


def test_sm90a_cache_rebuilds_damaged_files_and_leaves_no_temporaries(tmp_path, monkeypatch):
    monkeypatch.setenv("CUPY_BSPARSE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CUPY_CACHE_IN_MEMORY", raising=False)
    calls = []
    monkeypatch.setattr(compiler, "compile_cubin",
                        lambda name, spec, arch: calls.append(arch) or (_tiny_elf(), ""))
    item = SPECS[0]
    path = compiler._cached_cubin(item[0], item[1], "90a")
    for damage in (b"", b"garbage", _tiny_elf()[:40], _tiny_elf() + b"tail"):
        with open(path, "wb") as f:
            f.write(damage)
        assert compiler._cached_cubin(item[0], item[1], "90a") == path
        assert open(path, "rb").read() == _tiny_elf()
    assert len(calls) == 5
    assert compiler._cached_cubin(item[0], item[1], "90a") == path and len(calls) == 5
    # a write into the cache that fails midway (a full disk) leaves no temporary file behind;
    # the cubin goes to the private scratch folder
    real_replace = os.replace

    def replace(src, dst):
        if os.path.dirname(dst) == str(tmp_path):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(compiler.os, "replace", replace)
    os.remove(path)
    with pytest.warns(RuntimeWarning, match="cannot write the kernel cache"):
        other = compiler._cached_cubin(item[0], item[1], "90a")
    assert os.path.dirname(other) == compiler._scratch_dir()
    assert open(other, "rb").read() == _tiny_elf()
    assert os.listdir(tmp_path) == []


def test_sm90a_cache_falls_back_when_unwritable_or_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(compiler, "compile_cubin", lambda name, spec, arch: (_tiny_elf(), ""))
    item = SPECS[0]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("CUPY_BSPARSE_CACHE_DIR", str(not_a_dir))
    monkeypatch.delenv("CUPY_CACHE_IN_MEMORY", raising=False)
    with pytest.warns(RuntimeWarning, match="cannot write the kernel cache"):
        path = compiler._cached_cubin(item[0], item[1], "90a")
    assert os.path.dirname(path) == compiler._scratch_dir()
    assert open(path, "rb").read() == _tiny_elf()
    monkeypatch.setenv("CUPY_BSPARSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CUPY_CACHE_IN_MEMORY", "1")
    path = compiler._cached_cubin(item[0], item[1], "90a")
    assert os.path.dirname(path) == compiler._scratch_dir() and not (tmp_path / "cache").exists()


def test_sm90a_cache_key_has_the_nvrtc_build(tmp_path, monkeypatch):
    monkeypatch.setenv("CUPY_BSPARSE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CUPY_CACHE_IN_MEMORY", raising=False)
    monkeypatch.setattr(compiler, "compile_cubin", lambda name, spec, arch: (_tiny_elf(), ""))
    assert "release" in compiler._nvrtc_build()       # e.g. "... release 13.0, V13.0.88 ..."
    item = SPECS[0]
    first = compiler._cached_cubin(item[0], item[1], "90a")
    monkeypatch.setattr(compiler, "_nvrtc_build", lambda: "another build")
    assert compiler._cached_cubin(item[0], item[1], "90a") != first


def test_resource_usage_takes_every_function():
    log = ("ptxas info    : Function properties for helper\n"
           "    728 bytes stack frame, 728 bytes spill stores, 812 bytes spill loads\n"
           "ptxas info    : Used 40 registers\n"
           "ptxas info    : Function properties for k\n"
           "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
           "ptxas info    : Used 96 registers, used 0 barriers\n")
    assert compiler.resource_usage(log) == {"registers": 96, "stack": 728, "spill_stores": 728,
                                            "spill_loads": 812}
    assert compiler.resource_usage("") == {"registers": -1, "stack": -1, "spill_stores": -1,
                                           "spill_loads": -1}


def test_include_lines_may_carry_a_comment(tmp_path, monkeypatch):
    (tmp_path / "h.cuh").write_text("#define FROM_H 1\n")
    (tmp_path / "k.cu").write_text('#include "h.cuh"   // the helper\nint x = FROM_H;\n')
    monkeypatch.setattr(compiler, "kernel_dir", lambda: str(tmp_path))
    compiler._template.cache_clear()
    try:
        assert "#define FROM_H 1" in compiler.kernel_source("k.cu", ())
    finally:
        compiler._template.cache_clear()


def test_warm_cache_checks_processes():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="processes must be a positive int"):
            compiler.warm_cache([SPECS[0]], processes=bad)
    compiler.warm_cache([])          # nothing to do, no pool started


def _nvrtc_cubin(src, arch):
    """(CuPy's getCUBIN bytes, NVRTC's own buffer through ctypes) of one compiled program."""
    import ctypes

    from cupy_backends.cuda.libs import nvrtc

    try:
        lib = ctypes.CDLL(f"libnvrtc.so.{nvrtc.getVersion()[0]}")
    except OSError:
        pytest.skip("libnvrtc not loadable through ctypes by its soname")
    prog = nvrtc.createProgram(src, "k.cu", [], [])
    try:
        nvrtc.compileProgram(prog, [f"--gpu-architecture=sm_{arch}"])
        size = ctypes.c_size_t()
        assert lib.nvrtcGetCUBINSize(ctypes.c_void_p(prog), ctypes.byref(size)) == 0
        buf = ctypes.create_string_buffer(size.value)
        assert lib.nvrtcGetCUBIN(ctypes.c_void_p(prog), buf) == 0
        return nvrtc.getCUBIN(prog), buf.raw
    finally:
        nvrtc.destroyProgram(prog)


def test_cubins_match_nvrtc():
    """CuPy's getCUBIN, made whole, is NVRTC's own buffer (read through ctypes); NVRTC's buffer
    less its last byte is restored exactly, whatever CuPy does."""
    cupy_bytes, nvrtc_bytes = _nvrtc_cubin('extern "C" __global__ void k(float* a) { a[0] = 1; }',
                                           90)
    assert compiler.whole_cubin(cupy_bytes) == nvrtc_bytes
    assert compiler.whole_cubin(nvrtc_bytes[:-1]) == nvrtc_bytes
    assert compiler.whole_cubin(nvrtc_bytes) == nvrtc_bytes


def test_cubins_are_whole():
    """compile_cubin returns an image as long as its ELF headers say (an sm_90a cubin written to
    the cache must be whole); whole_cubin restores one 0 byte at the end of the program header
    table and refuses any other shortfall."""
    image = compiler.compile_cubin(*SPECS[0][:2], 90)[0]
    assert len(image) == compiler.elf_extent(image)
    assert compiler.whole_cubin(image[:-1]) == image
    with pytest.raises(RuntimeError, match="short of its ELF extent"):
        compiler.whole_cubin(image[:-2])
    with pytest.raises(ValueError, match="not an ELF64"):
        compiler.elf_extent(b"\x7fELF\x01" + bytes(64))


def test_device_specializations_match_the_device():
    """The GPU suite warms only what the device can run: no TMA template below sm_90, no sm_90a
    specialisation off compute capability 9.0."""
    def names(arch):
        return {(s[0], compiler.needs_sm90a(s[1])) for s in _specs.device_specializations(arch)}

    assert len(_specs.device_specializations(90)) == len(SPECS)
    assert not any(_specs.MIN_ARCH.get(n, 0) > 80 or a for n, a in names(80))
    assert ("dsd_stream.cu", False) in names(100) and not any(a for _, a in names(100))
