"""Which kernel serves a product, and with which specialisation: the tuning tables.

For each template in ``kernels/``, a ``*_supported`` test, a ``*_spec`` function that maps block
size, element code (``dtype_id``) and M to the template parameters (a sorted tuple of (name,
value) pairs, the key ``compiler`` compiles and caches by), and a ``*_launch_shape`` that gives
threads per CTA and dynamic shared-memory bytes. ``dsd_kernel`` and ``sddmm_kernel`` choose the
template; ``all_specializations`` lists every specialisation the launchers can ask for. The
numbers behind each choice are in the docstrings and in ``docs/perf-notes.md``. Pure
functions of their arguments and of the module flags below; no CuPy.
"""
import collections
import itertools
import os

import numpy as np

from . import compiler

_DTYPE_IDS = {"float32": 0, "float16": 1, "bfloat16": 2}
_TF32 = 3
#: Element code of the tensor-core kernels' float32 path (3xTF32, kernels/tf32x3.cuh): the TMA
#: kernels (bs 16-64) and the grouped kernels (bs 8) serve float32 (code 0) with it; the other
#: templates run float32 on FFMA.
_F32X3 = 4


_dtype_ids = {}


def dtype_id(dtype, allow_tf32=False):
    """Kernel element code of ``dtype`` (see kernels/common.cuh); TypeError if unsupported."""
    key = (dtype, bool(allow_tf32))
    did = _dtype_ids.get(key)
    if did is None:
        name = np.dtype(dtype).name
        if name not in _DTYPE_IDS:
            raise TypeError(f"GPU kernels support float16, bfloat16 and float32, not {name}")
        did = _TF32 if name == "float32" and allow_tf32 else _DTYPE_IDS[name]
        _dtype_ids[key] = did
    return did


# ---------------------------------------------------------------------------------------------
# Tile tables. One entry per (block size, element code, M regime); the values are the template
# parameters of the kernels in kernels/.

def spec_with(spec, knobs):
    """Specialisation ``spec`` (a sorted tuple of items) with the #defines ``knobs`` (a dict) set."""
    return tuple(sorted({**dict(spec), **knobs}.items()))


def m_regime(M):
    return "tiny" if M <= 16 else ("small" if M <= 64 else "large")


