"""Kernel sources, specialisation and the compile cache.

A kernel is a template in ``kernels/`` plus a specialisation: a sorted tuple of ``(NAME, value)``
pairs written as ``#define`` lines in front of the text. ``#include "x.cuh"`` lines are inlined,
so the source text (CuPy's disk-cache key, with the options, the GPU architecture and the NVRTC
version) covers every header. Compiled functions are also kept in memory per device.

Nothing here touches the GPU at import time. ``compile_cubin`` needs only NVRTC (the
``nvidia-cuda-nvrtc`` wheel is enough), so CI proves every specialisation compiles.
"""
import atexit
import functools
import hashlib
import os
import re
import shutil
import struct
import tempfile
import warnings

#: NVRTC options used for every kernel, at run time and in CI.
OPTIONS = ("-std=c++17",)
#: Part of the sm_90a cache key: cubins written before ``whole_cubin`` lacked their last byte.
_CUBIN_FORMAT = "whole-elf-1"

_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*(?://.*)?$', re.M)


@functools.lru_cache(maxsize=1)
def kernel_dir():
    """Directory of the CUDA templates: inside the installed package, or the source checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "kernels"), os.path.join(os.path.dirname(here), "kernels")):
        if os.path.isfile(os.path.join(cand, "common.cuh")):
            return cand
    raise RuntimeError(
        "cupy_bsparse: kernel templates (kernels/*.cu) not found next to the package")


@functools.lru_cache(maxsize=None)
def _template(name):
    def inline(path, seen):
        with open(path) as f:
            text = f.read()

        def sub(m):
            inc = m.group(1)
            if inc in seen:
                return ""
            seen.add(inc)
            return inline(os.path.join(kernel_dir(), inc), seen)

        return _INCLUDE.sub(sub, text).replace("#pragma once", "")

    return inline(os.path.join(kernel_dir(), name), set())


def kernel_source(name, spec):
    """Full source of template ``name`` (e.g. ``"dsd.cu"``) specialised by ``spec`` pairs."""
    head = "".join(f"#define {k} {int(v)}\n" for k, v in spec)
    return f"// cupy_bsparse {name}\n{head}{_template(name)}"


def source_fingerprint():
    """Hash of every template's text, for reports and external caches."""
    h = hashlib.sha256()
    for fn in sorted(os.listdir(kernel_dir())):
        if fn.endswith((".cu", ".cuh")):
            with open(os.path.join(kernel_dir(), fn), "rb") as f:
                h.update(fn.encode() + b"\0" + f.read())
    return h.hexdigest()[:16]


#: Specialisation keys whose kernels use sm_90a-only instructions (wgmma): they compile for
#: sm_90a, whose machine code runs on compute capability 9.0 alone.
ARCH_SPECIFIC = ("WGMMA",)


def needs_sm90a(spec):
    """Whether specialisation ``spec`` compiles for sm_90a only (see ``ARCH_SPECIFIC``)."""
    return any(k in ARCH_SPECIFIC and v for k, v in spec)


def target_arch(spec, arch):
    """The NVRTC target of ``spec`` for GPU architecture ``arch`` (e.g. ``"90"`` -> ``"90a"``
    for an sm_90a specialisation)."""
    return f"{arch}a" if needs_sm90a(spec) else str(arch)


def cache_dir():
    """Directory of the sm_90a cubins (CuPy compiles the others into its own cache):
    ``CUPY_BSPARSE_CACHE_DIR``, else ``cupy_bsparse`` inside CuPy's ``CUPY_CACHE_DIR``
    (default ``~/.cupy/kernel_cache``)."""
    d = os.environ.get("CUPY_BSPARSE_CACHE_DIR")
    if not d:
        base = os.environ.get("CUPY_CACHE_DIR") or os.path.join(
            os.path.expanduser("~"), ".cupy", "kernel_cache")
        d = os.path.join(base, "cupy_bsparse")
    return d


@functools.lru_cache(maxsize=1)
def _nvrtc_build():
    """NVRTC's build, e.g. "Cuda compilation tools, release 13.0, V13.0.88", from the header
    of an empty program's PTX (finer than ``nvrtc.getVersion()``: patch releases differ)."""
    from cupy_backends.cuda.libs import nvrtc

    prog = nvrtc.createProgram("", "version.cu", [], [])
    try:
        nvrtc.compileProgram(prog, ["--gpu-architecture=compute_90"])
        ptx = nvrtc.getPTX(prog)
    finally:
        nvrtc.destroyProgram(prog)
    text = ptx.decode(errors="replace") if isinstance(ptx, bytes) else ptx
    lines = [ln.strip("/ ") for ln in text.splitlines()[:10] if ln.startswith("//")]
    return " | ".join(ln for ln in lines if ln) + f" | {nvrtc.getVersion()}"


def _is_whole_cubin(path):
    """Whether the file at ``path`` is an ELF64 image exactly as long as its headers say."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return elf_extent(data) == len(data)
    except (OSError, ValueError, struct.error):
        return False


def _write_atomic(path, data):
    """Write ``data`` to ``path`` through a temporary file in its folder, renamed into place
    (concurrent writers of one entry write the same bytes); the temporary file never stays."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def _env_flag(name):
    """A 0 / 1 environment variable read as CuPy reads its own: on only for an int equal to 1."""
    try:
        return int(os.environ.get(name, "0")) == 1
    except ValueError:
        return False


@functools.lru_cache(maxsize=1)
def _scratch_dir():
    """A private temporary folder for cubins that cannot go to the disk cache, removed at exit."""
    folder = tempfile.mkdtemp(prefix="cupy_bsparse-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _cached_cubin(name, spec, arch):
    """Path of the cubin of (template, spec) for ``sm_<arch>``, compiled by NVRTC on a miss or
    when the cached file is not a whole ELF image. Keyed by the source text, the options, the
    target and the NVRTC build. With CuPy's ``CUPY_CACHE_IN_MEMORY=1`` the cubin goes to a
    private temporary folder removed at exit; where the cache cannot be written, too, with a
    warning that says why."""
    h = hashlib.sha256("\0".join(
        (kernel_source(name, spec), " ".join(OPTIONS), str(arch), _nvrtc_build(),
         _CUBIN_FORMAT)).encode())
    file = f"{name[:-3]}-sm{arch}-{h.hexdigest()[:32]}.cubin"
    in_memory = _env_flag("CUPY_CACHE_IN_MEMORY")
    path = os.path.join(_scratch_dir() if in_memory else cache_dir(), file)
    if _is_whole_cubin(path):
        return path
    cubin = compile_cubin(name, spec, arch)[0]
    try:
        _write_atomic(path, cubin)
    except OSError as e:
        if in_memory:
            raise
        warnings.warn(f"cupy_bsparse: cannot write the kernel cache {cache_dir()!r} ({e}); sm_90a "
                      "kernels are compiled again in each process", RuntimeWarning, stacklevel=3)
        path = os.path.join(_scratch_dir(), file)
        _write_atomic(path, cubin)
    return path


_functions = {}


def get_function(name, spec, entry):
    """Compiled ``cupy.RawKernel`` for (template, specialisation) on the current device.

    The first call compiles through NVRTC (or loads CuPy's disk cache; sm_90a specialisations
    their own, ``cache_dir()``); later calls are a dict look-up. Raises RuntimeError for an
    sm_90a specialisation on a device of another compute capability.
    """
    import cupy

    dev = cupy.cuda.runtime.getDevice()
    key = (name, spec, entry, dev)
    fn = _functions.get(key)
    if fn is None:
        if needs_sm90a(spec):
            cc = cupy.cuda.Device(dev).compute_capability
            if cc != "90":
                raise RuntimeError(f"{name} {dict(spec)} needs compute capability 9.0 (sm_90a); "
                                   f"device {dev} has {cc}")
            module = cupy.RawModule(path=_cached_cubin(name, spec, "90a"))
        else:
            module = cupy.RawModule(code=kernel_source(name, spec), options=OPTIONS,
                                    backend="nvrtc")
        fn = module.get_function(entry)
        _functions[key] = fn
    return fn


def compile_cubin(name, spec, arch):
    """Compile with NVRTC alone (no GPU needed) for ``sm_<arch>`` (``arch``: e.g. 90 or "90a").

    Returns ``(cubin_bytes, log)``; the log carries ptxas's resource report (registers, spills,
    shared memory). Raises ``RuntimeError`` with the compiler log on failure.
    """
    from cupy_backends.cuda.libs import nvrtc

    src = kernel_source(name, spec)
    prog = nvrtc.createProgram(src, name, [], [])
    try:
        opts = list(OPTIONS) + [f"--gpu-architecture=sm_{arch}", "-Xptxas=-v"]
        try:
            nvrtc.compileProgram(prog, opts)
        except nvrtc.NVRTCError as e:
            raise RuntimeError(f"{name} {dict(spec)} sm_{arch}: {e}\n{nvrtc.getProgramLog(prog)}")
        return whole_cubin(nvrtc.getCUBIN(prog)), nvrtc.getProgramLog(prog)
    finally:
        nvrtc.destroyProgram(prog)


def elf_extent(image):
    """Bytes an ELF64 image spans according to its own headers: the end of the furthest header
    table, section (other than NOBITS) or segment. ValueError if ``image`` is not ELF64."""
    if image[:5] != b"\x7fELF\x02" or len(image) < 64:
        raise ValueError("not an ELF64 image")
    phoff, shoff = struct.unpack_from("<QQ", image, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", image, 0x36)
    end = max(phoff + phnum * phentsize, shoff + shnum * shentsize)
    for i in range(shnum):
        o = shoff + i * shentsize
        if o + 0x28 <= len(image):
            sh_type, = struct.unpack_from("<I", image, o + 4)
            off, size = struct.unpack_from("<QQ", image, o + 0x18)
            if sh_type != 8:                           # SHT_NOBITS occupies no file bytes
                end = max(end, off + size)
    for i in range(phnum):
        o = phoff + i * phentsize
        if o + 0x28 <= len(image):
            off, = struct.unpack_from("<Q", image, o + 8)
            filesz, = struct.unpack_from("<Q", image, o + 0x20)
            end = max(end, off + filesz)
    return end


def whole_cubin(image):
    """``image`` from CuPy's ``nvrtc.getCUBIN``, with the byte CuPy 14 drops restored.

    CuPy 14.2 returns the cubin without its last byte: it takes NVRTC's size as a string's,
    terminator included. NVRTC's own buffer (read through ctypes on 2026-12-04, ten
    specialisations) is one byte longer, ends in a 0 byte, and is exactly as long as its ELF
    headers say: the file ends with the program header table, whose last byte is the top byte
    of the last entry's alignment, 0. Loaded from memory, the bytes object's terminator stands
    in for that byte; written to a file (the sm_90a cache) it would be missing. So one 0 byte
    is restored when the image ends in that table one byte short; any other shortfall raises
    RuntimeError.
    """
    short = elf_extent(image) - len(image)
    if short <= 0:
        return image
    phoff, = struct.unpack_from("<Q", image, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", image, 0x36)
    if short > 1 or phoff + phnum * phentsize != len(image) + 1:
        raise RuntimeError(f"cubin of {len(image)} bytes is {short} bytes short of its ELF extent")
    return image + b"\0"


_RES = re.compile(r"Used (\d+) registers")
_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def resource_usage(log):
    """Registers, stack and spill bytes from a ptxas log: the largest over every function it
    reports (entry points and non-inlined callees).

    Returns ``{'registers', 'stack', 'spill_stores', 'spill_loads'}`` (ints, -1 if absent).
    """
    regs = [int(r) for r in _RES.findall(log)]
    spills = [tuple(map(int, sp)) for sp in _SPILL.findall(log)]
    return {
        "registers": max(regs, default=-1),
        "stack": max((sp[0] for sp in spills), default=-1),
        "spill_stores": max((sp[1] for sp in spills), default=-1),
        "spill_loads": max((sp[2] for sp in spills), default=-1),
    }


def _warm_one(item):
    name, spec, entry = item
    get_function(name, spec, entry)
    return item


def warm_cache(items, processes=None):
    """Compile ``items`` ((template, spec, entry) triples) into the disk caches (CuPy's, and
    ``cache_dir()`` for sm_90a) in parallel.

    Each worker process compiles and loads its share; later processes then load cubins from
    disk. Used by the GPU test script so a fresh machine does not compile serially.
    ``processes``: worker count (default: the CPU count, at most one per item).
    """
    import multiprocessing

    items = list(items)
    if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int)
                                  or processes < 1):
        raise ValueError(f"processes must be a positive int or None, got {processes!r}")
    if not items:
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(processes or os.cpu_count() or 1, len(items))) as pool:
        for _ in pool.imap_unordered(_warm_one, items):
            pass
