"""The benchmark behind ``python -m cupy_bsparse bench``: block-sparse products against baselines.

Problem (the regimes of docs/benchmarks.md): W is a (C, K) block-sparse weight with square
blocks; x is (M, C), dy is (M, K). Three training products:

- ``fprop``: ``y = x @ W``            (M, K)
- ``bprop``: ``dx = dy @ W.T``        (M, C)
- ``wgrad``: ``dW = sddmm(x.T, dy, W)`` on W's layout

Metrics per case: median time (ms); TFLOP/s of the useful FLOPs ``2 * M * nnz``; GB/s of the
compulsory bytes (the two dense operands and the stored blocks, each once); speed-up over dense
``t_dense / t_sparse`` and efficiency ``E = d * t_dense / t_sparse`` (E = 1: zero blocks skipped
perfectly at cuBLAS speed on the rest).

GPU: CUDA events around each call, after warm-up, median of the repeats; a spin kernel keeps the
GPU ahead of the host, so the events bracket GPU work and not Python launch gaps. Inputs rotate
among enough copies that consecutive calls find nothing in L2. Baselines in the same process:
dense ``cupy.matmul`` on the masked W (bfloat16 through ``torch.matmul``), cuSPARSE CSR SpMM
through ``cupyx.scipy.sparse`` (float32 only: cupyx holds no half types; no SDDMM) and PyTorch
BSR (``@``; wgrad through torch's private Triton ``sampled_addmm``). A baseline that does not
apply or fails is n/a, with the reason in the row's note. CPU (no GPU): the numpy reference
against dense numpy (float32 for half types) and ``scipy.sparse`` BSR, timed with
``time.perf_counter``, without rotation.

``run(resolve(...))`` returns result rows (dicts with :data:`COLUMNS` keys); ``format_table``,
``write_json``, ``write_csv`` and ``plot`` present them. Over several densities,
``break_even`` reads the break-even map from them (``format_break_even``).
"""

import contextlib
import csv
import dataclasses
import datetime
import json
import math
import operator
import statistics
import sys
import time
import warnings

import numpy as np

from . import __version__, layouts
from ._arrays import BFLOAT16, SUPPORTED_BLOCKSIZES, from_float32, gpu_available, to_float32
from .block_layout import BlockLayout
from .matrix import random
from .ops import matmul, sddmm

__all__ = [
    "OPS", "DTYPES", "LAYOUTS", "BASELINES", "COLUMNS", "L2_BYTES", "Sweep", "resolve", "run",
    "gpu_available", "time_cpu", "time_cuda", "rotation_sets", "useful_flops", "moved_bytes",
    "metrics", "make_mask", "format_table", "metadata", "write_json", "write_csv", "plot",
    "gpu_name", "break_even", "format_break_even",
]

OPS = ("fprop", "bprop", "wgrad")
DTYPES = ("float16", "bfloat16", "float32", "float64")
LAYOUTS = ("random", "balanced", "small_world", "barabasi_albert")
GPU_BASELINES = ("dense", "cusparse", "torch")
CPU_BASELINES = ("dense", "scipy")
BASELINES = GPU_BASELINES + ("scipy",)
#: Keys of a result row, the CSV header. Times in ms (median); an empty cell / null is n/a.
#: density: fraction of blocks stored; tflops, gbs, efficiency, speedup: of time_ms (see the
#: module docstring); <baseline>_ms: baseline times; sets: input copies rotated; note: why a
#: value is n/a, errors.
COLUMNS = (
    "device", "op", "dtype", "tf32", "m", "c", "k", "blocksize", "layout", "density", "nnzb",
    "time_ms", "tflops", "gbs", "dense_ms", "efficiency", "speedup", "cusparse_ms", "torch_ms",
    "scipy_ms", "sets", "note",
)
#: H100 L2 size; used when the device does not report its own.
L2_BYTES = 50 * 2**20
#: Rotation: enough input copies that together they exceed this many times L2 ...
_ROTATE_FACTOR = 4
#: ... but at most this many copies.
_MAX_SETS = 128
_SMALL_WORLD_REWIRE_P = 0.1
_SHORT = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}


# ---------------------------------------------------------------------------------------------
# metrics


def useful_flops(m, nnz):
    """FLOPs of one product touching ``nnz`` stored values with M rows: ``2 * m * nnz``."""
    return 2 * m * nnz


def moved_bytes(m, c, k, nnz, itemsize):
    """Compulsory bytes of any of the three products: x or dx (M, C), y or dy (M, K) and the
    ``nnz`` stored values of W or dW, each moved once."""
    return (m * c + m * k + nnz) * itemsize


