"""Command line: ``python -m cupy_bsparse bench [options]``, ``... overheads`` and ``... info``.

``bench`` runs on the GPU when cupy sees one and otherwise runs the CPU reference, saying so.
Exit status: 0, 1 if any sparse product failed, 2 for bad options.
"""

import argparse
import json
import os
import platform
import sys

from . import __version__, bench

NO_GPU_NOTE = "no CUDA GPU found: running the CPU reference (numpy) instead"


def build_parser():
    """The argparse parser of ``python -m cupy_bsparse``."""
    parser = argparse.ArgumentParser(
        prog="python -m cupy_bsparse",
        description="Block-sparse products on CuPy: benchmark and environment report.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "bench",
        help="time x @ W, dy @ W.T and sddmm against dense and sparse baselines",
        description=(
            "Time y = x @ W (fprop), dx = dy @ W.T (bprop) and dW = sddmm(x.T, dy, W) (wgrad) "
            "for x (M, C), W (C, K) block-sparse, against dense cuBLAS, cuSPARSE CSR and "
            "PyTorch BSR. Without a GPU: the numpy reference against numpy and scipy.sparse. "
            "Defaults are the two regimes of docs/benchmarks.md: M = 64 with C = K = 16384, "
            "M = 4096 with C = K = 8192."
        ),
    )
    b.add_argument("--m", type=int, nargs="+", metavar="M",
                   help="rows of x (tokens x batch); default 64 4096 (CPU: 64)")
    b.add_argument("--c", type=int, metavar="C",
                   help="input features, rows of W; default 16384 for M <= 256, else 8192 "
                        "(CPU: 4096)")
    b.add_argument("--k", type=int, metavar="K",
                   help="output features, columns of W; the same default as --c (not the value "
                        "given to --c)")
    b.add_argument("--blocksize", type=int, nargs="+", metavar="BS",
                   help="block sizes; default 8 16 32 64")
    b.add_argument("--density", type=float, nargs="+", metavar="D",
                   help="fractions of blocks kept; default 0.1")
    b.add_argument("--dtype", nargs="+", choices=bench.DTYPES,
                   help="default float16 float32 (CPU: float32)")
    b.add_argument("--op", nargs="+", choices=bench.OPS, help="default all three")
    b.add_argument("--layout", choices=bench.LAYOUTS, help="block pattern; default random")
    b.add_argument("--baselines", nargs="*", choices=bench.BASELINES,
                   help="default every one available (GPU: dense cusparse torch; CPU: dense "
                        "scipy); none with an empty list")
    b.add_argument("--tf32", action="store_true", default=None,
                   help="float32 products on TF32 tensor cores (ours and the baselines')")
    b.add_argument("--repeat", type=int, help="timed calls per case (median); default 20 (CPU: 10)")
    b.add_argument("--warmup", type=int, help="untimed calls first; default 5 (CPU: 2)")
    b.add_argument("--seed", type=int, help="seed of layouts and values; default 0")
    b.add_argument("--out", metavar="PREFIX",
                   help="write PREFIX.json, PREFIX.csv and (with matplotlib) PREFIX.png")
    b.add_argument("--quick", action="store_true",
                   help="a small sweep that finishes in seconds (smoke test)")
    b.add_argument("--device", choices=("auto", "gpu", "cpu"), default="auto",
                   help="default auto: the GPU if cupy sees one, else the CPU reference")
    sub.add_parser("info", help="version, GPU / CuPy / NVRTC availability, kernel fingerprint")
    o = sub.add_parser("overheads", help="compile time, cache-hit first result, look-up table "
                       "build and host overhead per call (GPU only)")
    o.add_argument("--out", metavar="FILE", help="also write the numbers as JSON")
    b.set_defaults(parser=b)
    o.set_defaults(parser=o)
    return parser


