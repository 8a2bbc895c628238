"""``python -m cupy_bsparse overheads``: the costs around the kernels, measured on the GPU.

- compile: a new process with an empty kernel cache (ours and CuPy's) runs its first product
  (NVRTC compile, module load, look-up tables; a layout this small builds them on the host, so
  no CuPy kernel compiles), then a product of another block size (a new specialisation alone);
- cache hit: a new process whose kernel cache is warm, to its first result;
- look-up tables: the first (fprop, bprop, wgrad) calls on a layout of about 100k blocks,
  minus the same calls once the tables are cached;
- host overhead: M = 1, C = K = 1024, bs 32, float16: wall time per call (the median of
  batches of calls, which the host's scheduling noise moves less than one long loop) against
  the kernel's time (CUDA-graph replay), so plans are cached and nothing synchronises.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

_FIRST_CALL = r"""
import json, sys, time
t0 = time.perf_counter()
import cupy, numpy as np
import cupy_bsparse as cb
t1 = time.perf_counter()
W = cb.random((1024, 1024), 32, density=0.1, dtype=np.float16, seed=0, device="gpu")
x = cupy.ones((64, 1024), np.float16)
cupy.cuda.Device().synchronize()
t2 = time.perf_counter()
y = cb.matmul(x, W)
cupy.cuda.Device().synchronize()
t3 = time.perf_counter()
# A second, different specialisation (block size 64) in the same process: its NVRTC compile,
# load and tables, with CuPy's own kernels (used to build tables) already compiled.
W2 = cb.random((1024, 1024), 64, density=0.1, dtype=np.float16, seed=0, device="gpu")
cupy.cuda.Device().synchronize()
t4 = time.perf_counter()
y = cb.matmul(x, W2)
cupy.cuda.Device().synchronize()
t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_call_s": t3 - t2, "total_s": t3 - t0,
                  "next_spec_s": t5 - t4}))
"""


def _first_call(cache_dir):
    # both caches in the folder: CuPy's, and ours for sm_90a (under CUPY_CACHE_DIR by default)
    env = {k: v for k, v in os.environ.items() if k != "CUPY_BSPARSE_CACHE_DIR"}
    env["CUPY_CACHE_DIR"] = cache_dir
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, check=True,
                         capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - start
    return res


def _sync_time(fn):
    import cupy

    cupy.cuda.Device().synchronize()
    t0 = time.perf_counter()
    fn()
    cupy.cuda.Device().synchronize()
    return time.perf_counter() - t0


def _tables():
    """First-call minus cached-call time of the three products on a ~100k-block layout."""
    import cupy
    import numpy as np

    import cupy_bsparse as cb

    W = cb.random((16384, 16384), 16, density=0.1, dtype=np.float16, seed=1, device="gpu")
    x = cupy.ones((16, 16384), np.float16)
    # Compile first (on a throwaway layout), so only table building is timed.
    w0 = cb.random((64, 64), 16, density=1.0, dtype=np.float16, device="gpu")
    x0 = cupy.ones((16, 64), np.float16)
    cb.matmul(x0, w0), cb.matmul(x0, w0.T), cb.sddmm(x0.T, x0, w0)
    calls = (lambda: cb.matmul(x, W), lambda: cb.matmul(x, W.T), lambda: cb.sddmm(x.T, x, W))
    first = [_sync_time(f) for f in calls]
    cached = [_sync_time(f) for f in calls]
    return {"nnzb": W.nnzb, "first_ms": [1e3 * t for t in first],
            "cached_ms": [1e3 * t for t in cached],
            "tables_ms": [1e3 * (a - b) for a, b in zip(first, cached)]}


def _host_overhead(batches=10, calls=200):
    import cupy
    import numpy as np

    import cupy_bsparse as cb

    W = cb.random((1024, 1024), 32, density=0.1, dtype=np.float16, seed=0, device="gpu")
    x = cupy.ones((1, 1024), np.float16)
    y = cupy.empty((1, 1024), np.float16)
    for _ in range(50):
        cb.matmul(x, W, out=y)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        cb.matmul(x, W, out=y)
        stream.synchronize()
        stream.begin_capture()
        for _ in range(100):
            cb.matmul(x, W, out=y)
        graph = stream.end_capture()
        graph.launch(stream)
        stream.synchronize()
        t0 = time.perf_counter()
        graph.launch(stream)
        stream.synchronize()
        kernel = (time.perf_counter() - t0) / 100
    cupy.cuda.Device().synchronize()
    per_call = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            cb.matmul(x, W, out=y)
        per_call.append((time.perf_counter() - t0) / calls)
        cupy.cuda.Device().synchronize()
    us = 1e6 * np.array(per_call)
    return {"per_call_us": float(np.median(us)), "per_call_range_us": [float(us.min()),
                                                                        float(us.max())],
            "kernel_us": 1e6 * kernel, "batches": [batches, calls]}


def run():
    """Measure everything; returns a dict (also printed as a report by ``main``)."""
    with tempfile.TemporaryDirectory() as cache:
        cold = _first_call(cache)
        warm = _first_call(cache)
    return {"compile": cold, "cache_hit": warm, "tables": _tables(), "host": _host_overhead()}


def report(r):
    c, w, t, h = r["compile"], r["cache_hit"], r["tables"], r["host"]
    return "\n".join([
        f"empty kernel cache: first call {c['first_call_s']:.2f} s "
        f"(process {c['process_s']:.2f} s, import {c['import_s']:.2f} s); "
        f"a new specialisation after that: {c['next_spec_s']:.2f} s",
        f"warm disk cache, new process: first call {w['first_call_s']:.3f} s "
        f"(process {w['process_s']:.2f} s, import {w['import_s']:.2f} s)",
        f"look-up tables, {t['nnzb']} blocks (fprop, bprop, wgrad): "
        + ", ".join(f"{v:.1f}" for v in t["tables_ms"]) + " ms",
        f"host overhead, M=1 C=K=1024 bs32 float16: {h['per_call_us']:.1f} us per call"
        + (f" (median of {h['batches'][0]} batches of {h['batches'][1]} calls, "
           f"{h['per_call_range_us'][0]:.1f}-{h['per_call_range_us'][1]:.1f})"
           if "batches" in h else "")
        + f", kernel {h['kernel_us']:.1f} us, host beyond the kernel "
        f"{h['per_call_us'] - h['kernel_us']:.1f} us",
    ])