def metrics(m, c, k, nnz, itemsize, density, t_ms, dense_ms=None):
    """``{'tflops', 'gbs', 'efficiency', 'speedup'}`` of a sparse time ``t_ms``.

    ``efficiency`` = density * dense_ms / t_ms and ``speedup`` = dense_ms / t_ms are None without
    a dense time; everything is None without ``t_ms``.
    """
    if not t_ms:
        return dict(tflops=None, gbs=None, efficiency=None, speedup=None)
    seconds = t_ms * 1e-3
    speedup = dense_ms / t_ms if dense_ms else None
    return dict(
        tflops=useful_flops(m, nnz) / seconds / 1e12,
        gbs=moved_bytes(m, c, k, nnz, itemsize) / seconds / 1e9,
        efficiency=None if speedup is None else density * speedup,
        speedup=speedup,
    )


# ---------------------------------------------------------------------------------------------
# timing


def rotation_sets(working_set_bytes, l2_bytes=L2_BYTES, max_sets=_MAX_SETS):
    """How many input copies to cycle through so that consecutive calls miss in L2.

    Enough copies to cover ``4 * l2_bytes`` (1 when the working set alone does), at most
    ``max_sets``; 1 when ``l2_bytes`` is 0 (no rotation, e.g. on the CPU).
    """
    if l2_bytes <= 0:
        return 1
    need = math.ceil(_ROTATE_FACTOR * l2_bytes / max(working_set_bytes, 1))
    return max(1, min(max_sets, need))


def time_cpu(fn, arg_sets, warmup=2, repeat=10):
    """Median wall time in ms of ``fn(*args)``, cycling through ``arg_sets`` (perf_counter)."""
    n = len(arg_sets)
    for i in range(warmup):
        fn(*arg_sets[i % n])
    samples = []
    for i in range(warmup, warmup + repeat):
        t0 = time.perf_counter()
        fn(*arg_sets[i % n])
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


_SPIN_SOURCE = r"""
extern "C" __global__ void spin(unsigned long long ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}
"""
_spin_kernel = None
_MAX_SPIN_S = 0.2


def _spin(seconds):
    """Keep the current stream busy for ``seconds`` (one thread reading %globaltimer)."""
    global _spin_kernel
    import cupy

    if _spin_kernel is None:
        _spin_kernel = cupy.RawKernel(_SPIN_SOURCE, "spin")
    _spin_kernel((1,), (1,), (np.uint64(seconds * 1e9),))


def time_cuda(fn, arg_sets, warmup=5, repeat=20):
    """Median GPU time in ms of ``fn(*args)`` by CUDA events on cupy's current stream.

    ``warmup`` calls first (compiles, plans), then ``repeat`` timed calls continuing the cycle
    through ``arg_sets``. A spin kernel queued ahead keeps the GPU busy while the host queues
    every timed call, so each event pair brackets the GPU work of one call and not the Python
    launch overhead between calls. Work issued by torch is covered when torch uses the same
    stream (the default stream for both libraries).
    """
    import cupy

    n = len(arg_sets)
    stream = cupy.cuda.get_current_stream()
    host = []
    for i in range(warmup):
        t0 = time.perf_counter()
        fn(*arg_sets[i % n])
        host.append(time.perf_counter() - t0)
    stream.synchronize()
    events = [(cupy.cuda.Event(), cupy.cuda.Event()) for _ in range(repeat)]
    per_call = min(host) if host else 1e-3
    _spin(min(_MAX_SPIN_S, 2 * per_call * repeat + 1e-3))
    for i, (start, stop) in enumerate(events):
        start.record(stream)
        fn(*arg_sets[(warmup + i) % n])
        stop.record(stream)
    stream.synchronize()
    return statistics.median(cupy.cuda.get_elapsed_time(a, b) for a, b in events)


# ---------------------------------------------------------------------------------------------
# problem set-up


def make_mask(kind, n_block_rows, n_block_cols, density, seed=None):
    """(n_block_rows, n_block_cols) bool block mask of layout ``kind`` near ``density``.

    ``random`` keeps exactly round(d * blocks); ``balanced`` the same count in every
    block-column. ``small_world`` (Watts-Strogatz, rewiring 0.1, degree ~ d * n) and
    ``barabasi_albert`` (m ~ d * n / 2) need a square grid. Raises ValueError otherwise.
    """
    if kind == "random":
        return layouts.random(n_block_rows, n_block_cols, density, seed=seed)
    if kind == "balanced":
        return layouts.balanced(n_block_rows, n_block_cols, density, seed=seed)
    if kind not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {kind!r}")
    if n_block_rows != n_block_cols:
        raise ValueError(
            f"layout {kind!r} is a graph on units and needs a square W (C == K), got a "
            f"{n_block_rows} x {n_block_cols} block grid"
        )
    n, param = n_block_rows, _graph_param(kind, n_block_rows, density)
    if kind == "small_world":
        return layouts.small_world(n, param, _SMALL_WORLD_REWIRE_P, seed=seed)
    return layouts.barabasi_albert(n, param, seed=seed)