def _check_out(parser, path, suffixes):
    """parser.error unless ``path`` + each suffix can be written, checked before any work."""
    if path is None:
        return
    folder = os.path.dirname(path) or "."
    if not os.path.basename(path):
        parser.error(f"--out: give a file name, got {path!r}")
    if not os.path.isdir(folder):
        parser.error(f"--out: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        parser.error(f"--out: folder {folder!r} is not writable")
    for suffix in suffixes:
        if os.path.isdir(path + suffix):
            parser.error(f"--out: {path + suffix!r} is a folder")


def _bench(parser, args, argv):
    device = args.device
    note = None
    if device == "auto":
        device = "gpu" if bench.gpu_available() else "cpu"
        note = NO_GPU_NOTE if device == "cpu" else None
    elif device == "gpu" and not bench.gpu_available():
        parser.error("--device gpu: no CUDA GPU found")
    try:
        sweep = bench.resolve(
            device, quick=args.quick, ms=args.m, c=args.c, k=args.k, blocksizes=args.blocksize,
            densities=args.density, dtypes=args.dtype, ops=args.op, layout=args.layout,
            baselines=args.baselines, tf32=args.tf32, repeat=args.repeat, warmup=args.warmup,
            seed=args.seed,
        )
    except ValueError as e:
        parser.error(str(e))
    if note:
        print(note, flush=True)
    if device == "gpu":
        device_name = bench.gpu_name()
    else:
        from . import _cpu_pool

        device_name = f"CPU reference (numpy; {_cpu_pool.describe()})"
    print(f"device: {device_name}", flush=True)
    rows = bench.run(sweep, log=sys.stderr)
    print(bench.format_table(rows, sweep.baselines))
    crossings = bench.format_break_even(bench.break_even(rows))
    if crossings:
        print(crossings)
    if args.out:
        written = [f"{args.out}.json", f"{args.out}.csv"]
        bench.write_json(written[0], rows, bench.metadata(sweep, device_name, argv))
        bench.write_csv(written[1], rows)
        if bench.plot(f"{args.out}.png", rows):
            written.append(f"{args.out}.png")
        print("wrote " + ", ".join(written))
    return 1 if any(r["time_ms"] is None for r in rows) else 0


def _info():
    """Lines describing the installation and the GPU environment."""
    import numpy
    import scipy

    from . import compiler

    lines = [f"cupy_bsparse {__version__}",
             f"python {platform.python_version()}, numpy {numpy.__version__}, "
             f"scipy {scipy.__version__}"]
    try:
        import cupy

        lines.append(f"cupy: {cupy.__version__}")
    except Exception as e:  # ImportError, or a broken CUDA install
        lines.append(f"cupy: not available ({type(e).__name__}: {e})")
    if bench.gpu_available():
        lines.append(f"GPU: {bench.gpu_name()}")
    else:
        lines.append("GPU: none found (the CPU reference runs instead)")
    try:
        from cupy_backends.cuda.libs import nvrtc

        major, minor = nvrtc.getVersion()
        lines.append(f"NVRTC: {major}.{minor} (kernels compile at run time)")
    except Exception as e:
        lines.append(f"NVRTC: not available ({type(e).__name__})")
    try:
        lines.append(f"kernel source fingerprint: {compiler.source_fingerprint()}")
        lines.append(f"kernel templates: {compiler.kernel_dir()}")
    except RuntimeError as e:
        lines.append(f"kernel templates: {e}")
    return lines


def main(argv=None):
    """Entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        print("\n".join(_info()))
        return 0
    if args.command == "overheads":
        _check_out(args.parser, args.out, ("",))
        return _overheads(args)
    _check_out(args.parser, args.out, (".json", ".csv", ".png"))
    return _bench(args.parser, args, argv)


def _overheads(args):
    from . import overheads

    if not bench.gpu_available():
        print("overheads: no usable CUDA GPU; these are GPU costs, nothing to measure on the CPU",
              file=sys.stderr)
        return 1
    r = overheads.run()
    print(overheads.report(r))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