def dsd_spec(bs, did, M, trans_w):
    """Specialisation of dsd.cu for block size, element code, row count and transposition."""
    regime = m_regime(M)
    p = {"BS": bs, "DTYPE_ID": did, "TRANS_W": int(bool(trans_w))}
    fp32 = did in (0, _TF32)
    kst = 32 if fp32 else 64              # reduction depth per pipeline stage
    p["G"] = max(1, kst // bs)
    if did == 0:
        bm, tm = {"tiny": (16, 2), "small": (64, 4), "large": (128, 8)}[regime]
        if regime == "small" and bs > 16:
            tm = 8                       # 8-row thread tiles (docs/perf-notes.md, v3)
        # Two stages: with three, a large-M bs 64 CTA needs 160 KB and runs alone on its SM
        # (v4 sweep: 1.72 -> 1.55 ms at bs 64, 6.81 -> 4.45 ms at bs 8, M = 4096)
        p.update(BM=bm, SIMT_TM=tm, SIMT_TN=4, STAGES=3 if regime == "tiny" else 2)
    else:
        # Stages: 2 measured faster than 3-4 (more CTAs fit per SM), except small-M bs 64
        # (docs/perf-notes.md, v2).
        if regime == "tiny":
            p.update(BM=16, WARPS_M=1, WARPS_N=max(1, min(4, bs // 16)), STAGES=4)
        elif regime == "small":
            # bs >= 32: two blocks' depth per stage, 2 stages (measured 5-8% faster, v3),
            # except TF32 bs 64, where a 141 KB stage pair left one CTA per SM (v4: 0.122 ->
            # 0.071 ms with one block per stage)
            if bs == 32 or (bs == 64 and did != _TF32):
                p["G"] *= 2
            p.update(BM=64, WARPS_M=2 if bs == 64 else 4, WARPS_N=2 if bs == 64 else 1,
                     STAGES=2)
        else:
            p.update(BM=128, WARPS_M=2 if bs == 64 else 4, WARPS_N=2 if bs == 64 else 1,
                     STAGES=2)
    return tuple(sorted(p.items()))


def _kernel_choice(value, name="CUPY_BSPARSE_DSD_KERNEL", kinds=("column", "grouped")):
    if value not in (None, "") + kinds:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, kinds))}, got {value!r}")
    return value or None


#: Which dsd kernel serves a call: None picks by block size, dtype and M (``dsd_kernel``);
#: "column" (dsd.cu), "grouped" (dsd_grouped.cu), "grouped_tma" (dsd_grouped_tma.cu) or
#: "stream" (dsd_stream.cu) forces one where it exists, for tests and benchmarks. Set from the
#: environment variable CUPY_BSPARSE_DSD_KERNEL at import.
DSD_KERNEL = _kernel_choice(os.environ.get("CUPY_BSPARSE_DSD_KERNEL"),
                            kinds=("column", "grouped", "grouped_tma", "stream"))
#: The same for sddmm: "column" (sddmm.cu, blocks of one block-row per CTA), "grouped"
#: (sddmm_grouped.cu), "grouped_tma" (sddmm_grouped_tma.cu), "stream" (sddmm_stream.cu) or
#: "tall" (sddmm_tall.cu); from CUPY_BSPARSE_SDDMM_KERNEL.
SDDMM_KERNEL = _kernel_choice(os.environ.get("CUPY_BSPARSE_SDDMM_KERNEL"), "CUPY_BSPARSE_SDDMM_KERNEL",
                              kinds=("column", "grouped", "grouped_tma", "stream", "tall"))


def grouped_supported(bs, did):
    """Whether dsd_grouped.cu has a specialisation (tensor cores, no register spills): 16-bit
    bs 8-32, TF32 bs 8 and 16, float32 (3xTF32) bs 8."""
    if did == 0:
        return bs == 8
    return bs <= 16 or (bs == 32 and did != _TF32)


#: Templates that need a newer GPU than the rest (sm_80): they copy with the TMA.
MIN_ARCH = {"dsd_stream.cu": 90, "dsd_grouped_tma.cu": 90, "sddmm_stream.cu": 90,
            "sddmm_tall.cu": 90, "sddmm_grouped_tma.cu": 90}


def dsd_stream_supported(bs, did, M=None):
    """Whether dsd_stream.cu has a specialisation: 16-bit bs 32 or 64, float32 (3xTF32) bs 16
    to 64."""
    return (did in (1, 2) and bs >= 32) or (did == 0 and bs >= 16)


def _mma_code(did):
    """DTYPE_ID of the tensor-core kernels for element code ``did``: float32 runs 3xTF32."""
    return _F32X3 if did == 0 else did


def tile_cols(bs, itemsize):
    """Columns of one TMA box row of a bs-wide tile: the whole tile row up to 128 bytes (the
    widest swizzle); float32 bs 64 tiles land as two 32-column boxes."""
    return min(bs, 128 // itemsize)


def dsd_grouped_tma_supported(bs, did):
    """Whether dsd_grouped_tma.cu has a specialisation: 16-bit tensor cores at bs 8 or 16,
    float32 (3xTF32) at bs 8."""
    return (did in (1, 2) and bs <= 16) or (did == 0 and bs == 8)


def dsd_kernel(bs, did, M):
    """"column", "grouped", "grouped_tma" or "stream": the dsd kernel that serves this block
    size, element code and M (before the launcher's fallback for GPUs older than sm_90)."""
    if dsd_stream_supported(bs, did, M) and DSD_KERNEL in (None, "stream"):
        # docs/perf-notes.md: TMA copies. v5, M = 64: bs 64 0.040 -> 0.028 ms, bs 32 0.052 ->
        # 0.032; v6, M = 4096: bs 64 0.274 -> 0.173 ms, bs 32 0.508 -> 0.286
        return "stream"
    if dsd_grouped_tma_supported(bs, did) and (
            DSD_KERNEL == "grouped_tma" or (DSD_KERNEL is None and M > 16)):
        # v7 (docs/perf-notes.md), fp16 bs 16: M = 64 0.068 -> 0.049 ms, M = 4096 0.89 ->
        # 0.43 ms; M <= 16 measured slower than dsd_grouped.cu. v12 (H200), bs 8 with
        # cp.async blocks for x @ W^T (WCP): M = 64 0.0763 / 0.0776 -> 0.0694 / 0.0723 ms
        # (x @ W / x @ W^T), M = 4096 0.986 / 0.986 -> 0.768 / 0.751 ms. v16 (H200), float32
        # bs 8 (3xTF32), probes/p13.py against dsd_grouped.cu: M = 64 0.2135 / 0.2166 -> 0.1770 /
        # 0.1869 ms, M = 4096 2.923 / 2.984 -> 2.349 / 2.447 (x @ W / x @ W^T).
        return "grouped_tma"
    if not grouped_supported(bs, did):
        return "column"
    if DSD_KERNEL in ("column", "grouped"):
        return DSD_KERNEL
    # v4 sweep (docs/perf-notes.md): grouped wins for 16-bit bs <= 16 and TF32 bs 8 at every M
    return "grouped" if bs == 8 or (bs == 16 and did != _TF32) else "column"


#: Whether dsd_stream.cu and sddmm_stream.cu take their wgmma consumers (sm_90a) where
#: dsd_stream_spec and sddmm_stream_spec have them, on devices of compute capability 9.0: on
#: unless CUPY_BSPARSE_WGMMA=0 at import (v16 bench, H200, M = 64 bs 64: fp16 0.0239 / 0.0252 ->
#: 0.0219 / 0.0229 ms x @ W / x @ W^T, bf16 0.0242 / 0.0242 -> 0.0218 / 0.0228; wgrad, probe
#: p11: fp16 0.0272 -> 0.0231; docs/perf-notes.md v13, v16).
USE_WGMMA = _kernel_choice(os.environ.get("CUPY_BSPARSE_WGMMA"), "CUPY_BSPARSE_WGMMA",
                           kinds=("0", "1")) != "0"
#: Where dsd_stream.cu runs float32 at 16 < M <= 64 on wgmma consumers (3xTF32 on wgmma .tf32,
#: sm_90a, where USE_WGMMA asks for wgmma; ``f32_wgmma_on``): None (the default) bs 32, "1" bs 16
#: and 32, "0" none; from CUPY_BSPARSE_F32_WGMMA at import. v24's p22 (H100, M = 64, C = K =
#: 16384, ms, best mma.sync plan -> wgmma with PERSIST; random / Barabasi-Albert): bs 32 x @ W
#: 0.0944 -> 0.0855 / 0.0900 -> 0.0828, x @ W^T 0.0944 -> 0.0754 / 0.0915 -> 0.0731; bs 16
#: 1.02-1.2x slower (x @ W 0.1055 -> 0.1260), so it keeps mma.sync (docs/perf-notes.md v24).
F32_WGMMA = _kernel_choice(os.environ.get("CUPY_BSPARSE_F32_WGMMA"), "CUPY_BSPARSE_F32_WGMMA",
                           kinds=("0", "1"))


def f32_wgmma_on(bs):
    """Whether float32 at block size ``bs`` takes dsd_stream.cu's wgmma consumers at
    16 < M <= 64 where wgmma is asked for (``F32_WGMMA``'s rule)."""
    return bs == 32 if F32_WGMMA is None else (F32_WGMMA == "1" and bs in (16, 32))
#: Where the float32 (3xTF32) kernels of x @ W (dsd_grouped_tma.cu, dsd_stream.cu) split x into
#: its hi and lo TF32 parts, forced: None (the default) takes ``f32_split``'s measured choice;
#: "off" splits in registers, every fragment once per stored block that uses it; "pass" (XLO:
#: all of x once, by split_tf32.cu, before the product). The weight gradient's kernels split in
#: registers whatever it says. From CUPY_BSPARSE_F32_SPLIT at import (docs/perf-notes.md v18,
#: v21).
F32_SPLIT = _kernel_choice(os.environ.get("CUPY_BSPARSE_F32_SPLIT"), "CUPY_BSPARSE_F32_SPLIT",
                           kinds=("off", "pass"))
#: float32 (3xTF32) fragments split in registers without split_tf32's clamp, each CTA's sums
#: computed again with it where any is NaN (tf32x3.cuh TF32_CLAMP; sddmm_grouped.cu's pairs,
#: TF32_REDO; sddmm_tall.cu's mma.sync consumers too): results bit for bit the clamped
#: kernel's, about 20% fewer instructions in the weight gradients' main loops (sm_90 SASS).
#: Measured (v52, H100, C = K = 8192, M = 4096, ms): random bs 8 3.12 -> 2.62-2.65, bs 16
#: 1.50-1.61 -> 1.35, bs 32 1.190 -> 1.161; Barabasi-Albert bs 8 3.41-3.45 -> 2.93, bs 16
#: 1.47-1.53 -> 1.29-1.30; M = 64 (C = K = 16384) bs 8 0.235 -> 0.208-0.210. None (the default)
#: or "1" on, "0" off. From CUPY_BSPARSE_TF32_REDO (docs/perf-notes.md v52).
TF32_REDO = _kernel_choice(os.environ.get("CUPY_BSPARSE_TF32_REDO"), "CUPY_BSPARSE_TF32_REDO",
                           kinds=("0", "1"))
#: sddmm_grouped.cu's float32 bs 8 units paired two ways (TPAIRS: two blocks that share a column,
#: or two that share an x column block, the tile transposed; ``_work_lists.two_way_units``).
#: Measured (H100, C = K = 8192, float32 bs 8 wgrad, ms): v53's p56 with the two-pass pairing,
#: random M = 4096 2.346-2.347 -> 2.146-2.181, Barabasi-Albert 2.739-2.782 -> 2.600-2.604;
#: v54's p57 / p58 with the walk (fewer units: warp rounds random -12.6%, Barabasi-Albert
#: -16.4%): random M = 4096 2.347 -> 2.104-2.122, Barabasi-Albert 2.745-2.803 -> 2.516-2.554,
#: random M = 1024 0.599-0.609 -> 0.539-0.544, M = 16384 9.32-9.49 -> 8.35-8.38; small world
#: bit for bit the default (no pairs to make). Since v54 the units come from
#: ``_work_lists._forest_pairs`` (the walk's unit count at every size, 0.25-0.3 us a block on
#: the host; untimed on the GPU). The default since v54 (the whole GPU suite passed with it,
#: on the walk's units); "0" turns it off. From CUPY_BSPARSE_TWO_WAY_PAIRS (docs/perf-notes.md v54).
TWO_WAY_PAIRS = _kernel_choice(os.environ.get("CUPY_BSPARSE_TWO_WAY_PAIRS"),
                               "CUPY_BSPARSE_TWO_WAY_PAIRS", kinds=("0", "1"))
#: sddmm_grouped.cu's (and sddmm_grouped_tma.cu's) last two waves of items launched longest
#: first (``_work_lists.tail_longest_first``; a wave: the CTAs resident at once). Items go in
#: group order, which keeps a group's dy slab shared in L2, so a long item can land last and
#: run alone. A model of the launch (v53, CPU) gave busy SMs 0.928 -> 0.957 on random and
#: 0.866 -> 0.978 on Barabasi-Albert. Measured (v54, H100, p57-p59, M = 4096, C = K = 8192,
#: wgrad ms): float32 bs 8 (sddmm_grouped.cu) random 2.347 -> 2.266, with TPAIRS 2.10-2.12 ->
#: 2.03, Barabasi-Albert 2.75-2.80 -> 2.60-2.65 (TPAIRS 2.52-2.55 -> 2.42-2.44); 16-bit bs 16
#: (sddmm_grouped_tma.cu) Barabasi-Albert 0.464-0.471 -> 0.423-0.428, random within noise; but
#: 16-bit bs 8 on sddmm_grouped_tma.cu random 0.615-0.618 -> 0.621-0.624 (+0.9%), Barabasi-
#: Albert unchanged. So None (the default) orders the tail everywhere but sddmm_grouped_tma.cu
#: at bs 8 (``grouped_tail_on``); "1" everywhere, "0" nowhere. From
#: CUPY_BSPARSE_SDDMM_GROUPED_TAIL.
SDDMM_GROUPED_TAIL = _kernel_choice(os.environ.get("CUPY_BSPARSE_SDDMM_GROUPED_TAIL"),
                                    "CUPY_BSPARSE_SDDMM_GROUPED_TAIL", kinds=("0", "1"))


def _on_unless_zero(arg, flag):
    """A spec function's switch argument (``redo``, ``two_way``): as given, or for None the
    module flag's (``TF32_REDO``, ``TWO_WAY_PAIRS``, read at the call): on unless "0"."""
    return flag != "0" if arg is None else arg


def grouped_tail_on(kernel, bs):
    """Whether a grouped sddmm launch (``kernel`` "grouped" or "grouped_tma", block size ``bs``)
    orders its last two waves of items longest first: ``SDDMM_GROUPED_TAIL`` "1" / "0", or
    (None, the default) everywhere but sddmm_grouped_tma.cu at bs 8 (v54, p59: +0.9% there)."""
    if SDDMM_GROUPED_TAIL is not None:
        return SDDMM_GROUPED_TAIL == "1"
    return not (kernel == "grouped_tma" and bs == 8)


def f32_split(template, bs, M):
    """The float32 split a launch of ``template`` (a kernel file name) takes at block size
    ``bs`` and ``M`` rows: None but for dsd_grouped_tma.cu and dsd_stream.cu; there
    ``F32_SPLIT`` where forced, else "pass" where v21's p17 measured it faster (H100):
    dsd_grouped_tma.cu at bs 8 (x @ W at M = 64 0.176 -> 0.147 ms, M = 4096 2.31 -> 2.00; x @
    W^T alike) and dsd_stream.cu at bs 64 with 16 < M <= 64 (0.0947 -> 0.0908; x @ W^T 0.0867
    -> 0.0852). None elsewhere: the stream kernel at bs 16 read 1.4x slower with it, bs 32 the
    same (and sddmm_grouped.cu's split pairs, since removed, 1.1-1.7x slower)."""
    if template not in ("dsd_grouped_tma.cu", "dsd_stream.cu"):
        return None
    if F32_SPLIT is not None:
        return None if F32_SPLIT == "off" else F32_SPLIT
    if template == "dsd_grouped_tma.cu" and bs == 8:
        return "pass"
    if template == "dsd_stream.cu" and bs == 64 and m_regime(M) == "small":
        return "pass"
    return None


#: Where dsd_stream.cu up to M = 64 runs one wave of persistent CTAs over a cut of the entries
#: into equal runs (PERSIST 1, ``_work_lists.cta_cut``) rather than one CTA a column chunk:
#: None (the default: float32, but for bs 32 x @ W and bs 16 x @ W^T; ``persist_default``),
#: "1" for every dtype, "0" for none. From CUPY_BSPARSE_PERSIST at import. v24's p21 (H100,
#: M = 64, C = K = 16384, ms, one CTA a column chunk -> PERSIST; random / Barabasi-Albert):
#: float32 bs 64 x @ W 0.0892 -> 0.0758 / 0.0850 -> 0.0739, x @ W^T 0.0844 -> 0.0761 / 0.0810
#: -> 0.0742; bs 16 x @ W 0.1097 -> 0.1051 / 0.1043 -> 0.0993; bs 32 x @ W^T 0.0946 -> 0.0934 /
#: 0.0910 -> 0.0896; but bs 32 x @ W 0.0932 -> 0.0974 / 0.0893 -> 0.0941 and bs 16 x @ W^T
#: 0.1100 -> 0.1247 / 0.1038 -> 0.1191, which keep the chunks (v23's A/B had run the chunks
#: with the loop that bloated them, docs/perf-notes.md v24); 16-bit bs 32 and 64 1.1-1.2x
#: slower (0.0261 -> 0.0321 at bs 64), so they keep one CTA a column chunk.
STREAM_PERSIST = _kernel_choice(os.environ.get("CUPY_BSPARSE_PERSIST"), "CUPY_BSPARSE_PERSIST",
                                kinds=("0", "1"))


#: Above M = 64, 16-bit at R 1: dsd_stream.cu as one launch of the resident CTAs over an item
#: queue (QUEUE 1): the (row tile, whole column) items in row-tile-major order, taken in turn
#: from a counter, the ring running on across a CTA's items (docs/perf-notes.md v33). None (the
#: default): as the spec says (STREAM_TALL_SETS' third set is on the queue); "1" / "0" for every
#: such spec, from CUPY_BSPARSE_STREAM_QUEUE at import. It replaced v31's persistent launches of
#: G row tiles (CUPY_BSPARSE_PERSIST_TILES; v32: 1.3-1.8x slower, perf-notes v32).
STREAM_QUEUE = _kernel_choice(os.environ.get("CUPY_BSPARSE_STREAM_QUEUE"),
                              "CUPY_BSPARSE_STREAM_QUEUE", kinds=("0", "1"))
#: How an item of that queue walks its column's entries (``_work_lists.walk_entries``):
#: "ascending", by x block; "hashed", by a scrambled key of the x block, one relabelling for
#: every column; "hubs", the x blocks most columns hold first (in powers of two), then hashed.
#: None (the default): by the layout (``walk_by_share``). v47 measured (fp16 bs 64, M = 4096,
#: x @ W ms, ascending / hashed / hubs): small world 0.1300 / 0.1195 / 0.1202, random 0.1282
#: all three, Barabasi-Albert 0.1207 / 0.1229 / 0.1220; bf16 and x @ W^T alike; bs 32 within
#: 0.3% on all three layouts (docs/perf-notes.md v48). From CUPY_BSPARSE_QUEUE_WALK at import.
QUEUE_WALKS = ("ascending", "hashed", "hubs")
QUEUE_WALK = _kernel_choice(os.environ.get("CUPY_BSPARSE_QUEUE_WALK"),
                            "CUPY_BSPARSE_QUEUE_WALK", kinds=QUEUE_WALKS)
#: The block sizes whose queue takes its walk by the layout (v47: bs 32 gained nothing).
WALK_BY_LAYOUT_BS = (64,)
#: ``_work_lists.queue_sharing``'s cap, and the gain in it over "ascending" that "hubs" needs
#: to be taken (v48's CPU sweep, seeds 0-4, d 0.02-0.3, 64-256 block-columns: small world
#: +0.7 to +3.4 above d = 0.02; random and Barabasi-Albert -0.15 to +0.33).
WALK_SHARE_CAP = 8
WALK_GAIN = 0.5


def walk_by_share(bs, share):
    """The queue's walk for block size ``bs`` where ``QUEUE_WALK`` is None: "hubs" at
    ``WALK_BY_LAYOUT_BS`` where ``share(walk)`` (the layout's modelled sharing,
    ``_work_lists.queue_sharing``) is at least ``WALK_GAIN`` higher for "hubs" than for
    "ascending", else "ascending"; ``share`` is called only at those block sizes. A set
    ``QUEUE_WALK`` is returned as it is."""
    if QUEUE_WALK is not None:
        return QUEUE_WALK
    if bs in WALK_BY_LAYOUT_BS and share("hubs") >= share("ascending") + WALK_GAIN:
        return "hubs"
    return "ascending"


def stream_queue(bs, code, M, r=1):
    """Whether dsd_stream.cu takes the item queue (QUEUE 1) for block size ``bs``, element code
    ``code``, M and R ``r``: 16-bit at R 1 above M = 64 where ``STREAM_QUEUE`` is "1"."""
    return code in (1, 2) and m_regime(M) == "large" and r == 1 and STREAM_QUEUE == "1"


def persist_default(bs, code, trans_w, f32_wgmma=False):
    """Whether dsd_stream.cu up to M = 64 takes PERSIST by default (``STREAM_PERSIST`` unset):
    float32 (3xTF32 code) at bs 64, bs 32 x @ W^T and bs 16 x @ W on the mma.sync consumers
    (v24's p21, above), and always on the wgmma ones (``f32_wgmma``; v24's p22: bs 32 x @ W
    0.1036 -> 0.0855 ms, x @ W^T 0.0876 -> 0.0754)."""
    return code == _F32X3 and (f32_wgmma or not ((bs == 32 and not trans_w)
                                                 or (bs == 16 and trans_w)))


#: Output block-columns one dsd_stream.cu CTA owns above M = 64 for 16-bit (its R, a group
#: whose block-rows share one x tile a step; ``stream_group``): None (the default rule), or "1",
#: "2", "4" for every 16-bit block size; from CUPY_BSPARSE_STREAM_R at import.
STREAM_R = _kernel_choice(os.environ.get("CUPY_BSPARSE_STREAM_R"), "CUPY_BSPARSE_STREAM_R",
                          kinds=("1", "2", "4"))
#: (bs, R) -> the tile and ring of dsd_stream.cu's R > 1 consumers: every warp takes WM = BM /
#: WARPS_M rows of all R columns (R 4: 128 accumulators a thread, R 2: 64; one CTA an SM by
#: registers either way: 168 and 124 of them; bounds for two R 2 CTAs spill, docs/perf-notes.md
#: v27).
_STREAM_GROUP_SHAPES = {(32, 2): {"BM": 256, "WARPS_M": 8, "STAGES": 4},
                        (32, 4): {"BM": 256, "WARPS_M": 8, "STAGES": 6},
                        (64, 2): {"BM": 128, "WARPS_M": 8, "STAGES": 3},
                        (64, 4): {"BM": 128, "WARPS_M": 8, "STAGES": 3}}

#: dsd_stream.cu's 512-row tiles for 16-bit bs 32 above M = 64 (``stream_tall``; docs/perf-notes.md
#: v28, v29): x's tile as two 256-row TMA boxes (XB 2), eight consumer warps, at two CTAs an SM
#: by the launch bounds (MINB 2, 3 stages) or at one (4 stages). v29 (H100, p26, fp16 random,
#: fprop ms, 256-row tiles -> first / second set): M = 1024 0.0798 -> 0.0817 / 0.0801, 2048
#: 0.1485 -> 0.1496 / 0.1483, 4096 0.2868 -> 0.2836 / 0.2834, 8192 0.5623 -> 0.5522 / 0.5549.
#: v33 (H100, p33, fp16 random M = 4096, x @ W / x @ W^T ms): the third set, one CTA an SM with
#: a 6-stage ring on the item queue (QUEUE, one launch, the ring filled once a CTA), 0.2842 /
#: 0.2816 -> 0.2771 / 0.2766; its ring without the queue 0.2829 / 0.2818, the queue on the first
#: set 0.2842 / 0.2844. v38 (probes/p46.py): the queue's set stores y evict_first (Y_HINT 0),
#: 0.2486 / 0.2480 -> 0.2467 / 0.2465.
STREAM_TALL_SETS = ({"BM": 512, "WARPS_M": 8, "XB": 2, "STAGES": 3, "MINB": 2},
                      {"BM": 512, "WARPS_M": 8, "XB": 2, "STAGES": 4},
                      {"BM": 512, "WARPS_M": 8, "XB": 2, "STAGES": 6, "QUEUE": 1, "Y_HINT": 0})
#: Which of STREAM_TALL_SETS 16-bit bs 32 takes at R 1 above M = 64: None (the default rule,
#: ``stream_tall``), "0" for none, "1" / "2" / "3" for that set at every such M; from
#: CUPY_BSPARSE_STREAM_TALL at import.
STREAM_TALL = _kernel_choice(os.environ.get("CUPY_BSPARSE_STREAM_TALL"),
                             "CUPY_BSPARSE_STREAM_TALL", kinds=("0", "1", "2", "3"))
#: Unset STREAM_TALL: the knob set (1-3; 0: none) taken from STREAM_TALL_M rows up (v29: the
#: first, 1-2% faster from M = 4096, none below, where it ties or loses; v33: the third, against
#: 256-row tiles below M = 4096, fp16 random x @ W ms: M = 1024 0.0811 -> 0.0799, 1536 0.1151 ->
#: 0.1116, 2048 0.1488 -> 0.1446, 3072 0.2185 -> 0.2105; against the first from M = 4096).
STREAM_TALL_DEFAULT = 3
STREAM_TALL_M = 1024


#: Unset STREAM_TALL, a set on the item queue falls back to this set (1) on a layout whose
#: longest output block-column is more than its blocks over the CTAs a wave (``queue_fits``):
#: whole columns are the queue's items, so such a column outlasts the last row tile's share and
#: sets the tail (v33, p33 sets, fp16 M = 4096: Barabasi-Albert, longest column 94 blocks
#: against 6318 / 132 = 48, 0.2809 -> 0.2843 ms on the queue; random, 40 against 50, 0.2864 ->
#: 0.2779).
STREAM_TALL_QUEUE_FALLBACK = 1
#: ... from this many rows up; below it, 256-row tiles (v29: the first set ties or loses there).
STREAM_TALL_FALLBACK_M = 4096


def stream_tall_fallback(M):
    """The set (0: 256-row tiles) a layout the queue does not fit (``queue_fits``) takes at M
    rows: STREAM_TALL_QUEUE_FALLBACK from STREAM_TALL_FALLBACK_M rows, else 0."""
    return STREAM_TALL_QUEUE_FALLBACK if M >= STREAM_TALL_FALLBACK_M else 0


def queue_fits(longest, blocks, ctas):
    """Whether the item queue suits a layout whose longest output block-column has ``longest``
    blocks of ``blocks``, on ``ctas`` CTAs a wave: no column longer than a CTA's share of one
    row tile's steps."""
    return longest * ctas <= blocks


def stream_tall(bs, code, M, r=1):
    """Which of STREAM_TALL_SETS (1-3; 0: none) dsd_stream.cu takes for block size ``bs``,
    element code ``code``, M and R ``r``: 16-bit bs 32 at R 1 above M = 64, as ``STREAM_TALL``
    says, or where unset STREAM_TALL_DEFAULT from STREAM_TALL_M rows up."""
    if bs != 32 or code not in (1, 2) or m_regime(M) != "large" or r != 1:
        return 0
    if STREAM_TALL is not None:
        return int(STREAM_TALL)
    return STREAM_TALL_DEFAULT if M >= STREAM_TALL_M else 0


#: 16-bit bs 64 above STREAM_WGQ_M rows on the wgmma consumers (sm_90a, where USE_WGMMA asks
#: for them): one launch on the item queue (QUEUE) of 512- or 256-row tiles (``stream_wgq``),
#: a warpgroup for every 128 rows, each stage released as soon as its own batch completed
#: (WG_EAGER). v35 (H100, probes/p36.py, fp16 random, C = K = 8192, x @ W / x @ W^T ms, the
#: mma.sync 128-row default -> this): M = 4096 0.1716 / 0.1717 -> 0.1390 / 0.1392 (bf16 0.1710
#: / 0.1716 -> 0.1394 / 0.1395), 8192 0.3290 / 0.3487 -> 0.2731 / 0.2648, 2048 0.0922 / 0.0930
#: -> 0.0775 / 0.0772, 1024 0.0531 / 0.0533 -> 0.0497 / 0.0507; Barabasi-Albert 4096 0.1625 ->
#: 0.1520, small world 0.1648 -> 0.1372. 256-row tiles: M = 768 0.0428 -> 0.0361 (512-row
#: 0.0526), 512 0.0352 -> 0.0313 (512-row 0.0284), 256 0.0188 -> 0.0192; 512-row tiles at M =
#: 65 / 128 / 256: 0.0165 / 0.0156 / 0.0188 -> 0.0368 / 0.0285 / 0.0304, so none up to 256;
#: M = 300 / 384 / 448: 0.0373 / 0.0339 / 0.0307 -> 0.0315 / 0.0328 / 0.0326 at 256 rows, 0.0369 /
#: 0.0338 / 0.0309 at 512, so 256-row tiles up to STREAM_WGQ_256_M. v36 (probes/p41.py): the
#: 512-row set takes W's blocks evict_normal (W_HINT 2), a tie within 0.5% at M = 1024-8192
#: (never slower); x evict_normal or evict_first is 5-40% slower, so x stays evict_last. v37
#: (probes/p43.py, v36's measurement): the 512-row set hands out its last two row tiles' items
#: interleaved (ILV 2): fp16 M = 4096 0.1381-0.1385 -> 0.1370-0.1375 ms, bf16 -0.6%, M = 2048
#: -2.5%, 8192 -0.3%, small world +0.3%. v38 (probes/p46.py): both sets store y's tiles with an
#: evict_first L2 policy (Y_HINT 0), so y's 67 MB stop pushing W and the live x tiles out of L2:
#: fp16 M = 4096 0.1388 / 0.1383 -> 0.1322 / 0.1326, bf16 0.1385 / 0.1387 -> 0.1317 / 0.1321,
#: small world 0.1370 -> 0.1279, M = 8192 0.2660 -> 0.2554 (W evict_last with it: a tie). v41
#: (next.sh v41b): a CTA takes its next item at its current item's third step from the end, not
#: at its start (LATE 3), so the item goes to the CTA free first: fp16 x @ W random M = 384 /
#: 1024 / 2048 / 4096 / 8192 0.0330 / 0.0438 / 0.0728 / 0.1312 / 0.2505 -> 0.0302 / 0.0395 /
#: 0.0688 / 0.1265 (LATE 2) / 0.2433, Barabasi-Albert 0.1296 -> 0.1209 (LATE 2), M = 4095
#: C 8192 K 4096 0.0727 -> 0.0696; small world 0.1275 -> 0.1281 (even items: nothing to
#: rebalance).
STREAM_WGQ_SETS = {512: {"BM": 512, "XB": 2, "WARPS_M": 16, "WARPS_N": 1, "STAGES": 3,
                         "WGMMA": 1, "QUEUE": 1, "WG_EAGER": 1, "W_HINT": 2, "ILV": 2, "Y_HINT": 0,
                         "LATE": 3},
                   256: {"BM": 256, "WARPS_M": 8, "WARPS_N": 1, "STAGES": 5,
                         "WGMMA": 1, "QUEUE": 1, "WG_EAGER": 1, "Y_HINT": 0, "LATE": 3}}
#: QLIST (dsd_stream.cu's queue as a host-ordered list, opt-in; docs/perf-notes.md v38): a spec's
#: "QLIST": n hands out the long columns' items (over 2x the mean) n row tiles early, so a hub
#: column of a Barabasi-Albert layout does not end the launch; the list interleaves its last
#: QLIST_ILV row tiles' other items as ILV does (the kernel's ILV is off with it).
QLIST_ILV = 2
#: The queue's knobs QLIST excludes (dsd_stream.cu: an #error with any of them set).
QLIST_EXCLUDES = ("ILV",)
#: The layout rule for QLIST: 16-bit bs 64 on STREAM_WGQ_SETS' 512-row set takes "QLIST":
#: QLIST_AHEAD (0: never) on a layout with an output block-column of more than QLIST_FACTOR x
#: the mean blocks (``_work_lists.has_long_column``, the list's own test of a long column).
#: v39 (H100, the sweep of probes/next.sh v39b, M = 4096, C = K = 8192, x @ W / x @ W^T ms):
#: Barabasi-Albert fp16 0.1441-0.1458 / 0.1438-0.1451 -> QLIST 3 0.1372 / 0.1392, QLIST 4
#: 0.1354 / 0.1378; bf16 0.1427-0.1432 / 0.1425-0.1434 -> QLIST 4 0.1357 / 0.1363; random
#: (no column over 2x the mean) 0.1328-0.1329 / 0.1336-0.1338 -> 0.1329 / 0.1328, a tie. v40:
#: the GPU suite passed with 4, the default since. The same v40 machine (fp16 / bf16
#: Barabasi-Albert x @ W ms): 4 0.1330-0.1344 / 0.1320-0.1330, 6 0.1299-0.1307 / 0.1299, 8
#: 0.1277 / 0.1278-0.1280, 16 0.1270 (bf16): more is faster up to every long item first (n >=
#: the row tiles). v41: the GPU suite passed with 8 (3991 passed, 1159 skipped), the default
#: since; the same call (fp16 / bf16 Barabasi-Albert M = 4096, x @ W / x @ W^T ms): 8 0.1292 /
#: 0.1292, 0.1290 / 0.1284; 4 0.1347 / 0.1355, 0.1365 / 0.1359; 16 0.1294 / 0.1284, 0.1287 /
#: 0.1289 (a tie: 8 is every long item first up to M = 4096); fp16 M = 8192 8 0.2639 / 0.2644,
#: 4 0.2713 / 0.2721, 16 0.2642 / 0.2630 (docs/perf-notes.md v41).
QLIST_AHEAD = 8
QLIST_FACTOR = 2.0


def qlist_ahead(wgq, has_long):
    """QLIST's row tiles ahead for a queue set ``wgq`` (STREAM_WGQ_SETS' row tile, 0: none) on
    a layout with (``has_long``) or without a long column: QLIST_AHEAD on the 512-row set with
    one, else 0."""
    return QLIST_AHEAD if wgq == 512 and has_long else 0
STREAM_WGQ_M = 256
STREAM_WGQ_256_M = 384
#: Which row tile of STREAM_WGQ_SETS 16-bit bs 64 takes above M = 64 on the wgmma consumers:
#: None (the default rule, ``stream_wgq``), "0" for none (the mma.sync 128-row tiles), "256" /
#: "512" at every such M; from CUPY_BSPARSE_STREAM_WGQ at import.
STREAM_WGQ = _kernel_choice(os.environ.get("CUPY_BSPARSE_STREAM_WGQ"), "CUPY_BSPARSE_STREAM_WGQ",
                            kinds=("0", "256", "512"))


def stream_wgq(bs, code, M, r=1, wgmma=False):
    """The row tile of STREAM_WGQ_SETS (512 or 256; 0: none) dsd_stream.cu takes for block
    size ``bs``, element code ``code``, M and R ``r`` with wgmma consumers available
    (``wgmma``): 16-bit bs 64 at R 1 above M = 64, as ``STREAM_WGQ`` says, or where unset,
    above STREAM_WGQ_M rows: 256 up to STREAM_WGQ_256_M, then the tile that pads M the least
    (512 on a tie). Off where ``STREAM_QUEUE`` is "0"."""
    if (bs != 64 or code not in (1, 2) or m_regime(M) != "large" or r != 1 or not wgmma
            or STREAM_QUEUE == "0"):
        return 0
    if STREAM_WGQ is not None:
        return int(STREAM_WGQ)
    if M <= STREAM_WGQ_M:
        return 0
    if M <= STREAM_WGQ_256_M:
        return 256
    return 512 if -(-M // 512) * 512 <= -(-M // 256) * 256 else 256


#: Unset ``STREAM_R``: a 16-bit layout above M = 64, at a block size of GROUP_BLOCK_SIZES, takes
#: R = 4 where 4-column groups leave at most this share of its x tile copies
#: (``_work_lists.group_step_share``); None: never. v30 (H100, fp16 bs 32, M = 4096, R 4 over
#: R 1's time): small world 0.77-0.81 at shares 0.35-0.39 (d 0.1-0.4), 0.88 at 0.43 (d 0.05),
#: 0.96 at 0.50 (d 0.02); Barabasi-Albert 1.36 at 0.79, random 1.37 at 0.86 (d 0.1).
GROUP_SHARE_MAX = 0.5
#: Block sizes the layout rule applies to: at bs 64 R 4 lost even on small world (v30: share
#: 0.42, 0.1651 -> 0.2236 ms; R 2 0.2121).
GROUP_BLOCK_SIZES = (32,)
#: The order of a column group's steps (R > 1; ``_work_lists.column_group_table``): one of
#: ``QUEUE_WALKS``, "hubs" by default. R 4 serves layouts whose neighbouring columns share
#: their x blocks (small world), where ascending puts neighbouring groups a few blocks apart at
#: every step. v48 (H100, small world fp16 bs 32, C = K = 8192, x @ W ms, ascending -> hubs):
#: M = 4096 d 0.1 0.2178 / 0.2152 -> 0.2071 / 0.2071 (bf16 0.2140 / 0.2143 -> 0.2067 / 0.2059),
#: d 0.2 0.3838 / 0.3836 -> 0.3625 / 0.3565, M = 1024 0.0601 / 0.0600 -> 0.0575 / 0.0571;
#: hashed alike; x @ W^T alike. From CUPY_BSPARSE_GROUP_WALK at import.
GROUP_WALK = _kernel_choice(os.environ.get("CUPY_BSPARSE_GROUP_WALK"), "CUPY_BSPARSE_GROUP_WALK",
                            kinds=QUEUE_WALKS) or "hubs"


def stream_group(bs, code, M, share=None):
    """R of dsd_stream.cu (output block-columns a CTA) for block size ``bs``, its element code
    ``code`` and M: 1 but for 16-bit above M = 64, where ``STREAM_R`` says, or where unset 4
    if ``bs`` is one of GROUP_BLOCK_SIZES and ``share`` (the layout's ``group_step_share`` at
    R = 4) is at most GROUP_SHARE_MAX."""
    if code not in (1, 2) or m_regime(M) != "large":
        return 1
    if STREAM_R is not None:
        return int(STREAM_R)
    return 4 if (bs in GROUP_BLOCK_SIZES and GROUP_SHARE_MAX is not None and share is not None
                 and share <= GROUP_SHARE_MAX) else 1


def stream_group_by_layout(bs, did, M):
    """Whether ``stream_group`` depends on the layout for this block size, element code and M
    (so the launcher counts the layout's group steps first)."""
    return (dsd_stream_supported(bs, did, M) and did in (1, 2) and m_regime(M) == "large"
            and STREAM_R is None and GROUP_SHARE_MAX is not None and bs in GROUP_BLOCK_SIZES)


def dsd_stream_spec(bs, did, M, trans_w, wgmma=False, split=None, persist=None, f32_wgmma=None,
                    r=None, tall=None, queue=None, wgq=None, qlist=0):
    """Specialisation of dsd_stream.cu (16-bit element codes; float32 as 3xTF32): BM rows per
    CTA, four consumer warps, ring stages. ``wgmma``: take wgmma consumers (sm_90a) where they
    have a tuned specialisation, 16-bit bs 64 at 16 < M <= 64 (the launcher asks for them on
    compute capability 9.0 when USE_WGMMA is set).

    Up to M = 64: as many stages as fit in 64 KB (at most 8); L2 hints evict_last for x's
    tiles (re-read by every column), evict_first for the stored blocks (read once).
    Above (v6 sweep at M = 4096, docs/perf-notes.md): bs 64 BM 128 and 3 stages (on wgmma
    above M = 256 the queue's sets, ``stream_wgq``), bs 32 BM 256 and 4 stages (2-3 CTAs per
    SM; from M = 1024 bs 32 takes 512-row tiles, ``stream_tall``);
    evict_last for both inputs (bs 32: 0.404 -> 0.300 ms;
    streaming stores of y instead changed nothing, so it is the inputs' own re-reads that the
    hint protects). float32 (3xTF32; v9 sweep, docs/perf-notes.md) above M = 64: bs 64 BM 64
    and 3 stages (M = 4096: 1.24 -> 1.11 ms against BM 128), bs 32 4 x 2 warps and 3 stages
    (1.25 -> 1.12 ms), bs 16 as 16-bit bs 32; up to M = 64: bs 32 2 x 2 warps (M = 64: 0.158
    -> 0.127 ms), bs 16 2 x 1 warps for x @ W (0.157 -> 0.147 ms; x @ W^T keeps 4 x 1); v10:
    float32 up to M = 64 takes 3 / 2 / 4 stages at bs 64 / 32 / 16 and its columns are cut
    into chunks (M = 64 fprop: 0.098 -> 0.093, 0.126 -> 0.097, 0.148 -> 0.117 ms); v11: KSUM
    16 (16-deep fresh tiles) for the cases it measured faster in. v13 (H200, ``wgmma``): 16-bit
    bs 64 at 16 < M <= 64 takes one consumer warpgroup of wgmma (WGMMA 1) and 5 stages
    (M = 64 bs 64: 0.0237 / 0.0243 -> 0.0219 / 0.0222 ms x @ W / x @ W^T; M = 33: 0.0240 /
    0.0254 -> 0.0216 / 0.0216); bs 32 measured within 3% and M <= 16 slower (BM 64 against 16),
    and at M = 4096 no BM (64-256), warpgroup count, stage count or persistent schedule beat
    the mma.sync kernel (docs/perf-notes.md v13).

    ``split`` (float32; the launcher passes ``f32_split``'s): "pass" takes x split ahead (XLO 1,
    a lo tile per stage), with as many stages as keep the CTAs per SM that shared memory
    allowed without it, at most 4 (at least 2 stages); where even 2 stages lose a CTA, the
    default spec.

    ``f32_wgmma`` (None: ``f32_wgmma_on``'s rule), with ``wgmma``: float32 bs 16 / 32 at
    16 < M <= 64 takes one consumer warpgroup of wgmma m64nBSk8 .tf32 (WGMMA 1; A from
    registers, W's block split into K-major hi and lo tiles in shared memory), 6 / 4 stages, x
    split in registers (no XLO), and PERSIST unless ``persist`` or STREAM_PERSIST says no.

    ``persist`` (None: ``STREAM_PERSIST``, or where unset ``persist_default``): up to M = 64,
    PERSIST 1 (one wave of CTAs, each walking a run of chunks; the launcher builds
    ``_work_lists.dsd_persist_plan``).

    ``r`` (None: ``stream_group``'s): 16-bit above M = 64, R output block-columns a CTA (2 or
    4; ``_STREAM_GROUP_SHAPES``; the launcher builds ``_work_lists.dsd_group_plan``).

    ``tall`` (None: ``stream_tall``'s): at R 1, that knob set of STREAM_TALL_SETS (1-3; 0:
    none), 512-row tiles (the third on the item queue, QUEUE 1).

    ``queue`` (None: ``stream_queue``'s): 16-bit at R 1 above M = 64, QUEUE 1 (one launch of
    the resident CTAs taking (row tile, column) items from a counter; the launcher builds
    ``_work_lists.dsd_queue_plan``).

    ``wgq`` (None: ``stream_wgq``'s, with ``wgmma``): 16-bit bs 64 at R 1 above M = 64, the
    STREAM_WGQ_SETS set of that row tile (wgmma consumers on the item queue; 0: none).

    ``qlist`` (the launcher's ``qlist_ahead`` by the layout): on a ``wgq`` set, QLIST that many
    row tiles ahead, the kernel's ILV off (the list interleaves)."""
    code = _mma_code(did)
    esz = _itemsize(code)
    p = {"BS": bs, "DTYPE_ID": code, "TRANS_W": int(bool(trans_w))}
    regime = m_regime(M)
    f32w = (code == _F32X3 and wgmma and regime == "small" and bs in (16, 32)
            and (f32_wgmma_on(bs) if f32_wgmma is None else f32_wgmma))
    if persist is None:
        persist = (persist_default(bs, code, trans_w, f32w) if STREAM_PERSIST is None
                   else STREAM_PERSIST == "1")
    if persist and regime != "large":
        p["PERSIST"] = 1
    if regime == "large":
        bm = 128 if bs == 64 else 256
        p.update(BM=bm, WARPS_M=bm // 64, WARPS_N=2 if bs == 64 else 1,
                 STAGES=3 if bs == 64 else 4, X_HINT=1, W_HINT=1)
        if esz == 4 and bs == 64:
            p.update(BM=64, WARPS_M=2, WARPS_N=2, STAGES=3)
        elif esz == 4 and bs == 32:
            p.update(WARPS_N=2, STAGES=3)
        r = stream_group(bs, code, M) if r is None else r
        if r > 1 and esz == 2:
            p.update(R=r, WARPS_N=1, **_STREAM_GROUP_SHAPES[(bs, r)])
        tall = stream_tall(bs, code, M, r) if tall is None else tall
        if tall and r == 1 and esz == 2:
            p.update(STREAM_TALL_SETS[tall - 1])
        queue = stream_queue(bs, code, M, r) if queue is None else queue
        if queue and r == 1 and esz == 2:
            p["QUEUE"] = 1
        wgq = stream_wgq(bs, code, M, r, wgmma) if wgq is None else wgq
        if wgq and r == 1 and esz == 2:
            p.update(STREAM_WGQ_SETS[wgq])
            if qlist:
                p.update(QLIST=int(qlist), ILV=0)
    else:
        bm = 16 if regime == "tiny" else 64
        stage = (bm + bs) * bs * esz
        wm = max(1, min(2, bm // 32)) if bs == 64 else min(4, bm // 16)
        p.update(BM=bm, WARPS_M=wm, WARPS_N=max(1, min(4 // wm, bs // 16)),
                 STAGES=max(2, min(8, 65536 // stage)), X_HINT=1, W_HINT=0)
        if esz == 4 and bm == 64:
            # v10 sweep (M = 64, with columns cut into chunks for about two waves of CTAs, see
            # _work_lists.chunk_blocks): the stage count that lets the most CTAs share an SM
            p.update(STAGES={64: 3, 32: 2, 16: 4}[bs])
            if bs == 32:
                p.update(WARPS_M=2, WARPS_N=2)
            elif bs == 16 and not trans_w:
                p.update(WARPS_M=2)
        elif esz == 2 and bm == 64 and wgmma and bs == 64:
            p.update(WARPS_M=4, WARPS_N=1, STAGES=5, WGMMA=1)
        if f32w:
            p.update(WARPS_M=4, WARPS_N=1, STAGES=6 if bs == 16 else 4, WGMMA=1)
    if esz == 4 and regime != "tiny" and not p.get("WGMMA") and (
            (bs == 64 and trans_w) or (bs == 16 and not trans_w)
            or (bs == 32 and not trans_w and regime == "small")):
        # v11 sweep: 16-deep fresh tiles where they measured faster (M = 64: bs 64 x @ W^T
        # 0.0934 -> 0.0845 ms, bs 32 x @ W 0.0977 -> 0.0936, bs 16 x @ W 0.1182 -> 0.1098;
        # M = 4096: bs 64 x @ W^T 1.108 -> 1.005, bs 16 x @ W 1.294 -> 1.118); slower elsewhere
        p["KSUM"] = 16
    if split == "pass" and code == _F32X3 and not p.get("WGMMA"):
        # CTAs an SM to keep: the default's by shared memory, at most 4 (registers allow 2-9)
        want = min(4, _ctas("dsd_stream.cu", p))
        q = dict(p, XLO=1)
        while q["STAGES"] > 2 and _ctas("dsd_stream.cu", q) < want:
            q["STAGES"] -= 1
        if _ctas("dsd_stream.cu", q) >= want:
            p = q                      # else (bs 32 above M = 64) the default: it keeps 2 CTAs
    return tuple(sorted(p.items()))


def _ctas_by_smem(smem):
    """CTAs an sm_90 SM holds by shared memory alone (228 KB, 1 KB reserved a CTA)."""
    return 228 * 1024 // (smem + 1024)


def smem_ctas(template, spec):
    """CTAs of ``template``'s specialisation ``spec`` an sm_90 SM holds by shared memory alone."""
    return _ctas_by_smem(launch_shape(template, spec)[1])


def _ctas(template, p):
    """``_ctas_by_smem`` of spec dict ``p`` of ``template`` (its launch shape's bytes)."""
    return _ctas_by_smem(launch_shape(template, tuple(p.items()))[1])


def dsd_stream_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes, rows per CTA) of a dsd_stream spec."""
    p = dict(spec)
    bs, bm, esz = p["BS"], p["BM"], _itemsize(p["DTYPE_ID"])
    atom = 8 * tile_cols(bs, esz) * esz   # tiles start on the swizzle pattern's alignment
    smem = atom + p["STAGES"] * ((bm * (1 + p.get("XLO", 0)) + p.get("R", 1) * bs) * bs * esz + 16)
    if p.get("QUEUE"):
        smem += 16 * (p["STAGES"] + 1)     # the stages' items, after split_combine's flag
    if esz == 4 and p.get("WGMMA"):
        smem += 4 * bs * bs * esz          # two split sets of W's block, hi and lo
    return (p["WARPS_M"] * p["WARPS_N"] + 1) * 32, smem, bm


def dsd_grouped_spec(bs, did, M, trans_w):
    """Specialisation of dsd_grouped.cu (tensor-core element codes only).

    A CTA owns R block-columns and BM rows; each warp accumulates at most 64 floats per thread.
    A step loads KW columns of x and at most CAP stored blocks. Defaults: 256 output columns
    at M <= 64, 128 above; 128-byte slab rows; about 12 KB of blocks per step; 3 stages. The
    per-case changes are the v4 sweep's (docs/perf-notes.md).
    """
    regime = m_regime(M)
    did = _mma_code(did)
    esz = _itemsize(did)
    p = {"BS": bs, "DTYPE_ID": did, "TRANS_W": int(bool(trans_w)), "STAGES": 3, "PF": 1,
         "KW": max(128 // esz, bs)}
    if regime == "large":
        cols, bm = 128, 128
        wm = 4 if bs == 64 else 2
    else:
        cols, bm = 256, (16 if regime == "tiny" else 64)
        wm = 2 if (bs == 64 and bm == 64) else 1
    blk = bs * bs * esz
    p["CAP"] = max(2, pow2_down(max(1, 12288 // blk)))
    fp16 = did in (1, 2)
    if fp16 and bs == 16 and regime == "large":
        cols, bm, wm = 256, 64, 1                       # 0.90 ms against 1.00 (M = 4096)
    if fp16 and bs == 8:
        p.update(KW=128, CAP=128)                       # M = 64: 0.079 ms against 0.087
        if regime == "large":
            p["STAGES"] = 2                             # M = 4096: 1.10 ms against 1.18
    if fp16 and bs == 16 and regime != "large":
        p.update(KW=128, CAP=32, STAGES=2)              # M = 64: 0.071 ms against 0.078
    if did == _F32X3:
        # float32 bs 8 as 3xTF32 (v11 sweep): 256-byte slab rows, 64 blocks a step, 2 stages;
        # above M = 64 groups of 256 columns and 64-row tiles, one warp per 32 columns
        # (fprop M = 64: 0.248 -> 0.218 ms; M = 4096: 3.65 -> 2.92 ms)
        p.update(KW=64, CAP=64, STAGES=2)
        if regime == "large":
            cols, bm, wm = 256, 64, 1
    r = max(1, cols // bs)
    wn = max(1, min(8 // wm, r))
    # two resident CTAs per SM cap registers at 128: TF32 bs 16 spills there
    p.update(BM=bm, R=r, WARPS_M=wm, WARPS_N=wn, MIN_CTAS=1 if (did == _TF32 and bs == 16) else 2)
    return tuple(sorted(p.items()))


#: The producer warps at which CI compiles, and the GPU test runs, dsd_grouped_tma.cu's opt-in
#: split of a step's copies (``dsd_grouped_tma_spec``'s ``pw``; probes/p19.py times it).
PW_PROBE = 2
#: The same for the consumers' unsigned slab columns (``ucol``; v23's p20 timed it).
UCOL_PROBE = 1

#: Stored blocks per bulk copy from which 16-bit bs 8 on dsd_grouped_tma.cu copies its blocks
#: with bulk copies (WCP 0) rather than cp.async (WCP 1) at 16 < M <= 64, by the layout's plan
#: (``copy_mode_by_layout``). v17's p16 (H200, x @ W^T at M = 64): cp.async won on a random
#: layout (1.93 blocks a copy: 0.071 against 0.077 ms), bulk copies on a small-world one (2.82:
#: 0.138 against 0.156); x @ W's runs (3.2-6.8) keep bulk copies (docs/perf-notes.md v17, v19).
BULK_FROM = 2.4


def copy_mode_by_layout(bs, did, M):
    """Whether dsd_grouped_tma.cu's block copies (WCP) follow the layout's blocks per bulk copy
    (``BULK_FROM``) instead of the spec's rule: 16-bit bs 8 at 16 < M <= 64, where both were
    measured."""
    return bs == 8 and _mma_code(did) in (1, 2) and m_regime(M) == "small"


#: Consumer warps of dsd_grouped_tma.cu's float32 bs 8 specs above M = 64, each 4 output
#: block-columns (R = 4 x this). v58 (H100, probes/p63.py warps, C = K = 8192, M = 4096, x @ W /
#: x @ W^T ms): 8 -> 7 random 1.94-1.98 / 2.05-2.09 -> 1.78 / 1.91, Barabasi-Albert 2.21-2.22 /
#: 2.28-2.29 -> 2.00 / 2.16, small world 2.19-2.25 / 2.26-2.30 -> 1.98 / 2.05 (6: 1.99-2.14 /
#: 2.11-2.26). Two CTAs of 8 warps give a thread 128 registers (4 warps a register partition;
#: 9 warps put 5 on some, 96 registers), and the four 3xTF32 chains of a block overlap; 14%
#: more groups (steps) are the price. At M = 64 (C = K = 16384) 7 ties x @ W (0.1454 against
#: 0.1455) and loses x @ W^T (0.1628 against 0.1533), so 8 warps stay there.
F32_GROUP_WARPS = 7


def dsd_grouped_tma_spec(bs, did, M, trans_w, split=None, wcp=None, pw=None, ucol=None):
    """Specialisation of dsd_grouped_tma.cu (16-bit element codes at bs 8 or 16; float32 at
    bs 8 as 3xTF32, with the 16-bit slab and block bytes: v16's p13 variants measured none
    faster).

    v7 sweep (docs/perf-notes.md), bs 16: groups of 256 output columns and 16 KB of blocks per
    step, so two CTAs fit per SM (x @ W^T at M = 4096: 0.86 -> 0.65 ms against one CTA with
    512 columns); slabs of 128 x columns and 3 stages up to M = 64, 256 columns and 2 stages
    above (M = 4096: 0.58 -> 0.45 ms). L2 hints as dsd_stream.cu's: x evict_last; the stored
    blocks evict_first up to M = 64 (read once), evict_last above (re-read per row tile).
    v12 (H200): bs 8 x @ W^T copies its blocks with cp.async (WCP 1): its runs of adjacent
    blocks are mostly one 128-byte block, one bulk copy each (M = 64: 0.105 -> 0.072 ms,
    M = 4096: 1.24 -> 0.75 ms); x @ W keeps bulk copies of its longer runs (0.069 against
    0.072 ms at M = 64), as does bs 16 (x @ W^T at M = 64: 0.049 against 0.062 ms). That is
    the rule here; at 16 < M <= 64 the launcher overrides it for 16-bit bs 8 by the layout
    (``wcp``, ``copy_mode_by_layout``, v19).

    ``split`` (None or "pass"; float32 only, other dtypes ignore it; the launcher passes
    ``f32_split``'s): "pass" is XLO 1, x split ahead by split_tf32.cu and its lo plane copied
    into a lo plane per stage: 2 stages, and slabs halved (KW) until two CTAs fit on an SM
    (113 KB each), so the steps are the shipped spec's where they can be (bitwise the same
    sums).

    ``wcp`` (0 or 1) overrides the block copy mode (the launcher's ``copy_mode_by_layout``);
    it changes no step shape, so the plan is the same.

    float32 bs 8 above M = 64 takes F32_GROUP_WARPS' 7 consumer warps (R 28): two CTAs of 8
    warps put 4 on each of an SM's register partitions, so 128 registers a thread where 9
    warps allowed 96, and a block's four 3xTF32 chains overlap (v58).

    ``pw`` (1 or 2; None: 2 for 16-bit bs 8, else 1): producer warps, each
    copying an equal share of a step's stored blocks, the first also the x boxes and the codes
    (PW; v21's timelines found the 16-bit step bound by its one producer warp's copy issue).
    v22's p20 (H100, fp16): bs 8 random M = 64 x @ W 0.0717 -> 0.0664 ms, x @ W^T 0.0728 ->
    0.0669, M = 4096 x @ W 0.758 -> 0.722; small world 0.083 -> 0.081 / 0.080;
    Barabasi-Albert 0.079 -> 0.081 / 0.078 (within 2.5%); bs 16 (p19, H200) within 1%. With
    UCOL (v23, below) it wins on Barabasi-Albert too. It changes neither the plan nor the sums.

    ``ucol`` (0 or 1; None: 1 for 16-bit): the consumers take an entry's slab column unsigned
    (UCOL), which drops the signed-division fix-ups from each block's address chain (SASS,
    16-bit bs 8 x @ W: 16 instructions from the code's shuffle to the A fragments' ldmatrix,
    9 with UCOL; v21 found the bs 8 consumers 1.26 of a 1.77 us step). The sums are bitwise
    the same. v23's p20 (H100, fp16, M = 64, ms, x @ W / x @ W^T): bs 8 with PW 2, random
    0.0648 / 0.0666 -> 0.0614 / 0.0641, Barabasi-Albert 0.0794 / 0.0784 -> 0.0730 / 0.0719
    (against 0.0725 / 0.0718 and 0.0788 / 0.0769 with one producer warp and no UCOL); bs 16
    within 1%.
    """
    regime = m_regime(M)
    large = regime == "large"
    code = _mma_code(did)
    esz = _itemsize(code)
    # slab widths and block capacity in bytes as 16-bit's (float32 bs 8: 64 / 128 x columns,
    # 64 blocks a step)
    p = {"BS": bs, "DTYPE_ID": code, "TRANS_W": int(bool(trans_w)),
         "BM": 16 if regime == "tiny" else 64, "R": 256 // bs,
         "KW": (256 if large else 128) * 2 // esz, "CAP": 16384 // (bs * bs * esz),
         "STAGES": 2 if large else 3, "WARPS_M": 1, "WARPS_N": 8,
         "X_HINT": 1, "W_HINT": 1 if large else 0, "PF": 1, "MIN_CTAS": 2}
    if (bs == 8 and trans_w) if wcp is None else wcp:
        p["WCP"] = 1
    if code == _F32X3 and large:       # the same block-columns a warp, fewer warps
        p.update(R=p["R"] // p["WARPS_N"] * F32_GROUP_WARPS, WARPS_N=F32_GROUP_WARPS)
    if pw is None:
        pw = 2 if bs == 8 and code != _F32X3 else 1
    if ucol is None:
        ucol = int(code != _F32X3)
    if pw not in (1, 2):
        raise ValueError(f"pw must be 1 or 2 producer warps, got {pw!r}")
    if pw > 1:
        p["PW"] = 2
    if ucol not in (0, 1):
        raise ValueError(f"ucol must be 0 or 1, got {ucol!r}")
    if ucol:
        p["UCOL"] = 1
    if split not in (None, "pass"):
        raise ValueError(f"split must be None or 'pass', got {split!r}")
    if split == "pass" and code == _F32X3:
        p.update(XLO=1, STAGES=2)
        while _ctas("dsd_grouped_tma.cu", p) < 2 and p["KW"] > 32:
            p["KW"] //= 2
    return tuple(sorted(p.items()))


def dsd_grouped_tma_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes, rows per CTA) of a dsd_grouped_tma spec."""
    p = dict(spec)
    bs, bm, cap, esz = p["BS"], p["BM"], p["CAP"], _itemsize(p["DTYPE_ID"])
    a_stage = (p["KW"] // (128 // esz)) * bm * 128
    stage = a_stage + cap * bs * bs * esz + (cap + 4) * 4
    lo_stages = p["STAGES"] if p.get("XLO", 0) else 0
    smem = 1024 + p["STAGES"] * (stage + 16) + 16 + lo_stages * a_stage
    return (p["WARPS_M"] * p["WARPS_N"] + p.get("PW", 1)) * 32, smem, bm


def dsd_grouped_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes, rows per CTA) of a dsd_grouped spec."""
    p = dict(spec)
    bs, did, kw, bm = p["BS"], p["DTYPE_ID"], p["KW"], p["BM"]
    if did in (_TF32, _F32X3):
        a_ld = kw + 4
        b_ld = bs + 4 if p["TRANS_W"] else (8 if bs == 8 else bs + 8)
    else:
        a_ld, b_ld = _pad16(kw), _pad16(bs)
    esz = _itemsize(did)
    stage = (bm * a_ld + p["CAP"] * bs * b_ld) * esz + (p["CAP"] + 4) * 4
    return p["WARPS_M"] * p["WARPS_N"] * 32, p["STAGES"] * stage, bm


def sddmm_spec(bs, did, M):
    """Specialisation of sddmm.cu for block size, element code and reduction length M.

    Two stages everywhere except where the v3 sweep (docs/perf-notes.md) measured better.
    """
    small = M <= 512
    nb = {64: 2, 32: 4, 16: 8, 8: 16}[bs]
    p = {"BS": bs, "DTYPE_ID": did, "STAGES": 2}
    if did == 0:
        if bs == 32 or (bs == 16 and small):
            nb //= 2
        # small M, bs <= 16: 4-column thread tiles (twice the threads); bs 8 also half the
        # blocks per CTA (v3b sweep: 0.61 -> 0.36 ms at bs 8, 0.24 -> 0.18 ms at bs 16).
        # v4 sweep: 4-column tiles everywhere but large-M bs 8 (small M bs 32/64 0.176 ->
        # 0.134 ms; large M bs 16 2.73 -> 2.49, bs 32 2.11 -> 1.83, bs 64 1.83 -> 1.70).
        tn = 8 if bs == 8 and not small else 4
        if small and bs == 8:
            nb //= 2
        p.update(MK=32, SIMT_TM=8 if bs == 64 else 4, SIMT_TN=tn)
    else:
        p["MK"] = 32 if did == _TF32 else 64
        if small and bs == 64:
            nb //= 2
        elif not small and bs == 16:
            nb *= 2
        elif not small and bs == 8 and did != _TF32:
            p.update(MK=32, STAGES=3)
        if small and bs == 64 and did != _TF32:
            p.update(WARPS_M=1, WARPS_N=4)   # v3b sweep: 0.055 -> 0.049 ms
        elif bs >= 32:
            p.update(WARPS_M=2, WARPS_N=2)
        else:
            p.update(WARPS_M=1, WARPS_N=4)
    p["NB"] = nb
    return tuple(sorted(p.items()))


def _pad16(n):
    """Row length in elements of a 16-bit shared-memory tile of n columns (PAD16 in the
    kernels: a 16-byte pad on rows of 32 bytes or more)."""
    return n + 8 if n * 2 >= 32 else n


def _itemsize(did):
    return 4 if did in (0, _TF32, _F32X3) else 2


def dsd_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes, rows per CTA) of a dsd specialisation."""
    p = dict(spec)
    bs, g, bm, st, did = p["BS"], p["G"], p["BM"], p["STAGES"], p["DTYPE_ID"]
    kst = g * bs
    if did in (0, _TF32):
        a_ld = kst + 4
        b_ld = kst + 4 if p["TRANS_W"] else (8 if bs == 8 else bs + 8)
    else:
        a_ld = _pad16(kst)
        b_ld = _pad16(kst) if p["TRANS_W"] else _pad16(bs)
    b_rows = bs if p["TRANS_W"] else kst
    smem = st * (bm * a_ld + b_rows * b_ld) * _itemsize(did)
    if did == 0:
        nt = (bs // p["SIMT_TN"]) * (bm // p["SIMT_TM"])
    else:
        nt = p["WARPS_M"] * p["WARPS_N"] * 32
    return nt, smem, bm


def sddmm_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes, blocks per CTA) of a sddmm specialisation."""
    p = dict(spec)
    bs, nb, mk, st, did = p["BS"], p["NB"], p["MK"], p["STAGES"], p["DTYPE_ID"]
    rb = max(bs, 16) if did != 0 else bs
    nc = nb * bs
    smem = st * mk * ((rb + 8) + (nc + 8)) * _itemsize(did)
    if did == 0:
        nt = (nc // p["SIMT_TN"]) * (rb // p["SIMT_TM"])
    else:
        nt = p["WARPS_M"] * p["WARPS_N"] * 32
    return nt, smem, nb


def sddmm_grouped_supported(bs, did):
    """Whether sddmm_grouped.cu has a specialisation (tensor cores, bs 8 or 16; float32 as
    3xTF32)."""
    return bs <= 16


def sddmm_kernel(bs, did, M=None):
    """"stream" (sddmm_stream.cu), "tall" (sddmm_tall.cu), "grouped_tma" (sddmm_grouped_tma.cu),
    "grouped" (sddmm_grouped.cu) or "column" (sddmm.cu) for this block size, element code and
    reduction length M (None: any, the fallback on GPUs older than sm_90); ``SDDMM_KERNEL``
    forces one where it exists."""
    if M is not None and sddmm_stream_supported(bs, did, M) and (
            SDDMM_KERNEL == "stream" or (SDDMM_KERNEL is None and not (
                did == 0 and (bs == 16 or (bs == 32 and M > _tall_min_m(bs, did)))))):
        # float32 bs 16 never takes it: M = 64, 3xTF32 0.214 ms on the H200 against 0.177 for
        # FFMA (v9, docs/perf-notes.md) and 0.119 for sddmm_tall.cu (v12); float32 bs 32 only
        # up to M = 32 (v24, below)
        return "stream"
    if M is not None and sddmm_tall_supported(bs, did) and (
            SDDMM_KERNEL == "tall" or (SDDMM_KERNEL is None and M > _tall_min_m(bs, did))):
        return "tall"
    if M is not None and sddmm_grouped_tma_supported(bs, did) and (
            SDDMM_KERNEL == "grouped_tma" or (SDDMM_KERNEL is None and (
                (M > 16 and bs == 16) or (M > 512 and bs == 8 and did in (1, 2))))):
        # v8 (docs/perf-notes.md), fp16 bs 16 at M = 4096: 0.57 -> 0.36 ms; v12 (H200), from
        # M = 17 and with its own items up to M = 512: M = 33 / 64 / 128 / 512 0.061 / 0.063 /
        # 0.086 / 0.062 -> 0.056 / 0.054 / 0.074 / 0.057 ms (sddmm_grouped.cu up to M = 64
        # before; it stays faster at M <= 16: 0.045 against 0.047 at M = 16). v16 (H200,
        # probes/p15.py), bs 8 pairs: 16-bit at M = 4096 0.857 -> 0.561 ms; slower at M = 64
        # (0.100 -> 0.107) and for float32 (M = 64 / 4096: 0.234 / 3.18 -> 0.249 / 3.42), which
        # keep sddmm_grouped.cu
        return "grouped_tma"
    if not sddmm_grouped_supported(bs, did):
        return "column"
    if SDDMM_KERNEL in ("column", "grouped"):
        return SDDMM_KERNEL
    return "grouped"


def sddmm_grouped_tma_supported(bs, did):
    """Whether sddmm_grouped_tma.cu has a specialisation: 16-bit tensor cores at bs 16, and bs 8
    in pairs for 16-bit and float32 (3xTF32)."""
    return (did in (1, 2) and bs in (8, 16)) or (did == 0 and bs == 8)


def sddmm_grouped_tma_spec(bs, did, M=64):
    """Specialisation of sddmm_grouped_tma.cu (16-bit bs 16; bs 8 in pairs, 16-bit and float32
    as 3xTF32, with sddmm_grouped.cu's items: v16's p15 variants measured none faster).

    Above M = 512: the items of sddmm_grouped.cu's bs 16 specialisation (512 dy columns, 32 x
    column blocks, 128 blocks, 16 consumer warps), 48-row steps and 2 stages; L2 evict_last on
    both inputs, which other items re-read (v8 sweep, fp16 M = 4096: 0.360 ms; evict_normal
    0.503, 32-row steps 0.404, 16-row steps 0.765, 8 warps 0.489, groups of 256 columns 0.661).
    Up to M = 512 (v12 sweep, H200): 16 x column blocks and 64 blocks over 8 consumer warps,
    32-row steps and 2 stages, so two CTAs share an SM (M = 64: 0.062 -> 0.054 ms; 3 stages,
    one CTA per SM, 0.084; 256 dy columns 0.071; 1024 dy columns 0.083)."""
    p = _grouped_items(bs, did, M)     # above M = 512 the same items as that kernel's
    if not p["PAIRS"]:
        del p["PAIRS"]
    p.update(X_HINT=1, D_HINT=1)
    if M <= 512 and bs == 16:
        p.update(NCX=16, NBLK=64, NW=8, STAGES=2, MIN_CTAS=2)
    if bs == 8 and p["DTYPE_ID"] == _F32X3 and M > 512:
        p.update(MK=16, STAGES=3)        # 32-row steps spill at the 17 warps' register cap
    return tuple(sorted(p.items()))


def sddmm_grouped_tma_launch_shape(spec):
    """(threads, dynamic shared-memory bytes) of a sddmm_grouped_tma specialisation."""
    p = dict(spec)
    esz = _itemsize(p["DTYPE_ID"])
    stage = (p["R"] * p["BS"] * esz // 128) * p["MK"] * 128 + p["NCX"] * p["MK"] * p["BS"] * esz
    code_bytes = 16 if p.get("PAIRS") else 8
    return (p["NW"] + 1) * 32, 1024 + p["STAGES"] * (stage + 16) + p["NBLK"] * code_bytes


def sddmm_stream_supported(bs, did, M):
    """Whether sddmm_stream.cu has a specialisation for M <= 64: 16-bit bs 32/64, float32
    (3xTF32) bs 16 to 64."""
    return dsd_stream_supported(bs, did) and M <= 64


def sddmm_stream_spec(bs, did, M, wgmma=False):
    """Specialisation of sddmm_stream.cu (16-bit element codes; float32 as 3xTF32; M <= 64):
    BK >= M rows per tile, four consumer warps (one at bs 16), as many dy stages as fit in
    48 KB (at most 8). ``wgmma``: one consumer warpgroup of wgmma (sm_90a) for 16-bit bs 64 at
    16 < M (the launcher asks for it on compute capability 9.0 when USE_WGMMA is set).

    BK 64 (M 33-64): 3 stages, and two consumer warps at bs 32, so more CTAs fit per SM (v6
    sweep at M = 64: bs 32 0.0391 -> 0.0325 ms, bs 64 0.0287 -> 0.0270 ms). wgmma (v16 probe
    p11, H200, fp16 bs 64): M = 64 0.0272 -> 0.0231 ms, M = 33 0.0264 -> 0.0220; M = 16
    0.0203 -> 0.0202, so M <= 16 keeps mma.sync."""
    code = _mma_code(did)
    bk = 16 if M <= 16 else (32 if M <= 32 else 64)
    tile = bk * bs * _itemsize(code)
    wm = 2 if bs >= 32 else 1
    p = {"BS": bs, "DTYPE_ID": code, "BK": bk, "WARPS_M": wm, "WARPS_N": wm,
         "STAGES": max(2, min(8, 49152 // tile))}
    if bk == 64:
        p["STAGES"] = 3
        if bs == 32:
            p["WARPS_N"] = 1
    if wgmma and bs == 64 and _itemsize(code) == 2 and bk > 16:
        p.update(WARPS_M=4, WARPS_N=1, WGMMA=1)
    return tuple(sorted(p.items()))


def sddmm_stream_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes) of a sddmm_stream spec."""
    p = dict(spec)
    bs, esz = p["BS"], _itemsize(p["DTYPE_ID"])
    rb = tile_cols(bs, esz) * esz
    stage = 0 if esz == 4 else bs * rb   # 16-bit: two output staging tiles
    smem = 8 * rb + (1 + p["STAGES"]) * p["BK"] * bs * esz + 2 * stage + 16 * p["STAGES"] + 16
    return (p["WARPS_M"] * p["WARPS_N"] + 1) * 32, smem


def sddmm_tall_supported(bs, did):
    """Whether sddmm_tall.cu has a specialisation: 16-bit bs 32/64, float32 (3xTF32) bs 16 to
    64 (any M)."""
    return dsd_stream_supported(bs, did)


#: M above which sddmm_tall.cu serves wgrad unless SDDMM_KERNEL forces another kernel
#: (``_tall_min_m``: 16 for float32 bs 16, 32 for float32 bs 32).
SDDMM_TALL_MIN_M = 64


def _tall_min_m(bs, did):
    """M above which sddmm_tall.cu serves wgrad by default. float32 bs 16 (v12, H200, C = K =
    16384): sddmm_grouped.cu (3xTF32) up to M = 16 (M = 1 / 16: 0.067 / 0.071 ms against
    0.107 / 0.108 for FFMA sddmm.cu), sddmm_tall.cu above (M = 17 / 33 / 64: 0.074 / 0.096 /
    0.119 ms against 0.091 / 0.119 / 0.156 grouped and - / 0.178 / 0.176 FFMA). float32 bs 32
    (v24, H100, C = K = 16384, ms, sddmm_stream.cu -> sddmm_tall.cu): M = 1 / 16 / 17 / 24 / 32
    0.0440 / 0.0441 / 0.0648 / 0.0650 / 0.0655 -> 0.0678 / 0.0704 / 0.0700 / 0.0708 / 0.0756;
    M = 33 / 64 0.1103 / 0.1141 -> 0.0907 / 0.0951 (Barabasi-Albert 0.1112 -> 0.0919 at 64)."""
    if _mma_code(did) == _F32X3 and bs in (16, 32):
        return bs
    return SDDMM_TALL_MIN_M


def _factor_choice(value, name, default=None):
    """An environment variable's factor: ``default`` when unset or empty, None for "0" (off),
    else a number of at least 1 (a ValueError naming the variable otherwise)."""
    if not value:
        return default
    if value == "0":
        return None
    try:
        f = float(value)
    except ValueError:
        f = 0.0
    if not 1.0 <= f < float("inf"):
        raise ValueError(f"{name} must be 0 (off) or a number of at least 1, got {value!r}")
    return f


#: dsd_grouped_tma.cu where the groups fill a wave unsplit (large M, one item a group): where
#: the heaviest group outweighs the mean by more than this factor, the groups are cut into
#: items of about the mean weight (``_work_lists.balance_budget``; the splits summed as the
#: small-M ones), so hub columns (Barabasi-Albert) leave no tail. A CPU model
#: (perf-notes v50: CTAs dispatched in grid order, an item's time its steps' weight) puts
#: float32 bs 8 x @ W on Barabasi-Albert at M = 4096 1.14x a balanced plan's time, its
#: heaviest group 2.0x the mean, and predicts 2.377 -> about 2.16 ms at factor 1.25 (44 items
#: a row tile for 32 groups); random and small world layouts stay whole. dsd_grouped_tma.cu
#: only, and not where the partials would pass ``_work_lists.BALANCE_MAX_WORKSPACE``. Measured
#: (v51, H100, M = 4096, C = K = 8192, Barabasi-Albert, off -> 1.25): float32 bs 8 x @ W
#: 2.357-2.372 -> 2.216-2.229 ms, dy @ W^T 2.427-2.450 -> 2.280-2.301; fp16 / bf16 bs 8
#: 0.832-0.837 -> 0.731-0.732 and 0.783-0.816 -> 0.696-0.699; bs 16 1-2% faster; factors 1.05 /
#: 1.1 / 1.5 within 0.5% of 1.25; random's plan unchanged. The default is 1.25; None ("0"):
#: off. From CUPY_BSPARSE_GROUP_BALANCE at import.
GROUP_BALANCE_DEFAULT = 1.25
GROUP_BALANCE = _factor_choice(os.environ.get("CUPY_BSPARSE_GROUP_BALANCE"),
                               "CUPY_BSPARSE_GROUP_BALANCE", GROUP_BALANCE_DEFAULT)


def _rows_choice(value, name):
    """An environment variable's row count: None when unset or empty, else a positive multiple
    of 64 (a ValueError naming the variable otherwise)."""
    if not value:
        return None
    n = int(value) if value.isdigit() else 0
    if n <= 0 or n % 64:
        raise ValueError(f"{name} must be a positive multiple of 64 rows, got {value!r}")
    return n


#: Rows of M per chunk of float32 (3xTF32) wgrad on sddmm_tall.cu, the chunks after the first
#: accumulating (beta 1) into the float32 blocks (one launch, or a launch a chunk: see
#: SDDMM_MERGE_CHUNKS), forced; None (the default): the measured rule, ``sddmm_m_chunk``. At
#: M = 4096 every CTA streams its blocks' dy columns over all M rows, and the grid's many waves
#: start out of step, so dy (134 MB at C = 8192) is read from HBM about once per block (6.9 GB
#: at bs 16); chunks of fewer rows keep more of a chunk's x and dy in L2. From
#: CUPY_BSPARSE_SDDMM_M_CHUNK (docs/perf-notes.md v22, v23).
SDDMM_M_CHUNK = _rows_choice(os.environ.get("CUPY_BSPARSE_SDDMM_M_CHUNK"),
                             "CUPY_BSPARSE_SDDMM_M_CHUNK")
#: float32 wgrad's row chunks (``sddmm_m_chunk``) in one launch of sddmm_tall.cu (MCH: grid
#: (segments, chunks), chunk k adding into the blocks once chunk k - 1 of its segment stored,
#: by a flag a segment), so that the launches' tails go: None (the default) and "1"; "0": a
#: launch a chunk. A CPU model (perf-notes v50) predicted float32 bs 16 at M = 4096 3-7%
#: faster; measured (v51, H100, C = K = 8192, 1024-row chunks, ms): random 1.553-1.562 ->
#: 1.487-1.502, Barabasi-Albert 1.496-1.500 -> 1.434-1.438, small world 1.376-1.377 ->
#: 1.361-1.372; merged 512-row chunks no faster. From CUPY_BSPARSE_SDDMM_MERGE_CHUNKS.
SDDMM_MERGE_CHUNKS = _kernel_choice(os.environ.get("CUPY_BSPARSE_SDDMM_MERGE_CHUNKS"),
                                    "CUPY_BSPARSE_SDDMM_MERGE_CHUNKS", kinds=("0", "1"))
#: sddmm_m_chunk's rows a chunk by block size, where chunks measured faster (v23, H100, float32
#: wgrad at M = 4096, C = K = 8192, ms): bs 16 3.137 -> 1.769 / 1.665 / 1.616 in launches of
#: 256 / 512 / 1024 rows; bs 64 1.477 -> 2.378 / 1.874 / 1.623 (one launch stays).
SDDMM_M_CHUNK_BY_BS = {16: 1024}


def sddmm_m_chunk(kind, did, M, bs):
    """Rows of M per chunk of sddmm kernel ``kind`` for element code ``did`` and block size
    ``bs`` (``M`` when one chunk takes them all): float32 on sddmm_tall.cu only,
    ``SDDMM_M_CHUNK`` where set, else ``SDDMM_M_CHUNK_BY_BS``."""
    if kind != "tall" or _mma_code(did) != _F32X3:
        return M
    chunk = SDDMM_M_CHUNK if SDDMM_M_CHUNK is not None else SDDMM_M_CHUNK_BY_BS.get(bs, M)
    return min(M, chunk)


#: M above which 16-bit bs 32 wgrad on sddmm_tall.cu takes 2 ring stages, not 3
#: (``sddmm_tall_spec``; v25).
SDDMM_TALL_FEW_STAGES_M = 1024
#: Whether float32 bs 64 wgrad on sddmm_tall.cu takes its wgmma consumers (sm_90a, where
#: USE_WGMMA asks for wgmma; ``f32_tall_wgmma_on``): None (the default) yes, "0" no (mma.sync);
#: from CUPY_BSPARSE_F32_TALL_WGMMA at import. v25 (H100, M = 4096, C = K = 8192,
#: probes/p23.py): 1.480 -> 1.127 ms.
F32_TALL_WGMMA = _kernel_choice(os.environ.get("CUPY_BSPARSE_F32_TALL_WGMMA"),
                                "CUPY_BSPARSE_F32_TALL_WGMMA", kinds=("0",))


#: bs -> the segment sizes (NB) of 16-bit wgrad on sddmm_tall.cu: the default, and the one the
#: launcher takes where the default's segments leave their last wave under SDDMM_TALL_TAIL_MIN
#: full (``sddmm_tall_segment_size``).
SDDMM_TALL_NB_CHOICES = {64: (4, 2)}
#: v32 (H100, fp16 bs 64, C = K = 8192, probes/p29.py bs64sweep, 18 cases over three layouts,
#: M = 1024-8192, d = 0.05-0.2): NB 4 is one CTA an SM (121 KB), NB 2 three, with 20% more L2
#: bytes a block. NB 2 was faster in the 8 cases where NB 4's last wave held 8-14% of the 132
#: SMs (small world and Barabasi-Albert at d = 0.1, 3.13-3.14 waves: M = 4096 0.1669 / 0.1746
#: -> 0.1506 / 0.1540 ms; Barabasi-Albert d = 0.2, 6.08 waves: 0.3041 -> 0.2993) and slower in
#: 9 of the 10 where it held 42-92% (random d = 0.1, 3.42 waves: 0.1840 -> 0.1931; the miss,
#: M = 1024, 0.0580 -> 0.0560). Neither NB 2's own wave count nor a list-schedule model with a
#: fixed time a segment (fitted to the 36 times) told the cases apart. Under one wave NB 2 is
#: taken too (p29 auto: C = K = 2048, small world d = 0.1 / random d = 0.05, M = 4096, 38 / 25
#: NB 4 segments: 0.0447 / 0.0443 -> 0.0326 / 0.0323 ms; C = K = 1024 0.0397 -> 0.0317).
SDDMM_TALL_TAIL_MIN = 0.25
#: Under one wave a segment size is taken where its segments fill this much of the resident
#: CTAs (v42, H100, fp16 M = 4096, probes/next.sh v42: small world d 0.05, 129 NB 8 segments
#: for 132 CTAs, 0.0663 ms against NB 4's 0.0957; random C = K = 4096, 75 NB 8 / 129 NB 4:
#: NB 8 / 4 / 2 0.0543 / 0.0397 / 0.0462; C = K = 2048, 32 / 38 / 71: 0.0474 / 0.0308 / 0.0243).
SDDMM_TALL_ONE_WAVE_MIN = 0.75


def sddmm_tall_nb_choices(bs, did, wgmma=False, wgmma16=None, M=None):
    """The segment sizes sddmm_tall.cu's wgrad chooses from for this block size, element code
    and M, the default first: on 16-bit bs 64's wgmma consumers (``wgmma``, and ``wgmma16``,
    None: ``TALL_WGMMA16``'s) TALL_WGMMA16_NB_CHOICES, or NB 2 alone up to M =
    TALL_WGMMA16_NB2_M; else ``SDDMM_TALL_NB_CHOICES``; float32 has none (an empty tuple)."""
    if _mma_code(did) == _F32X3:
        return ()
    if bs == 64 and wgmma and (TALL_WGMMA16 != "0" if wgmma16 is None else wgmma16):
        if M is not None and M <= TALL_WGMMA16_NB2_M:
            return TALL_WGMMA16_NB_CHOICES[-1:]
        return TALL_WGMMA16_NB_CHOICES
    return SDDMM_TALL_NB_CHOICES.get(bs, ())


def sddmm_tall_segment_size(choices, count):
    """The segment size of sddmm_tall.cu's wgrad from ``choices`` (default first), where
    ``count(nb)`` gives (segments, CTAs resident at once on the device) for segments of ``nb``:
    the first choice whose segments fill the device, a last wave empty or at least
    SDDMM_TALL_TAIL_MIN of ``resident`` full (else most SMs idle for about a whole CTA), or
    SDDMM_TALL_ONE_WAVE_MIN under one wave (else shorter segments on more SMs finish sooner),
    else the last choice; None without choices."""
    for nb in choices[:-1]:
        segments, resident = count(nb)
        tail = segments % max(resident, 1)
        if not tail or tail >= (SDDMM_TALL_TAIL_MIN if segments > resident
                                else SDDMM_TALL_ONE_WAVE_MIN) * resident:
            return nb
    return choices[-1] if choices else None


#: sddmm_grouped.cu's float32 bs 8 pairs with their fragment loads from shared-window
#: addresses, one base register a row set and constant offsets, the units' codes as byte offsets
#: from the table (SOFF); v52's SASS, main loop instructions a tensor-core instruction at M =
#: 4096 / 64: 15.02 / 16.24 -> 12.78 / 14.56. SOFF is the default since v53 (p53); the variants
#: are the code before it (SOFF 0), (v53, probes/p56.py) SOFF's units paired two ways or not
#: (TPAIRS 1 / 0, ``TWO_WAY_PAIRS``' two settings: random d 0.1 at M = 4096 60,710
#: -> 54,557 units); CI compiles them.
SDDMM_GROUPED_F32_VARIANTS = [{"SOFF": 0, "TPAIRS": 0}, {"TPAIRS": 1}, {"TPAIRS": 0}]


#: Whether 16-bit bs 64 wgrad on sddmm_tall.cu takes wgmma consumers (a warpgroup a block,
#: m64n64k16 from the swizzled tiles, each stage released when its own batch completed,
#: WG_EAGER; sm_90a, where USE_WGMMA asks for wgmma): None (the default) / "1" yes, "0" no
#: (mma.sync, as before v36); from CUPY_BSPARSE_TALL_WGMMA16 at import. v36 (H100, C = K = 8192,
#: d = 0.1, probes/p38.py and p40.py, fp16 random wgrad ms, mma.sync -> wgmma): M = 128 / 256 /
#: 512 / 1024 / 2048 / 4096 / 8192 0.0212 / 0.0256 / 0.0351 / 0.0547 / 0.0969 / 0.1750 /
#: 0.3330 -> 0.0172 / 0.0214 / 0.0308 / 0.0484 / 0.0838 / 0.1607 / 0.3169 (bf16 the same);
#: small world at M = 1024 / 4096 / 8192 0.0427 / 0.1454 / 0.2896 -> 0.0389-0.0398 / 0.1404 /
#: 0.2819-0.2908; Barabasi-Albert 0.0436 / 0.1512 / 0.3161 -> 0.0422-0.0433 / 0.1522 /
#: 0.3068-0.3079. Stages: TALL_WGMMA16_STAGES4_M. TALL_WGMMA16_VARIANTS are compiled in CI for
#: the probes; v41 adds BPW 2 (a warpgroup for two blocks: segments of 8 or 6 on one CTA, so an
#: SM sums eight blocks at once and dy, re-read from HBM once a wave of segments, 329 MB
#: against its 64 MB at M = 4096 by ncu, takes fewer waves).
TALL_WGMMA16 = _kernel_choice(os.environ.get("CUPY_BSPARSE_TALL_WGMMA16"),
                              "CUPY_BSPARSE_TALL_WGMMA16", kinds=("0", "1"))
#: (lo, hi): 16-bit bs 64 wgrad on the wgmma consumers takes 4 ring stages (160 KB) for
#: lo < M <= hi, 3 elsewhere (v36, probes/p40.py, fp16 random, ms, 3 -> 4 stages: M = 256 0.0214
#: -> 0.0285; 512 / 1024 / 2048 / 4096 0.0314 / 0.0499 / 0.0875 / 0.1629 -> 0.0308 / 0.0484 /
#: 0.0838 / 0.1607; 8192 0.3169 -> 0.3301, over the three layouts 0.3048 -> 0.3066 on average).
TALL_WGMMA16_STAGES4_M = (256, 4096)
#: v42 (H200, fp16 / bf16, C = K = 8192, d = 0.1, probes/next.sh v41d, wgrad ms, NB 4 -> NB 8
#: BPW 2 in 3 stages): random M = 2048 / 4096 / 8192 0.0748 / 0.1378 / 0.2872 -> 0.0689 /
#: 0.1264 / 0.2447, bf16 at 4096 0.1367 -> 0.1232; Barabasi-Albert 0.1316 -> 0.1194; small world
#: 0.1219 (NB 2 by the tail) -> 0.1127. So NB 8 is the default; NB 4 and 2 (a warpgroup a block,
#: the stages by TALL_WGMMA16_STAGES4_M) where its segments fill the device badly
#: (``sddmm_tall_segment_size``).
TALL_WGMMA16_NB_CHOICES = (8, 4, 2)
#: Up to this M (eight 64-row steps) the wgmma wgrad takes NB 2 alone: several CTAs an SM hide
#: the latency of a segment's few steps (H100, fp16, C = K = 8192, d 0.1, NB 8 / 4 / 2 ms; v42:
#: random M = 256 0.0225 / 0.0214 / 0.0187; v43, probes/next.sh v43 and v43b: random M = 384
#: 0.0263 / 0.0265 / 0.0251, 512 0.0302 / 0.0309 / 0.0298; small world 384 0.0252 / 0.0241 /
#: 0.0222, 512 0.0285 / 0.0276 / 0.0256; Barabasi-Albert 512 0.0281 / 0.0286 / 0.0266). Above
#: it NB 8 wins or ties but for small world (random 768 0.0367 / 0.0396 / 0.0392, 1024 0.0454 /
#: 0.0483 / 0.0484; Barabasi-Albert 768 0.0348 / 0.0365 / 0.0351, 1024 0.0433 / 0.0440 /
#: 0.0430; small world 768 0.0343 / 0.0356 / 0.0328, 1024 0.0424 / 0.0427 / 0.0407, 2048
#: 0.0678 / 0.0739 / 0.0715).
TALL_WGMMA16_NB2_M = 512
#: 16-bit sddmm_tall.cu's segments cut near-equal (``_work_lists.segment_table``'s ``even``):
#: a block-row of 13 blocks in segments of 7 and 6, not 8 and 5, so largest-first order runs
#: a row's segments in the same wave, sharing x's tile (v44, CPU model
#: probes/segment_order_model.py, fp16 bs 64 NB 8, random d 0.1: x from HBM 1.73x -> 1.09x, the
#: makespan 18 -> 15 units). v45, H100, wgrad ms full cut -> even, C = K = 8192 d 0.1 (two runs
#: each): fp16 bs 64 M 4096 random 0.1380 -> 0.1349, small world 0.1183 -> 0.1166, BA 0.1338
#: -> 0.1297; bf16 random 0.1385 -> 0.1354; fp16 random M 1024 / 2048 / 8192 -2.6 / -2.8 /
#: -2.6%; bs 32 random 0.2854 -> 0.2759, small world -1.2%. Faster on all 10, none slower.
TALL_EVEN_SEGMENTS = True
TALL_WGMMA16_VARIANTS = [{"WG_EAGER": 0}, {"STAGES": 2},
                         {"NB": 4, "BPW": 1, "STAGES": 3}, {"NB": 4, "BPW": 1, "STAGES": 4},
                         {"NB": 2, "BPW": 1}, {"NB": 8, "BPW": 2, "BK": 32, "STAGES": 5},
                         {"NB": 6, "BPW": 2, "STAGES": 4}]

#: The weight gradient on the 2 x 2 coarsened layout (``_work_lists.coarse_plan``): the 2 bs one
#: over every 2bs x 2bs block holding a stored block, then coarse_blocks.cu copies the stored
#: blocks out. It pays where most 2 x 2 groups are full and the 2 bs kernel is much faster a
#: block: 16-bit bs 32 (bs 64's wgmma kernel costs about 1.8x bs 32's a block), float32 bs 8
#: (bs 16's 3xTF32 sddmm_tall.cu costs about 1.65x sddmm_grouped.cu's) and, full groups only,
#: float32 bs 16 (bs 32's, about 3-3.5x; v50). v49 (H100,
#: probes/p48.py, C = K = 8192, M = 4096, d 0.1, ms): fp16 small world (fill 0.65) 0.2795 ->
#: 0.2003 with the copy (bf16 0.2814 -> 0.2007); random (fill 0.29) 0.2771 -> 0.4523;
#: Barabasi-Albert (0.32) 0.2748 -> 0.4275; small world M = 512 / 1024 / 2048 / 8192 0.0405 /
#: 0.0747 / 0.1412 / 0.5676 -> 0.0497 / 0.0721 / 0.1141 / 0.3841, d 0.05 / 0.2 0.1348 / 0.5309
#: -> 0.1205 / 0.3713; random d 0.3 / 0.4 / 0.5 (fill 0.40 / 0.46 / 0.53) 0.8048 / 1.0227 /
#: 1.2983 -> 1.1655 / 1.1201 / 1.2324. float32 bs 8 before the copy: small world (fill 0.70)
#: 3.5505 -> 2.1098, random (0.29) 3.1229 -> 4.9533.
#: The scratch it takes holds the coarse blocks, 1 / fill times the output's bytes (at most
#: about 2x by the rule; up to 4x forced on a scattered layout).
#: None (the default): where ``coarse_wgrad`` says; "0" never; "1" wherever it can run (tests).
#: From CUPY_BSPARSE_COARSE_WGRAD at import.
COARSE_WGRAD = _kernel_choice(os.environ.get("CUPY_BSPARSE_COARSE_WGRAD"),
                              "CUPY_BSPARSE_COARSE_WGRAD", kinds=("0", "1"))
#: The least M a coarse rule takes by default: the copy costs a fixed ~10 us, more than
#: M = 512 gains.
COARSE_WGRAD_MIN_M = 1024


#: One way to coarsen a wgrad: ``cost``, the 2 bs wgrad's time a coarse block over the direct
#: one's a stored block (the copy included); ``least``, the fewest stored blocks of a 2 x 2
#: group that run coarse (smaller groups run on the direct kernel into scratch, copied out with
#: the rest: a "hybrid" plan); ``limit``, the most predicted cost (``coarse_cost``) that takes
#: it; ``min_m``, the least M that does (None: ``COARSE_WGRAD_MIN_M`` at call time).
CoarseRule = collections.namedtuple("CoarseRule", "cost least limit min_m",
                                    defaults=(1.0, None))


#: The coarse wgrad's rules by (block size, element code), tried in order (the first that takes
#: the layout runs); other pairs never coarsen. 16-bit bs 32 broke even near fill 0.51 (random
#: d 0.4 / 0.5 above; cost 4 x 0.52 = 2.08); float32 bs 8 near fill 0.42 before the copy
#: (4 x 0.45 = 1.8). The hybrids (v50, H100, probes/p48.py overlap, C = K = 8192, M = 4096,
#: d 0.1 unless stated, ms; their two wgrads on two streams, ``coarse_overlap``): float32 bs 8
#: groups of >= 2 on Barabasi-Albert 3.51-3.55 -> 3.12-3.17 (-11%; random 3.12 -> 3.30, small
#: world 2.15 coarse -> 2.30, so after the full rule); float32 bs 16 (onto bs 32's wgrad) whole
#: groups only, small world 1.55-1.59 -> 1.47 (-7%), d 0.3 4.46-4.65 -> 3.81 (-16%), random
#: (8 coarse blocks) 1.58 -> 1.61. Their costs fit those runs (1.6-2.2 and 3.0-3.5 a coarse
#: block); their limit 0.95 keeps off random layouts, predicted 0.965 and 0.9998-0.9965.
#: 16-bit hybrids lost to the full rule on small world (0.2059 -> 0.2003 ms at least 2) and to
#: the direct kernel elsewhere, so they have none.
COARSE_WGRAD_RULES = {(32, 1): (CoarseRule(2.08, 1),), (32, 2): (CoarseRule(2.08, 1),),
                      (8, 0): (CoarseRule(1.8, 1), CoarseRule(1.8, 2, 0.95)),
                      (16, 0): (CoarseRule(3.5, 4, 0.95),)}
#: Whether a hybrid coarse wgrad (coarse blocks and the rest, two wgrads into scratch) runs its
#: two wgrads on two streams (one on a side stream forked from and joined back to the
#: caller's by events, ``COARSE_SIDE``), so that each fills the other's tail: None (the
#: default) for float32, whose wgrads are chains of launches (``sddmm_m_chunk``); "1" always;
#: "0" one after the other on the caller's stream. v50 (H100, probes/p48.py overlap,
#: M = 4096, d 0.1, ms, one after the other -> two streams): float32 bs 16 small world whole
#: groups 1.531-1.558 -> 1.465, bs 8 Barabasi-Albert groups of >= 2 3.60 -> 3.12-3.17; fp16
#: bs 32 small world groups of >= 2 0.2059-0.2067 -> 0.2214-0.2216 (slower). From
#: CUPY_BSPARSE_COARSE_OVERLAP at import.
COARSE_OVERLAP = _kernel_choice(os.environ.get("CUPY_BSPARSE_COARSE_OVERLAP"),
                                "CUPY_BSPARSE_COARSE_OVERLAP", kinds=("0", "1"))

#: Which of a hybrid's two wgrads goes on the side stream, launched first, where they overlap:
#: None (the default) the one of more predicted work (``coarse_first``), "rest" the direct
#: kernel's, "coarse" the coarse blocks'. v50 (H100, probes/p48.py side, C = K = 8192, d 0.1,
#: ms, rest first -> coarse first): float32 bs 16 small world (work 3998 x 3.5 coarse against
#: 10632 rest) M = 4096 1.4716, 1.4663 -> 1.4404, 1.4646; M = 2048 0.7494, 0.7306 -> 0.7037,
#: 0.7088; d 0.3 3.8456, 3.8393 -> 3.7231, 3.8440; float32 bs 8 Barabasi-Albert (16644 x 1.8
#: against 61604) M = 4096 3.1913, 3.1249 -> 3.2034, 3.1620; M = 2048 1.5778, 1.5898 -> 1.5831,
#: 1.6116. From CUPY_BSPARSE_COARSE_SIDE at import.
COARSE_SIDE = _kernel_choice(os.environ.get("CUPY_BSPARSE_COARSE_SIDE"),
                             "CUPY_BSPARSE_COARSE_SIDE", kinds=("rest", "coarse"))


def coarse_blocks_spec(bs, did):
    """The specialisation of coarse_blocks.cu that copies blocks of size ``bs`` and element code
    ``did`` (0 for float32 data, 1, 2)."""
    return (("BS", bs), ("DTYPE_ID", did))


def coarse_cost(rule, nnzb, ncoarse, nrest):
    """The coarse wgrad's predicted time over the direct one's by ``rule`` (a ``CoarseRule``) on
    a layout of ``nnzb`` stored blocks cut into ``ncoarse`` coarse blocks and ``nrest`` stored
    blocks left on the direct kernel: (ncoarse x rule.cost + nrest) / nnzb. None where it
    cannot run (no coarse block)."""
    if ncoarse <= 0 or nnzb <= 0:
        return None
    return (ncoarse * rule.cost + nrest) / nnzb


def coarse_wgrad(bs, did, M, cost, rule=None):
    """Whether the wgrad of (block size ``bs``, element code ``did``, reduction length ``M``)
    runs coarsened by ``rule`` (one of ``COARSE_WGRAD_RULES[bs, did]``; None: whether any of
    them could, on some layout) on a layout of predicted ``cost`` (``coarse_cost``; None: the
    layout cannot be coarsened: an odd block-row or -column count, no block, no group of the
    rule's least size). By the rule only where no sddmm kernel is forced (``SDDMM_KERNEL``: a
    test or probe of that kernel); COARSE_WGRAD "1": by the first rule whose plan has a coarse
    block, at any M."""
    rules = COARSE_WGRAD_RULES.get((bs, did))
    if not rules or cost is None or COARSE_WGRAD == "0":
        return False
    if COARSE_WGRAD == "1":
        return True
    return SDDMM_KERNEL is None and any(
        M >= (COARSE_WGRAD_MIN_M if r.min_m is None else r.min_m) and cost <= r.limit
        for r in (rules if rule is None else (rule,)))


def coarse_first(rule, ncoarse, nrest):
    """Whether a hybrid's coarse wgrad (``ncoarse`` coarse blocks by ``rule``) goes on the side
    stream, launched first, ahead of the ``nrest`` blocks left direct (``COARSE_SIDE``): by
    default where its predicted work, ncoarse x rule.cost, is the larger (longest first)."""
    if COARSE_SIDE is not None:
        return COARSE_SIDE == "coarse"
    return ncoarse * rule.cost > nrest


def coarse_overlap(did):
    """Whether a hybrid coarse wgrad of element code ``did`` runs its two wgrads on two streams
    (``COARSE_OVERLAP``)."""
    return COARSE_OVERLAP == "1" or (COARSE_OVERLAP is None and did == 0)


def coarse_blocks_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes) of coarse_blocks.cu: 256 threads, none."""
    return 256, 0


#: sddmm_tall.cu's float32 bs 32 consumers keep the clamped split (no TF32_REDO) up to this M,
#: where TF32_REDO is not forced. v56 (H100, ms, random d 0.1, C = K = 16384
#: up to M = 256 and 8192 above, two rounds each, REDO on -> off): bs 32 M = 64 0.1210-0.1219
#: -> 0.0946-0.0953, M = 256 0.302 -> 0.284, M = 1024 0.297 -> 0.302-0.303, M = 4096 1.151
#: -> 1.198-1.201; bs 16 faster with it at every M (M = 256 0.326-0.329 -> 0.373-0.376,
#: M = 4096 1.364 -> 1.490), M = 64 within 2%. v52 had timed bs 32 at M = 4096 only.
TALL_BS32_CLAMPED_M = 256


def f32_tall_wgmma_on(bs):
    """Whether float32 wgrad at block size ``bs`` takes sddmm_tall.cu's wgmma consumers where
    wgmma is asked for (``F32_TALL_WGMMA``'s rule): bs 64 unless "0"."""
    return bs == 64 and F32_TALL_WGMMA != "0"


def sddmm_tall_spec(bs, did, M=None, wgmma=False, f32_wgmma=None, nb=None, wgmma16=None, mch=0,
                    redo=None, tsplit=False):
    """Specialisation of sddmm_tall.cu (16-bit element codes; float32 as 3xTF32): NB blocks of a
    block-row per CTA with WARPS_M x WARPS_N warps each (64 or 32 accumulators per thread), BK
    rows of M per step, 3 ring stages, L2 evict_last for x and dy (v6 sweep at M = 4096,
    docs/perf-notes.md: bs 64 0.300 -> 0.186 ms, bs 32 0.552 -> 0.327 ms). float32 (3xTF32;
    v9 sweep at M = 4096): bs 64 16-row steps and 4 stages (with 32 rows, or 2 x 2 warps a
    block, ptxas spills); bs 32 4 blocks of one warp each (1.71 -> 1.29 ms against 8 of two);
    bs 16 16 blocks, two per warp (BPW: x's fragments split once for both; 2.27 -> 2.13 ms).
    v10 (H200, M = 4096): 16-bit bs 32 one warp a block (32 accumulators, 8 + 1 warps): 0.317
    -> 0.289 ms, 1.28x -> 1.16x fprop. v12 (H200): float32 bs 16 8 blocks a CTA (M = 128 /
    256 / 4096: 0.234 / 0.419 / 2.137 -> 0.213 / 0.395 / 1.963 ms), and up to M = 64 (it serves
    from M = 17) 16-row steps in 4 stages (M = 33 / 48 / 64: 0.148 / 0.148 / 0.148 -> 0.095 /
    0.096 / 0.119 ms; 3 stages the same, 6 slower); above M = 64 2 stages, not 3 (v26,
    H100: 2.5-5% faster at M = 128-4096). ``wgmma`` (sm_90a; the launcher asks for it
    on compute capability 9.0 when USE_WGMMA is set): float32 bs 64 takes one consumer
    warpgroup of wgmma m64n64k8 .tf32 for two blocks (WGMMA 1, 16-row steps, 168 registers: two
    CTAs an SM; v25, H100, M = 4096, C = K = 8192, probes/p23.py: 1.480 -> 1.127 ms, 1.33x ->
    1.01x fprop; STAGES 6 the same), unless ``f32_wgmma`` (None: ``f32_tall_wgmma_on``'s
    rule) says no. ``nb``: the segment size, one of ``sddmm_tall_nb_choices``
    (None: the first). ``wgmma16`` (None: ``TALL_WGMMA16``'s), with ``wgmma``: 16-bit bs 64
    on wgmma consumers, a warpgroup a block, WG_EAGER, 4 stages inside TALL_WGMMA16_STAGES4_M
    (v36, H100, M = 4096, fp16 random: 0.1750 -> 0.1607 ms). ``mch`` (rows a chunk; 0, the
    default: off): the chunks of M in one launch (MCH) where the spec can take it: float32 on
    the mma.sync consumers, BK dividing ``mch``. ``redo`` (None: ``TF32_REDO !=
    "0"``, on by default, but off for bs 32 up to M = 256 unless TF32_REDO is forced:
    ``TALL_BS32_CLAMPED_M``): TF32_REDO 1 on those same float32 consumers. ``tsplit``: TSPLIT 1
    (segments split along M, ``tall_tail_split``) where the spec can take it: 16-bit on the
    mma.sync consumers (``tall_tsplit_supported``)."""
    code = _mma_code(did)
    p = {"BS": bs, "DTYPE_ID": code, "STAGES": 3, "X_HINT": 1, "D_HINT": 1}
    f32w = (code == _F32X3 and wgmma and bs == 64
            and (f32_tall_wgmma_on(bs) if f32_wgmma is None else f32_wgmma))
    if bs == 64:
        if f32w:
            p.update(NB=2, BPW=2, BK=16, STAGES=4, WARPS_M=4, WARPS_N=1, WGMMA=1)
        elif code == _F32X3:
            p.update(NB=4, BK=16, STAGES=4, WARPS_M=2, WARPS_N=1)   # 32-row steps spill
        else:
            p.update(NB=4, BK=64, WARPS_M=2, WARPS_N=1)
            if wgmma and (TALL_WGMMA16 != "0" if wgmma16 is None else wgmma16):
                p.update(WARPS_M=4, WGMMA=1, WG_EAGER=1)
                size = sddmm_tall_nb_choices(bs, did, True, True, M)[0] if nb is None else nb
                if size == 8:
                    p.update(NB=8, BPW=2, STAGES=3)    # a warpgroup for two blocks
                else:
                    lo, hi = TALL_WGMMA16_STAGES4_M   # a warpgroup a block
                    p.update(NB=size, STAGES=4 if M is not None and lo < M <= hi else 3)
    elif bs == 32 and code == _F32X3:
        # v16 (H200, probes/p14.py, M = 4096): KSUM 16 1.297 -> 1.199 ms (KSUM 32 1.204; bs 16
        # gained nothing from either)
        p.update(NB=4, BK=32, WARPS_M=1, WARPS_N=1, KSUM=16)
    elif bs == 32:
        # v25 (H100, fp16, C = K = 8192, probes/p24.py, ms, 3 -> 2 stages): M = 2048 / 4096
        # 0.159 / 0.425 -> 0.151 / 0.306 (bf16 at 4096 0.422 -> 0.309); M = 128-1024 2-5% slower.
        # v31 (H100, probes/p29.py): NB 7, not 8: 8 warps of 64 registers fit four CTAs an SM
        # where 9 of 65 fit three; at M = 4096 fp16 0.299 / 0.308 / 0.308 -> 0.278 / 0.288 /
        # 0.282 ms on small world / random / Barabasi-Albert (M = 2048 -7%, 1024 -2%)
        p.update(NB=7, BK=32, WARPS_M=1, WARPS_N=1,
                 STAGES=2 if M is not None and M > SDDMM_TALL_FEW_STAGES_M else 3)
    else:
        p.update(NB=16, BK=32, WARPS_M=1, WARPS_N=1, BPW=2)
        if code == _F32X3:
            p["NB"] = 8
            if M is not None and M <= 64:
                p.update(BK=16, STAGES=4)
            else:
                # v26 (H100, C = K = 8192, probes/p25.py stages, ms, 3 -> 2 stages): M = 128 /
                # 512 / 1024 / 4096 0.0616 / 0.2068 / 0.4001 / 1.6044 -> 0.0584 / 0.2014 /
                # 0.3899 / 1.5621; Barabasi-Albert at 4096 1.5692 -> 1.5321 (p25 caps)
                p["STAGES"] = 2
    if nb is not None:
        choices = sddmm_tall_nb_choices(bs, did, wgmma, wgmma16)   # any M's
        if nb not in choices:
            raise ValueError(f"nb must be one of {choices} for bs {bs} and element code {did}"
                             f"{' on wgmma' if wgmma else ''}, got {nb!r}")
        p["NB"] = nb
    if mch and code == _F32X3 and not p.get("WGMMA") and mch % p["BK"] == 0:
        p["MCH"] = 1                   # ``mch`` rows a chunk, the chunks in one launch
    if (redo is None and TF32_REDO is None and bs == 32 and M is not None
            and M <= TALL_BS32_CLAMPED_M):
        redo = False                   # measured slower there (TALL_BS32_CLAMPED_M)
    if _on_unless_zero(redo, TF32_REDO) and code == _F32X3 and not p.get("WGMMA"):
        p["TF32_REDO"] = 1             # the clamp-free split, a segment again where a sum is NaN
    if tsplit and tall_tsplit_supported(p):
        p["TSPLIT"] = 1                # pieces of M through the workspace (tall_tail_split)
    return tuple(sorted(p.items()))


def tall_tsplit_floats(spec):
    """float32 words of workspace a TSPLIT piece of sddmm_tall.cu spec ``spec`` writes: its
    consumer threads' accumulators (BPW blocks of BS x BS over WARPS_M x WARPS_N warps each)."""
    p = dict(spec)
    threads = sddmm_tall_launch_shape(spec)[0] - 32
    return threads * p.get("BPW", 1) * p["BS"] ** 2 // (p["WARPS_M"] * p["WARPS_N"] * 32)


def tall_tsplit_supported(spec):
    """Whether sddmm_tall.cu spec ``spec`` (pairs or a dict) can take TSPLIT: 16-bit on the
    mma.sync consumers."""
    p = dict(spec)
    return _mma_code(p["DTYPE_ID"]) != _F32X3 and not p.get("WGMMA")


#: Whether 16-bit wgrad on sddmm_tall.cu's mma.sync consumers (bs 32 on the H100) splits a
#: badly filled last wave's segments along M (TSPLIT, ``tall_tail_split``): None (the default,
#: until timed on the GPU) and "0" no, "1" by the rule. From CUPY_BSPARSE_TALL_TSPLIT at
#: import. Why (docs/perf-notes.md v59): a CTA of sddmm_tall.cu is latency-bound, one copy's
#: round trip a step (v31's timeline: 0.8 us a 32-row step at four CTAs an SM), so a segment
#: alone on an SM still takes about M / 32 of them. At M = 4095 with W 8192 x 4096 (fp16
#: bs 32, 584 segments of NB 7 for 528 resident CTAs) the 56 left over run alone after the
#: first wave: 0.18 ms for 3,277 blocks, where the square shape takes 42 ns a block (0.138).
TALL_TSPLIT = _kernel_choice(os.environ.get("CUPY_BSPARSE_TALL_TSPLIT"),
                             "CUPY_BSPARSE_TALL_TSPLIT", kinds=("0", "1"))
#: ``tall_tail_split``'s bounds: over one wave, a last wave under this share of the resident
#: CTAs is split; at most this many pieces a segment; pieces of at least this many rows.
TALL_TSPLIT_TAIL = 0.5
TALL_TSPLIT_MAX = 4
TALL_TSPLIT_MIN_ROWS = 512


def tall_tail_split(segments, resident, M, bk):
    """``(pieces, rows, split)`` for sddmm_tall.cu's TSPLIT on ``segments`` segments (grid
    order) with ``resident`` CTAs resident at once, reducing ``M`` rows in steps of ``bk``:
    the last ``split`` segments each cut into ``pieces`` pieces of ``rows`` rows (a multiple of
    ``bk``; the last piece shorter, none empty; every piece but the last at least
    TALL_TSPLIT_MIN_ROWS rows; at most TALL_TSPLIT_MAX pieces). ``(1, M, 0)``, no split,
    unless TALL_TSPLIT is "1" and:
    - over one wave, the last wave fills under TALL_TSPLIT_TAIL of ``resident``: its segments
      split, their pieces at most ``resident`` (one wave of short CTAs);
    - under one wave, some count of pieces p finishes sooner in rounds of CTAs, each round 1 / p
      of a segment's time: ceil(segments x p / resident) / p least, the fewest pieces among
      equals (every segment split; 293 segments on 528 CTAs: 3 pieces, 2 rounds of a third).
    A CTA is latency-bound (perf-notes v59), so a round is about as long whatever its CTAs
    hold."""
    none = (1, M, 0)
    if TALL_TSPLIT != "1" or segments <= 0 or resident <= 0:
        return none
    most = min(TALL_TSPLIT_MAX, M // max(TALL_TSPLIT_MIN_ROWS, 1))
    if segments >= resident:
        split = segments % resident
        if split == 0 or split >= TALL_TSPLIT_TAIL * resident:
            return none
        want = min(most, resident // split)
    else:
        split = segments
        want = min(range(1, max(most, 1) + 1),
                   key=lambda p: (-(-segments * p // resident) / p, p))
    if want < 2:
        return none
    pieces, rows = tall_pieces(M, want, bk)
    return (pieces, rows, split) if pieces >= 2 else none


def tall_pieces(M, want, bk):
    """``(pieces, rows)``: ``M`` rows cut into about ``want`` pieces of ``rows`` rows each, a
    multiple of ``bk`` (ceil(M / want) rounded up), the last piece shorter, none empty (so
    ``pieces`` may be fewer than ``want``)."""
    rows = -(-(-(-M // want)) // bk) * bk
    return -(-M // rows), rows


def sddmm_tall_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes, blocks per CTA) of a sddmm_tall spec."""
    p = dict(spec)
    bs, esz = p["BS"], _itemsize(p["DTYPE_ID"])
    # a ring buffer: x's tile and NB dy tiles
    smem = 8 * tile_cols(bs, esz) * esz + p["STAGES"] * ((1 + p["NB"]) * p["BK"] * bs * esz + 16)
    if p.get("WGMMA") and esz == 4:    # float32 (bs 64): dy's NB planes of BS rows of 128 bytes
        smem += p["NB"] * bs * 128
    smem += 16 * p.get("TSPLIT", 0)    # split_combine's flag
    warps = p["NB"] // p.get("BPW", 1) * p["WARPS_M"] * p["WARPS_N"]
    return (warps + 1) * 32, smem, p["NB"]


#: Blocks per CTA of sddmm_stream.cu (v5 sweep at M = 64: bs 64 0.0351 / 0.0312 / 0.0285 ms with
#: 32 / 16 / 8; bs 32 0.0407 / 0.0396 / 0.0393 ms with 64 / 16 / 8).
SDDMM_STREAM_NB = 8
#: Fewer stored blocks than this take sddmm.cu unless the stream kernel is forced: on small
#: layouts its one-block CTAs fill the GPU better (819 blocks, M = 7, bs 32: 0.0066 against
#: 0.0070 ms; 205 blocks, M = 33, bs 64: 0.0063 against 0.0089 ms).
SDDMM_STREAM_MIN_BLOCKS = 2048


def sddmm_grouped_spec(bs, did, M=64, redo=None, two_way=None):
    """Specialisation of sddmm_grouped.cu (tensor-core element codes, bs 8 or 16): 256 dy
    columns per group, up to 256 x columns and NBLK blocks (64 accumulators per thread) per
    CTA, MK rows of M per step (64-byte x rows for 16-bit types), 3 stages (measured 2-6%
    faster than 2, docs/perf-notes.md v4).

    16-bit bs 16 (v8 sweep, docs/perf-notes.md): groups of 512 dy columns and 32 x column
    blocks, up to 128 blocks per CTA over 16 warps, one CTA per SM: each item re-reads about
    half the slab bytes per block (M = 4096: 0.84 -> 0.60 ms; M = 64: 0.074 -> 0.064 ms);
    above M = 512 steps of 48 rows and 2 stages (M = 4096: 0.60 -> 0.57 ms, slower at 64).
    16-bit bs 8: PAIRS (two blocks of a column per m16 tile: M = 4096 1.32 -> 1.04 ms, M = 64
    0.114 -> 0.100 ms); above M = 512 groups of 512 dy columns and up to 256 blocks per CTA,
    and (v12, H200) 64-row steps in 2 stages (M = 4096: 0.977 -> 0.858 ms; 16-row steps in 4
    stages 1.32, 3 or 4 stages of 32 rows 0.970-0.977, 16 or 64 x column blocks 1.50 / 1.07).
    float32 bs 8 (3xTF32, v11): PAIRS too (M = 64 0.316 -> 0.235 ms, M = 4096 4.90 -> 3.40),
    and above M = 512 32-row steps in 2 stages (3.40 -> 3.15 ms). float32 bs 16 (3xTF32, v12,
    served up to M = 16): the defaults measured fastest of eight item shapes at M = 64.

    ``redo`` (float32 bs 8 pairs; None: ``TF32_REDO != "0"``, on by
    default): TF32_REDO 1, the split without its clamp and each item again with it where a sum
    is NaN.

    float32 bs 8 pairs take SOFF (v53, p53 on H100: the units'
    codes as stage byte offsets; wgrad at M = 4096 random 2.61 -> 2.35 ms, Barabasi-Albert
    2.94-2.98 -> 2.74-2.76; M = 64, C = K = 16384: 0.210 -> 0.202), and with ``two_way``
    (None: ``TWO_WAY_PAIRS`` != "0", on by default since v54) TPAIRS, units paired two ways.
    """
    p = _grouped_items(bs, did, M)
    if p["PAIRS"] and p["DTYPE_ID"] == _F32X3:
        if _on_unless_zero(redo, TF32_REDO):
            p["TF32_REDO"] = 1
        p["SOFF"] = 1                  # the units' codes as stage byte offsets (v53: p53)
        if _on_unless_zero(two_way, TWO_WAY_PAIRS):
            p["TPAIRS"] = 1            # units paired two ways (v53: p56)
    return tuple(sorted(p.items()))


def _grouped_items(bs, did, M):
    """sddmm_grouped_spec's items and tiles as a dict, without the float32 pairs' own
    knobs (TF32_REDO, SOFF, TPAIRS): the part sddmm_grouped_tma_spec shares."""
    did = _mma_code(did)
    tf32 = did in (_TF32, _F32X3)
    p = {"BS": bs, "DTYPE_ID": did, "R": 256 // bs, "NCX": 256 // bs, "NBLK": 128 if bs == 8 else 64,
         "MK": 16 if tf32 else 32, "STAGES": 3, "NW": 8, "MIN_CTAS": 2}
    p["PAIRS"] = int(bs == 8 and did in (1, 2, _F32X3))
    if p["PAIRS"] and M > 512:
        p.update(R=64, NBLK=256, NW=16, MIN_CTAS=1)     # M = 4096: 1.05 -> 0.95 ms
        if did == _F32X3:
            p.update(MK=32, STAGES=2)                   # M = 4096: 3.40 -> 3.15 ms (v11)
        else:
            p.update(MK=64, STAGES=2)                   # M = 4096: 0.977 -> 0.858 ms (v12)
    if bs == 16 and did in (1, 2):
        p.update(R=32, NCX=32, NBLK=128, NW=16, MIN_CTAS=1)
        if M > 512:
            p.update(MK=48, STAGES=2)
    return p


def sddmm_grouped_launch_shape(spec):
    """(threads, dynamic shared-memory bytes) of a sddmm_grouped specialisation."""
    p = dict(spec)
    bs = p["BS"]
    pad = 8 if p.get("TPAIRS") else 16             # TPAIRS: x's and dy's tiles in one set of rows
    stage = p["MK"] * (p["NCX"] * bs + p["R"] * bs + pad) * _itemsize(p["DTYPE_ID"])
    code_bytes = 16 if p["PAIRS"] else 8           # int4 units / int2 entries
    return p["NW"] * 32, p["NBLK"] * code_bytes + p["STAGES"] * stage


def tma_boxes(name, spec):
    """(rows, columns) of each tensor-map box the launcher builds for a specialisation of TMA
    template ``name``, in kernel-argument order: the boxes the kernel's copies and shared-memory
    layout assume. Tiles (dsd_stream, sddmm_stream, sddmm_tall): rows of ``tile_cols``
    columns; slabs (the grouped TMA kernels' x of dsd, dy of sddmm): 128-byte rows; sddmm's x
    column blocks: BS columns."""
    p = dict(spec)
    bs, esz = p["BS"], _itemsize(p["DTYPE_ID"])
    tc = tile_cols(bs, esz)
    if name == "dsd_stream.cu":
        return ((p["BM"] // p.get("XB", 1), tc),) * (1 + p.get("XLO", 0)) + ((bs, tc),)
    if name == "dsd_grouped_tma.cu":
        return ((p["BM"], 128 // esz),) * (1 + p.get("XLO", 0))
    if name == "sddmm_grouped_tma.cu":
        return (p["MK"], bs), (p["MK"], 128 // esz)
    if name == "sddmm_tall.cu":
        return (p["BK"], tc), (p["BK"], tc)
    if name == "sddmm_stream.cu":
        return (p["BK"], tc), (p["BK"], tc), (bs, tc)
    raise ValueError(f"{name} copies nothing with tensor maps")


def all_specializations():
    """Every (template, specialisation, entry point) the launchers can ask for."""
    out = []
    for bs in (8, 16, 32, 64):
        for did in (0, 1, 2, _TF32):
            for M in (1, 64, 4096):
                for tw in (False, True):
                    out.append(("dsd.cu", dsd_spec(bs, did, M, tw), "bsmm_dsd"))
                    if grouped_supported(bs, did):
                        out.append(("dsd_grouped.cu", dsd_grouped_spec(bs, did, M, tw),
                                    "bsmm_dsd_grouped"))
                    if dsd_grouped_tma_supported(bs, did):
                        for wcp in ((None, 0, 1) if copy_mode_by_layout(bs, did, M) else (None,)):
                            out.append(("dsd_grouped_tma.cu",
                                        dsd_grouped_tma_spec(bs, did, M, tw, wcp=wcp),
                                        "bsmm_dsd_grouped_tma"))
                        if m_regime(M) == "small":
                            # producer warps (PW) and unsigned slab columns (UCOL), each
                            # knob at both values (one of them the default), with the
                            # launcher's split and each copy mode it may pick
                            for wcp in ((None, 0, 1) if copy_mode_by_layout(bs, did, M)
                                        else (None,)):
                                for knob in ({"pw": 1}, {"pw": PW_PROBE}, {"ucol": 0},
                                             {"ucol": UCOL_PROBE}):
                                    out.append(("dsd_grouped_tma.cu", dsd_grouped_tma_spec(
                                        bs, did, M, tw, wcp=wcp, **knob,
                                        split=f32_split("dsd_grouped_tma.cu", bs, M)),
                                        "bsmm_dsd_grouped_tma"))
                        if did == 0:
                            # float32 x split ahead ("pass": f32_split, F32_SPLIT)
                            out.append(("dsd_grouped_tma.cu",
                                        dsd_grouped_tma_spec(bs, did, M, tw, split="pass"),
                                        "bsmm_dsd_grouped_tma"))
                    if dsd_stream_supported(bs, did, M):
                        # PERSIST at both values (CUPY_BSPARSE_PERSIST), one the default
                        for wg in (False, True):
                            for persist in (False, True):
                                out.append(("dsd_stream.cu",
                                            dsd_stream_spec(bs, did, M, tw, wg, persist=persist),
                                            "bsmm_dsd_stream"))
                        if did and m_regime(M) == "large":
                            # column groups (STREAM_R, opt-in)
                            for r in (2, 4):
                                out.append(("dsd_stream.cu", dsd_stream_spec(bs, did, M, tw, r=r),
                                            "bsmm_dsd_stream"))
                            # 512-row tiles at each knob set and without (STREAM_TALL),
                            # each also on the item queue (STREAM_QUEUE, opt-in)
                            for tall in ((0, 1, 2, 3) if bs == 32 else (0,)):
                                for q in (False, True):
                                    out.append(("dsd_stream.cu", dsd_stream_spec(
                                        bs, did, M, tw, r=1, tall=tall, queue=q),
                                        "bsmm_dsd_stream"))
                            # wgmma consumers on the queue (STREAM_WGQ), each row tile
                            for wgq in ((256, 512) if bs == 64 else ()):
                                out.append(("dsd_stream.cu", dsd_stream_spec(
                                    bs, did, M, tw, True, r=1, wgq=wgq), "bsmm_dsd_stream"))
                            if bs == 64 and QLIST_AHEAD:   # QLIST by the layout (qlist_ahead)
                                out.append(("dsd_stream.cu", dsd_stream_spec(
                                    bs, did, M, tw, True, r=1, wgq=512, qlist=QLIST_AHEAD),
                                    "bsmm_dsd_stream"))
                            # the queue's last row tiles' items in order or 4 interleaved
                            # (ILV, probes/p43.py; bs 64's default is 2), the items from a
                            # host-ordered list (QLIST), the next item claimed near the item's
                            # end (LATE, v41)
                            q = dsd_stream_spec(bs, did, M, tw, True, r=1,
                                                tall=3 if bs == 32 else 0,
                                                wgq=512 if bs == 64 else 0)
                            for knob in ({"ILV": 0}, {"ILV": 2}, {"ILV": 4}, {"QLIST": 1, "ILV": 0},
                                         {"LATE": 1}, {"LATE": 2},
                                         {"LATE": 1, "QLIST": 1, "ILV": 0}):
                                out.append(("dsd_stream.cu", spec_with(q, knob),
                                            "bsmm_dsd_stream"))
                        if did == 0 and bs in (16, 32) and m_regime(M) == "small":
                            # float32 wgmma consumers (F32_WGMMA: bs 32's default)
                            for persist in (False, True):
                                out.append(("dsd_stream.cu", dsd_stream_spec(
                                    bs, did, M, tw, True, persist=persist, f32_wgmma=True),
                                    "bsmm_dsd_stream"))
                        if did == 0:   # float32 x split ahead ("pass": f32_split, F32_SPLIT)
                            for persist in (False, True):
                                out.append(("dsd_stream.cu", dsd_stream_spec(
                                    bs, did, M, tw, split="pass", persist=persist),
                                    "bsmm_dsd_stream"))
            for M in (64, 4096):
                out.append(("sddmm.cu", sddmm_spec(bs, did, M), "bsmm_sddmm"))
            for M in (16, 32, 64):
                if sddmm_stream_supported(bs, did, M):
                    for wg in (False, True):
                        out.append(("sddmm_stream.cu", sddmm_stream_spec(bs, did, M, wg),
                                    "bsmm_sddmm_stream"))
            # float32: the clamped split and the redo both, whatever TF32_REDO says
            redos = (False, True) if did == 0 else (None,)
            if sddmm_tall_supported(bs, did):
                for M in (64, 4096, None):
                    for wg, redo in itertools.product((False, True), redos):
                        out.append(("sddmm_tall.cu", sddmm_tall_spec(bs, did, M, wg, redo=redo),
                                    "bsmm_sddmm_tall"))
                    for wg, redo in itertools.product((False, True), redos):   # by the waves
                        for nb in sddmm_tall_nb_choices(bs, did, wg)[1:]:
                            out.append(("sddmm_tall.cu",
                                        sddmm_tall_spec(bs, did, M, wg, nb=nb, redo=redo),
                                        "bsmm_sddmm_tall"))
                    if did in (1, 2) and bs == 64 and M is None:
                        # 16-bit wgmma consumers' variants (probes/p38.py, p40.py)
                        w16 = sddmm_tall_spec(bs, did, M, True, wgmma16=True)
                        for knobs in TALL_WGMMA16_VARIANTS:
                            out.append(("sddmm_tall.cu", spec_with(w16, knobs), "bsmm_sddmm_tall"))
                    if M != 64:                      # row chunks in one launch (default)
                        for redo in redos:
                            mch = sddmm_tall_spec(bs, did, M, False, mch=1024, redo=redo)
                            if dict(mch).get("MCH"):
                                out.append(("sddmm_tall.cu", mch, "bsmm_sddmm_tall"))
                    if M != 64 and did in (1, 2):    # the last wave split along M (TSPLIT)
                        for wg in (False, True):
                            for nb in (None,) + sddmm_tall_nb_choices(bs, did, wg)[1:]:
                                spec = sddmm_tall_spec(bs, did, M, wg, nb=nb, tsplit=True)
                                if dict(spec).get("TSPLIT"):
                                    out.append(("sddmm_tall.cu", spec, "bsmm_sddmm_tall"))
                    if did == 0 and bs == 64:   # the wgmma consumers, whatever F32_TALL_WGMMA says
                        out.append(("sddmm_tall.cu", sddmm_tall_spec(bs, did, M, True, True),
                                    "bsmm_sddmm_tall"))
            if sddmm_grouped_supported(bs, did):
                for M in (64, 4096):
                    out.append(("sddmm_grouped.cu", sddmm_grouped_spec(bs, did, M),
                                "bsmm_sddmm_grouped"))
                    if did == 0 and bs == 8:
                        for redo, two_way in itertools.product(redos, (False, True)):
                            spec = sddmm_grouped_spec(bs, did, M, redo=redo, two_way=two_way)
                            out.append(("sddmm_grouped.cu", spec, "bsmm_sddmm_grouped"))
                        for knobs in SDDMM_GROUPED_F32_VARIANTS:
                            out.append(("sddmm_grouped.cu",
                                        spec_with(sddmm_grouped_spec(bs, did, M, redo=True,
                                                                     two_way=False), knobs),
                                        "bsmm_sddmm_grouped"))
            if sddmm_grouped_tma_supported(bs, did):
                for M in (64, 4096):
                    out.append(("sddmm_grouped_tma.cu", sddmm_grouped_tma_spec(bs, did, M),
                                "bsmm_sddmm_grouped_tma"))
    out.append(("split_tf32.cu", SPLIT_TF32_SPEC, "bsmm_split_tf32"))
    out += [("coarse_blocks.cu", coarse_blocks_spec(bs, did), "bsmm_coarse_blocks")
            for bs, did in COARSE_WGRAD_RULES]
    return list(dict.fromkeys(out))   # some specialisations serve several regimes


#: Dynamic shared memory one CTA may opt in to, by compute capability: 227 KB on sm_90 and
#: sm_100, 163 KB on sm_80 / sm_87, 99 KB on sm_86 / sm_89 / sm_120 (the launcher asks the
#: device; this table is for the specialisations CI compiles and the fallback).
SMEM_LIMIT = {80: 166912, 86: 101376, 87: 166912, 89: 101376, 90: 232448, 100: 232448,
              120: 101376}

#: Knobs ``fit_shared`` halves once STAGES is 2, in order, each kept a multiple of its floor:
#: the templates' static_asserts hold there, and the look-up tables take them from the spec.
_SHRINK = {"sddmm_grouped.cu": (("MK", 16), ("R", 32)), "sddmm.cu": (("MK", 16),),
           "sddmm_grouped_tma.cu": (("MK", 16),), "dsd.cu": (("BM", 64),),
           "dsd_grouped.cu": (("CAP", 32),)}


#: The one specialisation of split_tf32.cu (x's 3xTF32 planes for F32_SPLIT "pass").
SPLIT_TF32_SPEC = (("DTYPE_ID", _F32X3),)


def split_tf32_launch_shape(spec):
    """(threads per CTA, dynamic shared-memory bytes) of split_tf32.cu: 256 threads, none."""
    return 256, 0


def launch_shape(template, spec):
    """The launch shape of ``spec`` of ``template``: (threads per CTA, dynamic shared-memory
    bytes), then rows per CTA for the dsd templates (its ``*_launch_shape`` function)."""
    return {"dsd.cu": dsd_launch_shape, "dsd_grouped.cu": dsd_grouped_launch_shape,
            "dsd_grouped_tma.cu": dsd_grouped_tma_launch_shape,
            "dsd_stream.cu": dsd_stream_launch_shape, "sddmm.cu": sddmm_launch_shape,
            "sddmm_grouped.cu": sddmm_grouped_launch_shape,
            "sddmm_grouped_tma.cu": sddmm_grouped_tma_launch_shape,
            "sddmm_stream.cu": sddmm_stream_launch_shape,
            "sddmm_tall.cu": sddmm_tall_launch_shape,
            "split_tf32.cu": split_tf32_launch_shape,
            "coarse_blocks.cu": coarse_blocks_launch_shape}[template](spec)


def fit_shared(template, spec, limit):
    """``spec`` of ``template``, changed as little as needed for its dynamic shared memory to
    fit ``limit`` bytes: fewer ring stages (down to 2), then the template's step knobs halved
    (``_SHRINK``). The specs tuned for sm_90 fit its 227 KB unchanged; GPUs with less (sm_80:
    163 KB, sm_86 / sm_89: 99 KB) get smaller steps.

    Raises: RuntimeError naming the template and both sizes when no such spec fits.
    """
    p = dict(spec)
    knobs = list(_SHRINK.get(template, ()))
    while True:
        smem = launch_shape(template, tuple(sorted(p.items())))[1]
        if smem <= limit:
            return tuple(sorted(p.items()))
        if p.get("STAGES", 2) > 2:
            p["STAGES"] -= 1
        elif knobs and p[knobs[0][0]] > knobs[0][1]:
            name, floor = knobs[0]
            p[name] = max(floor, p[name] // 2 // floor * floor)
        elif knobs:
            knobs.pop(0)
        else:
            raise RuntimeError(
                f"{template} {dict(spec)} needs {smem} bytes of shared memory per CTA even as "
                f"{p}; this GPU allows {limit}"
            )


def fitted_specializations(arch):
    """``device_specializations(arch)`` that are not in ``all_specializations()``: the smaller
    steps ``fit_shared`` gives a GPU with less shared memory than sm_90 (for CI to compile)."""
    known = set(all_specializations())
    return [s for s in device_specializations(arch) if s not in known]


def device_specializations(arch):
    """``all_specializations`` that a device of compute capability ``arch`` (an int, 90 for
    sm_90) can run: templates of ``MIN_ARCH`` from their architecture, sm_90a ones on 9.0, each
    fitted to the architecture's shared memory (``SMEM_LIMIT``, where known; one that cannot
    fit is left out)."""
    limit = SMEM_LIMIT.get(arch)
    out = []
    for name, spec, entry in all_specializations():
        if arch < MIN_ARCH.get(name, 0) or (arch != 90 and compiler.needs_sm90a(spec)):
            continue
        if limit is not None:
            try:
                spec = fit_shared(name, spec, limit)
            except RuntimeError:
                continue
        out.append((name, spec, entry))
    return list(dict.fromkeys(out))


def pow2_up(n):
    return 1 << max(0, (max(n, 1) - 1).bit_length())


def pow2_down(n):
    return 1 << max(0, max(n, 1).bit_length() - 1)