def _graph_param(kind, n, density):
    """small_world's degree or barabasi_albert's m for n units at ``density``."""
    if kind == "small_world":
        largest = n - 1 if (n - 1) % 2 == 0 else n - 2
        degree = 2 * round(density * n / 2)
        if density > 0 and n > 2:
            degree = max(degree, 2)
        return max(0, min(degree, largest))
    if n < 2:
        raise ValueError("layout 'barabasi_albert' needs at least 2 block-rows")
    return max(1, min(n - 1, round(density * n / 2)))


def _check_layout_size(kind, n_block_rows, n_block_cols, density):
    """ValueError unless ``make_mask`` would store at least one block (without drawing it)."""
    if kind == "random":
        stored = round(density * n_block_rows * n_block_cols)
    elif kind == "balanced":
        stored = round(density * n_block_rows)
    else:
        stored = _graph_param(kind, n_block_rows, density)
    if stored < 1:
        raise ValueError(
            f"layout {kind!r} at density {density} on a {n_block_rows} x {n_block_cols} block "
            "grid stores no block: raise the density or C and K"
        )


def _normal(rng, shape, dtype):
    return from_float32(rng.standard_normal(shape, dtype=np.float32), dtype)


# ---------------------------------------------------------------------------------------------
# sweep description


@dataclasses.dataclass
class Sweep:
    """Every knob of a benchmark run; :func:`resolve` fills defaults per device."""

    device: str = "gpu"
    ms: tuple = (64, 4096)
    #: Input / output features (rows / columns of W); None: 16384 for M <= 256, else 8192.
    c: int = None
    k: int = None
    blocksizes: tuple = (8, 16, 32, 64)
    densities: tuple = (0.1,)
    dtypes: tuple = ("float16", "float32")
    ops: tuple = OPS
    layout: str = "random"
    baselines: tuple = GPU_BASELINES
    tf32: bool = False
    warmup: int = 5
    repeat: int = 20
    seed: int = 0

    def features(self, m):
        """(C, K) for ``m`` rows."""
        default = 16384 if m <= 256 else 8192
        return (default if self.c is None else self.c, default if self.k is None else self.k)

    def groups(self):
        """(m, c, k, dtype, blocksize, density) of every W the sweep builds, in run order."""
        return [(m, *self.features(m), dt, bs, d)
                for m in self.ms for dt in self.dtypes for bs in self.blocksizes
                for d in self.densities]


_DEFAULTS = {
    # (device, quick) -> defaults; keys are Sweep fields.
    ("gpu", False): dict(),
    ("gpu", True): dict(ms=(64, 1024), c=2048, k=2048, blocksizes=(16, 32),
                        baselines=("dense", "cusparse"), warmup=2, repeat=5),
    ("cpu", False): dict(ms=(64,), c=4096, k=4096, dtypes=("float32",),
                         baselines=CPU_BASELINES, warmup=2, repeat=10),
    ("cpu", True): dict(ms=(16,), c=256, k=256, blocksizes=(16, 32), dtypes=("float32",),
                        baselines=CPU_BASELINES, warmup=1, repeat=3),
}


def resolve(device, quick=False, **given):
    """The :class:`Sweep` for ``device`` ('gpu' or 'cpu'): defaults, then the non-None ``given``
    fields. ``quick`` picks a small sweep that runs in seconds.

    Baselines that do not exist on the device are dropped. Raises ValueError for sizes that are
    not multiples of a block size, block sizes / dtypes the device lacks, densities outside
    (0, 1], non-positive M, C, K or repeat, a negative seed, an operand over 2**31 elements, a
    graph layout with C != K, a layout that would store no block, or tf32 on the CPU. Repeated
    values in the list fields count once.
    """
    if device not in ("gpu", "cpu"):
        raise ValueError(f"device must be 'gpu' or 'cpu', got {device!r}")
    fields = dict(_DEFAULTS[(device, bool(quick))])
    fields.update({k: v for k, v in given.items() if v is not None})
    for name in ("ms", "blocksizes", "densities", "dtypes", "ops", "baselines"):
        if name in fields:
            fields[name] = tuple(dict.fromkeys(fields[name]))   # in order, repeats dropped
    sweep = Sweep(device=device, **fields)
    available = GPU_BASELINES if device == "gpu" else CPU_BASELINES
    sweep.baselines = tuple(b for b in sweep.baselines if b in available)
    _validate(sweep)
    return sweep


