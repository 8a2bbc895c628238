"""Static issue floor of the unmet rows (CPU only; needs NVRTC and nvdisasm, from the
`nvidia-cuda-nvrtc` and `nvidia-cuda-nvdisasm` wheels).

For each row: the kernel and specialisation the dispatch picks, compiled for sm_90 and read
with `nvdisasm`; the innermost loop that holds the tensor-core instructions; its instructions
per MMA; so the warp instructions the row needs (its useful FLOPs over the FLOPs per MMA) and
the time to issue them at one instruction per scheduler and cycle (132 SMs x 4 schedulers,
1.755 GHz). floor / measured is then the issue-slot utilisation the row would need if it
executed nothing but its main loop (ncu's issue-active reads the same: docs/perf-notes.md v16).
Occupancy: CTAs per SM from registers, shared memory and threads. Measured times: the latest
bench of each row in docs/benchmarks.md (H200).

    python probes/sass_floor.py [--split pass]

--split: the float32 rows' specs as `F32_SPLIT` would give them (docs/perf-notes.md v18: x, and
for the wgrad, dy split ahead); a kernel without that mode keeps its default. The floor then
counts the main loop only: a split pass and a per-step slab split come on top.
"""
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from cupy_bsparse import _specs as s, compiler  # noqa: E402

SCHEDULERS, CLOCK = 132 * 4, 1.755e9
INS = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
LABEL = re.compile(r"^(\.L_x_\d+):")
# op, dtype, bs, M, measured ms (docs/benchmarks.md: v12 16-bit bs 8/16 and float32 bs 16,
# v10 16-bit bs 32/64 (mma.sync, as analysed here: the wgmma default since v16 has no HMMA
# loop), v16 float32 bs 8 (dsd_grouped_tma.cu), v11 the other float32 rows); C = K = 16384 at
# M = 64, 8192 at 4096
ROWS = [
    ("fprop", "fp16", 8, 64, 0.06994), ("bprop", "fp16", 8, 64, 0.07149),
    ("wgrad", "fp16", 8, 64, 0.1011), ("fprop", "fp16", 16, 64, 0.04501),
    ("bprop", "fp16", 16, 64, 0.04861), ("wgrad", "fp16", 16, 64, 0.05478),
    ("fprop", "fp16", 32, 64, 0.02934), ("bprop", "fp16", 32, 64, 0.02971),
    ("wgrad", "fp16", 32, 64, 0.0316), ("fprop", "fp16", 64, 64, 0.02389),
    ("bprop", "fp16", 64, 64, 0.02507), ("wgrad", "fp16", 64, 64, 0.02726),
    ("fprop", "fp16", 64, 4096, 0.1561), ("wgrad", "fp16", 64, 4096, 0.1812),
    ("fprop", "fp32", 8, 64, 0.1776), ("bprop", "fp32", 8, 64, 0.1871),
    ("wgrad", "fp32", 8, 64, 0.2343), ("fprop", "fp32", 16, 64, 0.1102),
    ("bprop", "fp32", 16, 64, 0.1099), ("fprop", "fp32", 32, 64, 0.09354),
    ("bprop", "fp32", 32, 64, 0.09542), ("fprop", "fp32", 64, 64, 0.09235),
    ("fprop", "fp32", 8, 4096, 2.350), ("wgrad", "fp32", 8, 4096, 3.154),
    ("wgrad", "fp32", 16, 4096, 1.968), ("wgrad", "fp32", 32, 4096, 1.293),
    ("wgrad", "fp32", 64, 4096, 1.466),
]
DTYPE_ID = {"fp16": 1, "bf16": 2, "fp32": 0}


def nvdisasm():
    found = shutil.which("nvdisasm")
    if found:
        return found
    import nvidia
    for base in nvidia.__path__:
        for path in glob.glob(os.path.join(base, "*", "bin", "nvdisasm")):
            return path
    sys.exit("nvdisasm not found: pip install nvidia-cuda-nvdisasm")