#: Elements of one operand above which a case is refused (2**31, 8 GiB in float32; the dense
#: baseline's W among them), so a mistyped size fails at once rather than in an allocation.
_MAX_ELEMENTS = 1 << 31


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _validate(sweep):
    if not sweep.ms or not all(_is_int(m) and m > 0 for m in sweep.ms):
        raise ValueError(f"M must be positive ints, got {sweep.ms}")
    for name in ("c", "k"):
        value = getattr(sweep, name)
        if value is not None and not (_is_int(value) and value > 0):
            raise ValueError(f"{name.upper()} must be a positive int, got {value!r}")
    if not _is_int(sweep.seed) or sweep.seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {sweep.seed!r}")
    if not (_is_int(sweep.repeat) and _is_int(sweep.warmup)) or sweep.repeat <= 0 \
            or sweep.warmup < 0:
        raise ValueError(f"repeat must be an int >= 1 and warmup an int >= 0, got "
                         f"{sweep.repeat!r}, {sweep.warmup!r}")
    for d in sweep.densities:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, float, np.number)) \
                or not 0 < d <= 1:
            raise ValueError(f"density must be a number in (0, 1], got {d!r}")
    for dt in sweep.dtypes:
        if dt not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dt!r}")
    for op in sweep.ops:
        if op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    if sweep.layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {sweep.layout!r}")
    if sweep.tf32 and sweep.device == "cpu":
        raise ValueError("tf32 selects the GPU's TF32 tensor cores; the CPU reference has none")
    if sweep.device == "gpu":
        if "float64" in sweep.dtypes:
            raise ValueError("float64 runs on the CPU only (the GPU kernels take fp16/bf16/fp32)")
        bad = [bs for bs in sweep.blocksizes if bs not in SUPPORTED_BLOCKSIZES]
        if bad:
            raise ValueError(f"the GPU kernels take block sizes {SUPPORTED_BLOCKSIZES}, got {bad}")
    for bs in sweep.blocksizes:
        if not _is_int(bs) or bs <= 0:
            raise ValueError(f"block size must be a positive int, got {bs!r}")
        for m in sweep.ms:
            c, k = sweep.features(m)
            if c % bs or k % bs:
                raise ValueError(f"C={c} and K={k} must be multiples of the block size {bs}")
            if c != k and sweep.layout in ("small_world", "barabasi_albert"):
                raise ValueError(f"layout {sweep.layout!r} needs C == K, got C={c}, K={k}")
            if max(m * c, m * k, c * k) > _MAX_ELEMENTS:
                raise ValueError(
                    f"M={m}, C={c}, K={k}: an operand of more than 2**31 elements is too large "
                    "for this benchmark"
                )
            for d in sweep.densities:
                _check_layout_size(sweep.layout, c // bs, k // bs, d)


# ---------------------------------------------------------------------------------------------
# devices: array module, timer, dense engine


class _Skip(Exception):
    """A baseline does not apply to this case; the message says why."""


class _Cpu:
    kind = "cpu"
    xp = np
    l2_bytes = 0

    def time(self, fn, arg_sets, sweep):
        return time_cpu(fn, arg_sets, sweep.warmup, sweep.repeat)

    def dense_engine(self, dtype):
        """(convert, matmul, empty, note) of the dense baseline for ``dtype``."""
        if dtype.itemsize == 2:
            # numpy has no half-precision BLAS (its float16 matmul is a slow loop).
            return (to_float32, lambda a, b, out: np.matmul(a, b, out=out),
                    lambda shape: np.empty(shape, np.float32), "dense: numpy in float32")
        return (lambda a: a, lambda a, b, out: np.matmul(a, b, out=out),
                lambda shape: np.empty(shape, dtype), None)

    def tf32(self, enabled):
        return contextlib.nullcontext()

    def release(self):
        pass


class _Gpu:
    kind = "gpu"

    def __init__(self):
        import cupy

        self.xp = cupy
        dev = cupy.cuda.Device()
        self.l2_bytes = dev.attributes.get("L2CacheSize", L2_BYTES) or L2_BYTES

    def time(self, fn, arg_sets, sweep):
        return time_cuda(fn, arg_sets, sweep.warmup, sweep.repeat)

    def dense_engine(self, dtype):
        cupy = self.xp
        if dtype != BFLOAT16:
            return (lambda a: a, lambda a, b, out: cupy.matmul(a, b, out=out),
                    lambda shape: cupy.empty(shape, dtype), None)
        torch = _torch()
        if torch is None:
            raise _Skip("dense: cupy.matmul has no bfloat16 and torch is not importable")
        return (_to_torch, lambda a, b, out: torch.matmul(a, b, out=out),
                lambda shape: torch.empty(shape, dtype=torch.bfloat16, device="cuda"),
                "dense bf16: torch.matmul")

    @contextlib.contextmanager
    def tf32(self, enabled):
        """TF32 for float32 GEMMs in cupy and torch while inside, if ``enabled``."""
        if not enabled:
            yield
            return
        from cupy._core import _routines_linalg as linalg

        torch = _torch()
        old = linalg.get_compute_type(np.float32)
        linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # newer torch prefers fp32_precision
            old_torch = torch.backends.cuda.matmul.allow_tf32 if torch else None
            if torch:
                torch.backends.cuda.matmul.allow_tf32 = True
        try:
            yield
        finally:
            linalg.set_compute_type(np.float32, old)
            if torch:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.backends.cuda.matmul.allow_tf32 = old_torch

    def release(self):
        self.xp.cuda.get_current_stream().synchronize()
        self.xp.get_default_memory_pool().free_all_blocks()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


def gpu_name():
    """'NAME (sm_XY, N SMs, L2 M MB)' of the current device."""
    import cupy

    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    l2 = dev.attributes.get("L2CacheSize", 0) / 2**20
    return (f"{name} (sm_{dev.compute_capability}, "
            f"{dev.attributes.get('MultiProcessorCount', '?')} SMs, L2 {l2:.0f} MB)")


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _to_torch(a):
    """cupy array -> torch tensor of the same dtype (bfloat16 via float32; DLPack otherwise)."""
    torch = _torch()
    if a.dtype == BFLOAT16:
        return torch.from_dlpack(to_float32(a)).to(torch.bfloat16)
    return torch.from_dlpack(a)


# ---------------------------------------------------------------------------------------------
# one case: the sparse product and each baseline


def _sparse_args(op, s, xp, m, c, k):
    """Arguments of :func:`_sparse_fn`'s function for operand set ``s``."""
    if op == "fprop":
        return s["x"], s["w"], xp.empty((m, k), s["x"].dtype)
    if op == "bprop":
        return s["dy"], s["w"].T, xp.empty((m, c), s["x"].dtype)
    return s["x"].T, s["dy"], s["w"].copy()


def _sparse_fn(op, sweep):
    """The timed call of cupy_bsparse's product ``op``, writing into a preallocated out."""
    if op == "wgrad":
        def fn(xt, dy, out):
            return sddmm(xt, dy, out.layout, out=out, allow_tf32=sweep.tf32)
    else:
        def fn(a, w, out):
            return matmul(a, w, out=out, allow_tf32=sweep.tf32)
    return fn


def _baseline_dense(dev, op, sets, shape, dtype, sweep):
    m, c, k = shape
    convert, mm, empty, note = dev.dense_engine(dtype)
    n = min(len(sets), rotation_sets((m * c + m * k + c * k) * dtype.itemsize, dev.l2_bytes))
    args = []
    for s in sets[:n]:
        wd = convert(s["w"].toarray())
        if op == "fprop":
            args.append((convert(s["x"]), wd, empty((m, k))))
        elif op == "bprop":
            args.append((convert(s["dy"]), wd.T, empty((m, c))))
        else:
            args.append((convert(s["x"]).T, convert(s["dy"]), empty((c, k))))
    with dev.tf32(sweep.tf32 and dtype == np.float32):
        return dev.time(mm, args, sweep), note


def _baseline_cusparse(dev, op, sets, shape, dtype, sweep):
    if dtype != np.float32:
        raise _Skip(f"cusparse: cupyx.scipy.sparse holds float32/float64 only, not {dtype.name}")
    if op == "wgrad":
        raise _Skip("cusparse: cupyx has no SDDMM")
    w = sets[0]["w"]
    if w.nnz >= 2**31:
        raise _Skip("cusparse: more than 2**31 - 1 stored values")
    m, c, k = shape
    ws = w.nnz * 8 + (m * c + m * k) * 4
    args = []
    for s in sets[:min(len(sets), rotation_sets(ws, dev.l2_bytes))]:
        # y.T = W.T @ x.T and dx.T = W @ dy.T; the transposed dense views are F-ordered, which
        # is what cuSPARSE SpMM reads without a copy.
        a = s["w"].T.tocsr() if op == "fprop" else s["w"].tocsr()
        a.sum_duplicates()
        args.append((a, (s["x"] if op == "fprop" else s["dy"]).T))
    note = "cusparse: no TF32" if sweep.tf32 else None
    return dev.time(operator.matmul, args, sweep), note


def _baseline_torch(dev, op, sets, shape, dtype, sweep):
    torch = _torch()
    if torch is None:
        raise _Skip("torch: not importable or no CUDA")
    import cupy

    if torch.cuda.current_stream().cuda_stream != cupy.cuda.get_current_stream().ptr:
        raise _Skip("torch: runs on another stream than cupy; not timed")
    bs = sets[0]["w"].blocksize[0]
    m, c, k = shape
    w = sets[0]["w"]
    ws = w.nnz * dtype.itemsize + w.nnzb * 4 + (m * c + m * k) * dtype.itemsize
    args = []
    for s in sets[:min(len(sets), rotation_sets(ws, dev.l2_bytes))]:
        wd = _to_torch(s["w"].toarray())
        if op == "fprop":
            args.append((wd.T.contiguous().to_sparse_bsr((bs, bs)), _to_torch(s["x"]).T))
        elif op == "bprop":
            args.append((wd.to_sparse_bsr((bs, bs)), _to_torch(s["dy"]).T))
        else:
            args.append((wd.to_sparse_bsr((bs, bs)), _to_torch(s["x"]).T, _to_torch(s["dy"])))
        del wd
    if op == "wgrad":
        # torch.sparse.sampled_addmm rejects BSR; this private Triton kernel is the BSR SDDMM.
        from torch.sparse._triton_ops import sampled_addmm

        def fn(a, x1, x2):
            return sampled_addmm(a, x1, x2, alpha=1.0, beta=0.0)
        note = "torch wgrad: private torch.sparse._triton_ops.sampled_addmm"
    else:
        fn, note = operator.matmul, None
    with warnings.catch_warnings(), dev.tf32(sweep.tf32 and dtype == np.float32):
        warnings.simplefilter("ignore")  # "sparse BSR support is in beta"
        return dev.time(fn, args, sweep), note


def _baseline_scipy(dev, op, sets, shape, dtype, sweep):
    if dtype.itemsize == 2:
        raise _Skip(f"scipy: scipy.sparse has no {dtype.name}")
    if op == "wgrad":
        raise _Skip("scipy: scipy.sparse has no SDDMM")
    s = sets[0]
    w = s["w"].get()
    args = [(s["x"], w)] if op == "fprop" else [(s["dy"], w.T)]
    return dev.time(operator.matmul, args, sweep), None


_BASELINE_FNS = {"dense": _baseline_dense, "cusparse": _baseline_cusparse,
                 "torch": _baseline_torch, "scipy": _baseline_scipy}


def _brief(e):
    """'Type: first line of the message' (at most 160 characters) of exception ``e``."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:160]


def _case(dev, sweep, op, sets, shape):
    """Result row of one case: product ``op`` of the W in ``sets``, with (M, C, K) ``shape``."""
    m, c, k = shape
    w = sets[0]["w"]
    density, dtype = w.density, w.dtype
    bs = w.blocksize[0]
    row = dict.fromkeys(COLUMNS)
    row.update(device=dev.kind, op=op, dtype=dtype.name, tf32=bool(sweep.tf32), m=m, c=c, k=k,
               blocksize=bs, layout=sweep.layout, density=density, nnzb=w.nnzb, sets=len(sets))
    notes = []
    try:
        args = [_sparse_args(op, s, dev.xp, m, c, k) for s in sets]
        row["time_ms"] = dev.time(_sparse_fn(op, sweep), args, sweep)
    except Exception as e:  # recorded in the row and reported; the sweep goes on
        notes.append(f"error: {_brief(e)}")
    for name in sweep.baselines:
        try:
            t, note = _BASELINE_FNS[name](dev, op, sets, shape, dtype, sweep)
            row[f"{name}_ms"] = t
        except _Skip as e:
            note = str(e)
        except Exception as e:  # a baseline that fails is n/a, not the end of the sweep
            note = f"{name}: {_brief(e)}"
        # Baselines allocate through torch's and cupy's pools in turn: give memory back.
        dev.release()
        if note:
            notes.append(note)
    row.update(metrics(m, c, k, w.nnz, dtype.itemsize, density, row["time_ms"], row["dense_ms"]))
    row["note"] = "; ".join(notes)
    return row


def _case_label(m, dtype, bs, density, op):
    return f"M={m} {_SHORT.get(dtype, dtype)} bs{bs} d={density:.2f} {op}"


def run(sweep, log=None):
    """Run every case of ``sweep``; returns the result rows (dicts keyed by :data:`COLUMNS`).

    Progress lines ``[i/N] M=64 fp16 bs32 d=0.10 fprop`` go to ``log`` (None: silent). A case
    whose sparse product fails has ``time_ms`` None and the error in ``note``.
    """
    dev = _Gpu() if sweep.device == "gpu" else _Cpu()
    xp = dev.xp
    groups = sweep.groups()
    total = len(groups) * len(sweep.ops)
    rows = []
    for gi, (m, c, k, dtype, bs, density) in enumerate(groups):
        dtype = np.dtype(BFLOAT16 if dtype == "bfloat16" else dtype)
        mask = make_mask(sweep.layout, c // bs, k // bs, density, seed=sweep.seed)
        layout = BlockLayout.from_mask(mask, bs)
        w = random((c, k), bs, layout=layout, dtype=dtype, seed=sweep.seed + 1, device=dev.kind)
        n = rotation_sets(moved_bytes(m, c, k, w.nnz, dtype.itemsize), dev.l2_bytes)
        rng = xp.random.default_rng(sweep.seed + 2)
        # Copies of W are as good as new values for the cache: L2 is addressed by location.
        sets = [dict(w=w if i == 0 else w.copy(), x=_normal(rng, (m, c), dtype),
                     dy=_normal(rng, (m, k), dtype)) for i in range(n)]
        for oi, op in enumerate(sweep.ops):
            if log is not None:
                index = gi * len(sweep.ops) + oi + 1
                print(f"[{index}/{total}] {_case_label(m, dtype.name, bs, w.density, op)}",
                      file=log, flush=True)
            rows.append(_case(dev, sweep, op, sets, (m, c, k)))
        del sets, w
        dev.release()
    return rows


# ---------------------------------------------------------------------------------------------
# output


def _fmt(value, spec):
    """``value`` formatted by ``spec``; spec 'sN' means N significant digits, never an exponent."""
    if value is None:
        return "n/a"
    if spec.startswith("s"):
        digits = int(spec[1:])
        whole = len(str(int(abs(value)))) if abs(value) >= 1 else 1
        return f"{value:.{max(0, digits - whole)}f}" if abs(value) >= 1 else f"{value:.{digits}g}"
    return format(value, spec)


_TABLE = (
    # (header, row key, format)
    ("op", "op", ""), ("dtype", "dtype", ""), ("M", "m", "d"), ("C", "c", "d"), ("K", "k", "d"),
    ("bs", "blocksize", "d"), ("d", "density", ".3f"), ("ms", "time_ms", "s4"),
    ("TFLOP/s", "tflops", "s3"), ("GB/s", "gbs", "s3"), ("dense ms", "dense_ms", "s4"),
    ("E", "efficiency", ".3f"), ("speed-up", "speedup", "s3"),
)
_BASELINE_HEADERS = {"cusparse": "cuSPARSE ms", "torch": "torch BSR ms", "scipy": "scipy BSR ms"}


def _aligned(cells, right_from):
    """Lines of the table ``cells`` (lists of strings), columns padded to their widest cell:
    left-aligned before column ``right_from``, right-aligned from it on."""
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    return ["  ".join(s.rjust(w) if i >= right_from else s.ljust(w)
                      for i, (s, w) in enumerate(zip(line, widths))).rstrip() for line in cells]


def format_table(rows, baselines=GPU_BASELINES):
    """Aligned text table of result rows, one line per case, then the distinct notes."""
    cols = list(_TABLE) + [(_BASELINE_HEADERS[b], f"{b}_ms", "s4")
                           for b in baselines if b in _BASELINE_HEADERS]
    cells = [[h for h, _, _ in cols]]
    for r in rows:
        line = []
        for _, key, spec in cols:
            v = r[key]
            line.append(_SHORT.get(v, v) if key == "dtype" else _fmt(v, spec))
        cells.append(line)
    text = _aligned(cells, right_from=2)
    notes = []
    for r in rows:
        for n in filter(None, (r["note"] or "").split("; ")):
            if n not in notes:
                notes.append(n)
    if notes:
        text.append("notes:")
        text.extend(f"  {n}" for n in notes)
    return "\n".join(text)


def break_even(rows):
    """The density below which block-sparse beats dense, per case of a density sweep.

    For each (op, dtype, M, C, K, layout, block size) with a speed-up over dense at two or more
    densities (repeated densities averaged), read linearly between the measured densities
    around a crossing of speed-up 1 (the dense time does not depend on d). Returns dicts with
    those keys (``m``, ``c``, ``k``, ``blocksize`` as in the rows) and:

    - ``bound``: "between" (faster at one density, slower at the next: ``density`` is the first
      such fall), "above" (faster at every measured density), "below" (slower at every one) or
      "rising" (slower at low densities and faster above, never falling back: ``density`` is
      where it starts to win);
    - ``density``: the crossing, None for "above" and "below";
    - ``lo``, ``hi``: the measured densities around the crossing, or the end of the range;
    - ``crossings``: how often the speed-up crosses 1 (more than one: not monotone).
    """
    keys = ("op", "dtype", "m", "c", "k", "layout", "blocksize")
    groups = {}
    for r in rows:
        if r["speedup"] is not None:
            group = groups.setdefault(tuple(r[k] for k in keys), {})
            group.setdefault(r["density"], []).append(r["speedup"])
    out = []
    for key, by_d in groups.items():
        if len(by_d) < 2:
            continue
        pts = sorted((d, statistics.fmean(v)) for d, v in by_d.items())
        pairs = list(zip(pts, pts[1:]))
        wins = [sp >= 1 for _, sp in pts]
        entry = dict(zip(keys, key), crossings=sum(a != b for a, b in zip(wins, wins[1:])))
        if all(wins):
            entry.update(bound="above", density=None, lo=pts[-1][0], hi=pts[-1][0])
        elif not any(wins):
            entry.update(bound="below", density=None, lo=pts[0][0], hi=pts[0][0])
        else:
            # the first fall below 1; without one, the first rise above it
            falls = [p for p in pairs if p[0][1] >= 1 > p[1][1]]
            (d0, s0), (d1, s1) = (falls or [p for p in pairs if p[0][1] < 1 <= p[1][1]])[0]
            entry.update(bound="between" if falls else "rising",
                         density=d0 + (s0 - 1) * (d1 - d0) / (s0 - s1), lo=d0, hi=d1)
        out.append(entry)
    return out


def format_break_even(entries):
    """Text table of ``break_even``'s entries: one line per (op, dtype, M, C, K, layout), one
    column per block size; a cell is the crossing with the measured densities around it,
    "> d" / "< d" beyond the measured range, "rises at d" when block-sparse wins only above d;
    "*" marks a speed-up that crosses 1 more than once. Empty string without entries."""
    if not entries:
        return ""
    sizes = sorted({e["blocksize"] for e in entries})
    lines = {}
    for e in entries:
        head = (e["op"], _SHORT.get(e["dtype"], e["dtype"]), str(e["m"]), str(e["c"]), str(e["k"]),
                e["layout"])
        if e["bound"] == "between":
            cell = f"{e['density']:.3g} ({e['lo']:.3g}-{e['hi']:.3g})"
        elif e["bound"] == "rising":
            cell = f"rises at {e['density']:.3g}"
        else:
            cell = f"{'>' if e['bound'] == 'above' else '<'} {e['lo']:.3g}"
        lines.setdefault(head, {})[e["blocksize"]] = cell + ("*" if e["crossings"] > 1 else "")
    cells = [["op", "dtype", "M", "C", "K", "layout"] + [f"bs {bs}" for bs in sizes]]
    cells += [list(h) + [v.get(bs, "n/a") for bs in sizes] for h, v in lines.items()]
    text = _aligned(cells, right_from=len(cells[0]))
    if any(e["crossings"] > 1 for e in entries):
        text.append("* the speed-up crosses 1 more than once; the first fall is shown")
    return "break-even density (block-sparse faster below it):\n" + "\n".join(text)


def metadata(sweep, device_name=None, argv=None):
    """Run description stored with the results: versions, device, sweep, command."""
    from . import compiler

    meta = dict(
        cupy_bsparse=__version__, numpy=np.__version__, device=sweep.device,
        device_name=device_name, sweep=dataclasses.asdict(sweep), argv=argv,
        utc=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    try:
        meta["kernel_fingerprint"] = compiler.source_fingerprint()
    except RuntimeError:
        meta["kernel_fingerprint"] = None
    for mod in ("cupy", "torch", "scipy"):
        if mod in sys.modules:
            meta[mod] = getattr(sys.modules[mod], "__version__", None)
    return meta


def write_json(path, rows, meta):
    """``{"meta": meta, "columns": COLUMNS, "results": rows, "break_even": break_even(rows)}``
    as JSON (n/a is null)."""
    with open(path, "w") as f:
        json.dump(dict(meta=meta, columns=list(COLUMNS), results=rows,
                       break_even=break_even(rows)), f, indent=1)
        f.write("\n")


def write_csv(path, rows):
    """Rows as CSV with header :data:`COLUMNS` (n/a is an empty cell)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})


def plot(path, rows):
    """Speed-up over dense against density, one line per block size, one panel per
    (M, dtype, op). Returns False (and writes nothing) without matplotlib or dense times."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in rows if r["speedup"] is not None]
    panels = sorted({(r["m"], r["dtype"], r["op"]) for r in rows},
                    key=lambda p: (p[0], p[1], OPS.index(p[2])))
    if not panels:
        return False
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.4 * nrows), squeeze=False)
    for ax, (m, dtype, op) in zip(axes.flat, panels):
        mine = [r for r in rows if (r["m"], r["dtype"], r["op"]) == (m, dtype, op)]
        for bs in sorted({r["blocksize"] for r in mine}):
            pts = sorted((r["density"], r["speedup"]) for r in mine if r["blocksize"] == bs)
            ax.plot(*zip(*pts), marker="o", label=f"bs {bs}")
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("density (fraction of blocks)")
        ax.set_ylabel("speed-up over dense")
        ax.set_title(f"{op} {_SHORT.get(dtype, dtype)} M={m}")
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