def main_loop(template, spec):
    """(instructions, MMA FLOPs, instruction mix) of the smallest loop holding MMAs (the FLOPs
    its MMAs compute by their shapes: m16n8k8 2048, m16n8k16 4096); ptxas usage."""
    image, log = compiler.compile_cubin(template, spec, compiler.target_arch(spec, "90"))
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(image)
        f.flush()
        text = subprocess.run([nvdisasm(), "-c", f.name], capture_output=True, text=True,
                              check=True).stdout
    ins, labels = [], {}
    for line in text.splitlines():
        m = LABEL.match(line.strip())
        if m:
            labels[m.group(1)] = len(ins)
        elif INS.search(line):
            ins.append(INS.search(line).group(2))

    def full(i):
        return re.sub(r"^@!?U?P\w+\s+", "", i).split()[0]

    def op(i):
        return full(i).split(".")[0]

    best = None
    for k, i in enumerate(ins):
        m = re.search(r"BRA\s+(?:\w+\s+)?`\((\.L_x_\d+)\)", i)
        if m and labels.get(m.group(1), k + 1) <= k:
            body = ins[labels[m.group(1)]:k + 1]
            mma = sum(op(b) in ("HMMA", "HGMMA") for b in body)
            if mma and (best is None or len(body) < len(best)):
                best = body
    usage = compiler.resource_usage(log)
    if best is None:
        return None, usage
    mix = collections.Counter(op(b) for b in best)
    if mix["HGMMA"]:
        raise NotImplementedError("wgmma loops: count their FLOPs by the instruction's shape")
    flops = sum({"1688": 2048, "16816": 4096}[full(b).split(".")[1]]
                for b in best if op(b) == "HMMA")
    return (len(best), flops, mix), usage


def kernel(op, did, bs, M, split=None):
    """(template, spec, launch shape) the dispatch picks (with ``split``: that F32_SPLIT mode's
    spec where the kernel has one; without, the launcher's default, ``f32_split``)."""
    if op == "wgrad":
        kind = s.sddmm_kernel(bs, did, M)
        name = {"column": "sddmm"}.get(kind, "sddmm_" + kind)
        args = (bs, did, M)
    else:
        kind = s.dsd_kernel(bs, did, M)
        name = {"column": "dsd"}.get(kind, "dsd_" + kind)
        args = (bs, did, M, op == "bprop")
    fn = getattr(s, name + "_spec")
    split = split or s.f32_split(name + ".cu", bs, M)
    spec = fn(*args, split=split) if split and name in SPLIT_KERNELS else fn(*args)
    return name + ".cu", spec, getattr(s, name + "_launch_shape")(spec)


#: The spec functions that take ``split`` (F32_SPLIT)
SPLIT_KERNELS = ("dsd_grouped_tma", "dsd_stream")


def main():
    split = sys.argv[sys.argv.index("--split") + 1] if "--split" in sys.argv else None
    print("| row | kernel | registers | threads, shared KB | CTAs / SM | instructions / MMA "
          "| issue floor ms | measured ms | floor / measured |")
    print("|---|---|---|---|---|---|---|---|---|")
    for op, dt, bs, M, measured in ROWS:
        C = 16384 if M <= 256 else 8192
        flops = 2 * M * 0.1 * C * C
        template, spec, shape = kernel(op, DTYPE_ID[dt], bs, M, split if dt == "fp32" else None)
        loop, usage = main_loop(template, spec)
        threads, smem = shape[0], shape[1]
        regs = usage["registers"]
        ctas = min(65536 // ((regs * 32 + 255) // 256 * 256 * (threads // 32)),
                   (228 * 1024) // (smem + 1024), 2048 // threads)
        row = f"| {op} {dt} bs {bs} M {M} | `{template}` | {regs} | {threads}, {smem / 1024:.0f} | {ctas} "
        if loop is None:
            print(row + "| no MMA loop | | | |")
            continue
        n, mma_flops, mix = loop
        # float32 runs three TF32 MMAs (3xTF32) per useful product
        useful = mma_flops / 3 if dt == "fp32" else mma_flops
        floor = flops / useful * n / SCHEDULERS / CLOCK * 1e3
        print(row + f"| {n / mix['HMMA']:.2f} | {floor:.4f} | {measured} | {floor / measured:.2f} |")


if __name__ == "__main__":
    main()
