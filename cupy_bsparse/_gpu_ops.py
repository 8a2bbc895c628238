"""GPU launchers for the block-sparse products.

The functions follow the kernel contract in ``docs/design.md`` (same signatures as
``cupy_bsparse.reference``) and take cupy arrays that ``cupy_bsparse.ops`` has validated. The
kernel and its specialisation come from ``_specs``, the look-up tables from ``_work_lists``
(built once per layout and kept in ``layout.plan_cache``); after that a call does no host
synchronisation, and allocates nothing unless an operand is misaligned or non-contiguous (then
it works on an aligned copy).
"""
import math

import numpy as np

from . import _specs, _tensor_maps, _work_lists, compiler
from ._arrays import astype, bits, from_float32, to_float32
# Pure functions only by name; the flags (DSD_KERNEL, SDDMM_KERNEL, USE_WGMMA, F32_SPLIT) and
# everything tests patch are read through the module (_specs.X, _work_lists.X) at call time.
from ._specs import dtype_id, m_regime

_MAX_GRID_Y = 65535

_archs = {}


def _arch(dev):
    """Compute capability of device ``dev`` as an int (90 for sm_90); cached."""
    import cupy

    hit = _archs.get(dev)
    if hit is None:
        hit = _archs[dev] = int(cupy.cuda.Device(dev).compute_capability)
    return hit


def _aligned_rows(a):
    """``a`` (2-D cupy) with unit last stride and 16-byte aligned rows; copies only if needed.

    Copies go through ``_arrays.astype`` (bit copies), which CuPy supports for bfloat16 too.
    """
    it = a.itemsize
    if a.strides[1] != it or a.strides[0] % 16 or a.data.ptr % 16 or a.strides[0] < a.shape[1] * it:
        a = astype(a, a.dtype)
    return a


_attributes = {}


def _device_attributes(dev):
    """``cupy.cuda.Device(dev).attributes`` (a dict), read once per device."""
    import cupy

    hit = _attributes.get(dev)
    if hit is None:
        hit = _attributes[dev] = cupy.cuda.Device(dev).attributes
    return hit


def _smem_limit(dev):
    """Dynamic shared memory one CTA may opt in to on device ``dev`` (bytes)."""
    return (_device_attributes(dev).get("MaxSharedMemoryPerBlockOptin")
            or _specs.SMEM_LIMIT.get(_arch(dev), _specs.SMEM_LIMIT[90]))


def _fit(name, spec, dev):
    """``spec`` fitted to device ``dev``'s shared memory (unchanged on sm_90)."""
    return _specs.fit_shared(name, spec, _smem_limit(dev))


def _fit_split(name, make, dev, split):
    """``make(split)`` (a spec of template ``name``; ``split`` a float32 split mode or None)
    fitted to device ``dev``; where a spec that takes float32 split ahead cannot fit,
    ``make(None)``, the in-register split, fitted."""
    try:
        return _fit(name, make(split), dev)
    except RuntimeError:
        if not split:
            raise
        return _fit(name, make(None), dev)


def _wgmma(dev):
    """Whether the stream kernels take their wgmma consumers on device ``dev``: USE_WGMMA, on
    compute capability 9.0 (sm_90a)."""
    return _specs.USE_WGMMA and _arch(dev) == 90


def _kernel(name, spec, entry, smem):
    fn = compiler.get_function(name, spec, entry)
    if fn.max_dynamic_shared_size_bytes < smem:
        fn.max_dynamic_shared_size_bytes = smem
    return fn


# (op, block size, element code, M regime, transposition, device) -> launch configuration, so a
# call after the first does dict look-ups only (host overhead is the cost of small problems).
_launches = {}


def _dsd_launch(bs, did, M, trans_w, kind="column", wcp=None, r=None, tall=None, qlist=0):
    """(function, threads, shared bytes, BM, spec dict, resident CTAs on the device); ``wcp``
    overrides dsd_grouped_tma.cu's block copy mode, ``r`` dsd_stream.cu's columns a CTA,
    ``tall`` its set of 512-row tiles (None: ``_specs.stream_tall``'s), ``qlist`` its queue's
    QLIST (0: none)."""
    import cupy

    dev = cupy.cuda.runtime.getDevice()
    tall = _specs.stream_tall(bs, did, M) if tall is None else tall
    wgq = _specs.stream_wgq(bs, did, M, r or 1, _wgmma(dev))
    key = ("dsd", kind, bs, did, m_regime(M), trans_w, dev, _specs.USE_WGMMA, _specs.F32_SPLIT,
           _specs.STREAM_PERSIST, _specs.F32_WGMMA, _specs.STREAM_R, wcp, r, tall,
           _specs.STREAM_QUEUE, wgq, qlist)
    hit = _launches.get(key)
    if hit is None:
        name = "dsd.cu" if kind == "column" else f"dsd_{kind}.cu"

        def make(split):
            if kind == "stream":
                return _specs.dsd_stream_spec(bs, did, M, trans_w, wgmma=_wgmma(dev), split=split,
                                              r=r, tall=tall, wgq=wgq, qlist=qlist)
            if kind == "grouped_tma":
                return _specs.dsd_grouped_tma_spec(bs, did, M, trans_w, split=split, wcp=wcp)
            return {"column": _specs.dsd_spec, "grouped": _specs.dsd_grouped_spec}[kind](
                bs, did, M, trans_w)

        spec = _fit_split(name, make, dev, _specs.f32_split(name, bs, M))
        nt, smem, bm = _specs.launch_shape(name, spec)
        fn = _kernel(name, spec, "bsmm_" + name[:-3], smem)
        hit = (fn, nt, smem, bm, dict(spec), _resident(fn, nt, smem, dev))
        _launches[key] = hit
    return hit


_TAILS = {}


def _grouped_tail(fn, nt, smem, kernel, bs):
    """The items a grouped sddmm launch of ``fn`` (``kernel`` "grouped" / "grouped_tma", block
    size ``bs``) orders longest first at its end: two waves of resident CTAs where
    ``_specs.grouped_tail_on``, else 0. Cached per function and device."""
    import cupy

    if not _specs.grouped_tail_on(kernel, bs):
        return 0
    dev = cupy.cuda.runtime.getDevice()
    key = (fn.kernel.ptr, nt, smem, dev)
    tail = _TAILS.get(key)
    if tail is None:
        tail = _TAILS[key] = 2 * _resident(fn, nt, smem, dev)
    return tail


def _resident(fn, nt, smem, dev):
    """CTAs of ``fn`` (``nt`` threads, ``smem`` dynamic shared bytes) resident at once on
    device ``dev``: the occupancy API's CTAs an SM (at least 1) times its SMs."""
    import cupy

    per_sm = cupy.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(fn.kernel.ptr, nt, smem)
    return max(1, per_sm) * _device_attributes(dev)["MultiProcessorCount"]


def _tall_nb(layout, bs, did, M):
    """sddmm_tall.cu's segment size for this layout: where ``_specs.sddmm_tall_nb_choices``
    offers several, ``_specs.sddmm_tall_segment_size``'s pick from each choice's segments and
    the CTAs of its compiled spec resident on this device; None otherwise. Cached per layout."""
    import cupy

    dev = cupy.cuda.runtime.getDevice()
    choices = _specs.sddmm_tall_nb_choices(bs, did, _wgmma(dev), M=M)
    if len(choices) < 2:
        return None
    key = ("tall_nb", bs, did, _sddmm_spec_key(M), dev, choices, _specs.SDDMM_TALL_TAIL_MIN,
           _specs.SDDMM_TALL_ONE_WAVE_MIN)
    nb = layout.plan_cache.get(key)
    if nb is None:
        def count(n):
            fn, nt, smem = _sddmm_launch("tall", bs, did, M, n)[:3]
            return _work_lists.sddmm_segment_count(layout, n), _resident(fn, nt, smem, dev)

        nb = layout.plan_cache[key] = _specs.sddmm_tall_segment_size(choices, count)
    return nb


def _tall_tail_split(layout, plan, key, bs, did, M, nb):
    """sddmm_tall.cu's TSPLIT launch for ``plan`` (``sddmm_plan``'s (seg, cols), cached under
    ``key``; ``nb``, the segment size asked of the spec, None for its default) where
    ``_specs.tall_tail_split`` splits its last wave: (function, threads, shared bytes, spec
    dict, boxes, the split segment table, pieces, rows a piece, segments split); None where it
    does not. The rule's answer and the table are cached per layout."""
    import cupy

    dev = cupy.cuda.runtime.getDevice()
    fn, nt, smem, spec, boxes = _sddmm_launch("tall", bs, did, M, nb, tsplit=True)
    assert spec.get("TSPLIT") and spec["NB"] == key[1], (spec, key)
    rkey = ("tsplit_rule", key, did, _sddmm_spec_key(M), M, dev, _specs.TALL_TSPLIT_TAIL,
            _specs.TALL_TSPLIT_MAX, _specs.TALL_TSPLIT_MIN_ROWS)
    rule = layout.plan_cache.get(rkey)
    if rule is None:
        rule = layout.plan_cache[rkey] = _specs.tall_tail_split(
            plan[0].shape[0], _resident(fn, nt, smem, dev), M, spec["BK"])
    pieces, rows, split = rule
    if not split:
        return None
    seg = _work_lists.tail_split_plan(layout, plan, key, split, pieces)[0]
    return fn, nt, smem, spec, boxes, seg, pieces, rows, split


def _tall_by_layout(layout, trans_w, bs, did, M, dev):
    """dsd_stream.cu's 512-row set at R 1 where it depends on the layout, else None (the
    spec's own): unset STREAM_TALL, a set on the item queue takes ``_specs.stream_tall_fallback``
    on a layout whose longest output column outlasts a row tile's share (``_specs.queue_fits``,
    the CTAs a wave by shared memory): the queue's items are whole columns."""
    t = _specs.stream_tall(bs, did, M)
    if _specs.STREAM_TALL is not None or not t or not _specs.STREAM_TALL_SETS[t - 1].get("QUEUE"):
        return None
    longest, blocks = _work_lists.longest_column(layout, trans_w)
    ctas = (_specs.smem_ctas("dsd_stream.cu", _specs.dsd_stream_spec(bs, did, M, trans_w, r=1,
                                                                     tall=t))
            * _device_attributes(dev)["MultiProcessorCount"])
    return None if _specs.queue_fits(longest, blocks, ctas) else _specs.stream_tall_fallback(M)


def _qlist_by_layout(layout, trans_w, bs, did, M, dev):
    """dsd_stream.cu's QLIST at R 1 by the layout (``_specs.qlist_ahead``): nonzero on the
    512-row queue set where an output block-column is long (``_specs.QLIST_FACTOR``)."""
    wgq = _specs.stream_wgq(bs, did, M, 1, _wgmma(dev))
    if not _specs.qlist_ahead(wgq, True):          # none on this set: skip the layout's count
        return 0
    return _specs.qlist_ahead(wgq, _work_lists.has_long_column(layout, trans_w,
                                                               _specs.QLIST_FACTOR))


def _counters(layout, n, stream):
    """Zeroed int32 split-K counters (at least ``n``) for launches on ``stream``. The kernel
    leaves them zero, so one buffer serves every launch on that stream."""
    import cupy

    key = ("counters", stream.ptr)
    buf = layout.plan_cache.get(key)
    if buf is None or buf.size < n:
        buf = cupy.zeros(max(n, 1024), dtype=cupy.int32)
        layout.plan_cache[key] = buf
    return buf


def _sddmm_spec_key(M):
    """What the sddmm specs read besides the block size and element code, for cache keys: the M
    boundaries they turn on (16, 32, 64, 512, SDDMM_TALL_FEW_STAGES_M, TALL_WGMMA16_STAGES4_M's,
    TALL_WGMMA16_NB2_M, TALL_BS32_CLAMPED_M) and the ``_specs`` switches, read at call time
    (tests and probes patch them)."""
    lo, hi = _specs.TALL_WGMMA16_STAGES4_M
    return (M <= 16, M <= 32, M <= 64, M <= 512, M <= _specs.SDDMM_TALL_FEW_STAGES_M, M <= lo,
            M <= hi, M <= _specs.TALL_WGMMA16_NB2_M,
            M <= _specs.TALL_BS32_CLAMPED_M, _specs.USE_WGMMA,
            _specs.F32_TALL_WGMMA, _specs.TALL_WGMMA16, _specs.TF32_REDO, _specs.TWO_WAY_PAIRS)


def _sddmm_launch(kind, bs, did, M, nb=None, mch=0, tsplit=False):
    """(function, threads, shared bytes, spec dict, tensor-map boxes) of sddmm kernel ``kind``
    for this block size, element code and M (``nb``: sddmm_tall.cu's segment size, None its
    default; ``mch``: its chunks of ``mch`` rows in one launch where the spec can, MCH;
    ``tsplit``: its segments split along M, TSPLIT). Cached by ``_sddmm_spec_key(M)``, so a
    repeated call builds no spec."""
    import cupy

    dev = cupy.cuda.runtime.getDevice()
    key = ("sddmm", kind, bs, did, _sddmm_spec_key(M), dev, nb, mch, tsplit)
    hit = _launches.get(key)
    if hit is None:
        name = "sddmm.cu" if kind == "column" else f"sddmm_{kind}.cu"

        if kind == "stream":
            spec = _specs.sddmm_stream_spec(bs, did, M, wgmma=_wgmma(dev))
        elif kind == "tall":
            spec = _specs.sddmm_tall_spec(bs, did, M, wgmma=_wgmma(dev), nb=nb, mch=mch,
                                          tsplit=tsplit)
        else:
            spec = {"column": _specs.sddmm_spec, "grouped": _specs.sddmm_grouped_spec,
                    "grouped_tma": _specs.sddmm_grouped_tma_spec}[kind](bs, did, M)
        spec = _fit(name, spec, dev)
        nt, smem = _specs.launch_shape(name, spec)[:2]
        boxes = _specs.tma_boxes(name, spec) if kind in ("grouped_tma", "tall", "stream") else ()
        hit = (_kernel(name, spec, "bsmm_" + name[:-3], smem), nt, smem, dict(spec), boxes)
        _launches[key] = hit
    return hit


def _dsd_call(layout, trans_w, did, M, N):
    """Everything about a dsd launch that depends on the layout and the problem's shape only
    (kernel, tables, workspace size, grids, the launch arguments that do not change); cached on
    the layout, so a repeated call costs one dict look-up here."""
    import cupy

    dev = cupy.cuda.runtime.getDevice()
    key = (trans_w, did, M, N, dev, _specs.DSD_KERNEL, _specs.USE_WGMMA, _specs.F32_SPLIT,
           _specs.STREAM_PERSIST, _specs.F32_WGMMA, _specs.STREAM_R, _specs.GROUP_SHARE_MAX,
           _specs.GROUP_BLOCK_SIZES, _specs.STREAM_TALL, _specs.STREAM_QUEUE, _specs.STREAM_WGQ,
           _specs.STREAM_WGQ_M, _specs.STREAM_WGQ_256_M, _specs.QLIST_AHEAD, _specs.QLIST_FACTOR,
           _specs.QUEUE_WALK, _specs.WALK_BY_LAYOUT_BS,
           _specs.WALK_SHARE_CAP, _specs.WALK_GAIN, _specs.GROUP_WALK, _specs.GROUP_BALANCE)
    calls = layout.plan_cache.setdefault("calls", {})
    hit = calls.get(key)
    if hit is None:
        bs = layout.blocksize
        kind = _specs.dsd_kernel(bs, did, M)
        if kind == "stream" and (not layout.nnzb
                                 or _arch(dev) < _specs.MIN_ARCH["dsd_stream.cu"]):
            kind = "column"                # a tensor map needs a stored block, and sm_90
        if kind == "grouped_tma" and (not layout.nnzb
                                      or _arch(dev) < _specs.MIN_ARCH["dsd_grouped_tma.cu"]):
            kind = "grouped"
        if len(calls) >= 256:          # many distinct M: forget the oldest shapes
            del calls[next(iter(calls))]
        wcp = None
        if kind == "grouped_tma" and _specs.copy_mode_by_layout(bs, did, M):
            # bulk copies or cp.async by the plan's blocks a copy (the same steps either way),
            # decided before anything compiles
            shape = _fit("dsd_grouped_tma.cu", _specs.dsd_grouped_tma_spec(bs, did, M, trans_w),
                         dev)
            wcp = int(_work_lists.blocks_per_copy(layout, trans_w, shape) < _specs.BULK_FROM)
        r = None
        if kind == "stream" and _specs.stream_group_by_layout(bs, did, M):
            # R = 4 where the layout's 4-column groups share enough of their x tiles
            r = _specs.stream_group(bs, did, M,
                                    share=_work_lists.group_step_share(layout, trans_w, 4,
                                                                       _specs.GROUP_WALK))
        tall, qlist = None, 0
        if kind == "stream" and (r or 1) == 1:
            tall = _tall_by_layout(layout, trans_w, bs, did, M, dev)
            qlist = _qlist_by_layout(layout, trans_w, bs, did, M, dev)
        fn, nt, smem, bm, spec, resident = _dsd_launch(bs, did, M, trans_w, kind, wcp, r, tall,
                                                       qlist)
        items = 0                      # > 0: the queue's items (one wave of resident CTAs)
        rows_per_launch = bm * _MAX_GRID_Y
        m_tiles = -(-min(M, rows_per_launch) // bm)
        if kind in ("grouped", "grouped_tma"):
            # GROUP_BALANCE on dsd_grouped_tma.cu only (measured there; its workspace capped)
            tables, nslots = _work_lists.dsd_grouped_plan(
                layout, trans_w, spec, m_tiles, resident,
                _specs.GROUP_BALANCE if kind == "grouped_tma" else None)
            width = spec["R"] * bs
            n_counters = (tables[1].shape[0]) * m_tiles
            tail = (_c_arg(N // bs, np.int32),)
            ctas = tables[0].shape[0]
        elif spec.get("R", 1) > 1:
            # dsd_stream.cu, a CTA a group of R output block-columns (the kernel takes the
            # chunk count, ctas, as its unused nchunks)
            r = spec["R"]
            *tables, nslots = _work_lists.dsd_group_plan(layout, trans_w, r,
                                                         walk=_specs.GROUP_WALK)
            tables, width, ctas = tuple(tables), r * bs, tables[0].shape[0]
            n_counters = tables[1].shape[0] * m_tiles
            tail = (_c_arg(N // bs, np.int32), _c_arg(ctas, np.int32))
        elif spec.get("QUEUE"):
            # dsd_stream.cu, one wave of CTAs taking (row tile, column) items from a counter;
            # each item walks its column in the layout's order: the CPU model's sharing on the
            # resident CTAs over 8 row tiles (v48: the same ranking from 1 to 16), fewer on a
            # layout of over 2**17 blocks so the model stays near 1M steps (0.3 s for both
            # walks at 2**17 on a 2-core CPU)
            tiles = max(1, min(8, (1 << 20) // max(layout.nnzb, 1)))
            walk = _specs.walk_by_share(bs, lambda w: _work_lists.queue_sharing(
                layout, trans_w, w, resident, ntiles=tiles, cap=_specs.WALK_SHARE_CAP))
            if spec.get("QLIST"):
                # the queue as a host-ordered list, one row an item (long columns QLIST row
                # tiles ahead; the last QLIST_ILV tiles interleaved)
                *tables, nslots = _work_lists.dsd_queue_list_plan(
                    layout, trans_w, m_tiles, spec["QLIST"], _specs.QLIST_ILV,
                    _specs.QLIST_FACTOR, walk)
            else:
                *tables, nslots = _work_lists.dsd_queue_plan(layout, trans_w, walk)
            tables, width, items = tuple(tables), bs, tables[0].shape[0]
            n_counters, tail = 2, (_c_arg(items, np.int32),)
        else:
            if spec.get("PERSIST"):
                # one wave: resident CTAs over the row tiles, each a run of equal entry count
                *tables, nslots = _work_lists.dsd_persist_plan(layout, trans_w,
                                                               max(1, resident // m_tiles))
                ctas = tables[3].shape[0] - 1
            else:
                chunk = _work_lists.chunk_blocks(layout, trans_w, m_tiles, spec.get("G", 1),
                                                 resident, _work_lists.chunk_fill(kind, did, M))
                *tables, nslots = _work_lists.dsd_plan(layout, trans_w, chunk)
                ctas = tables[0].shape[0]
            tables, width, n_counters, tail = tuple(tables), bs, (N // bs) * m_tiles, ()

        def wave(m):
            """The queue's CTAs for m rows: the resident ones, at most one an item (QLIST's
            list already counts the row tiles)."""
            units = 1 if spec.get("QLIST") else -(-m // bm)
            return min(max(1, resident), items * units)

        launches = [(r0, m, (wave(m), 1) if items else (ctas, -(-m // bm)),
                     (_c_arg(N, np.int64), _c_arg(m, np.int32)) + tail)
                    for r0 in range(0, M, rows_per_launch) for m in [min(rows_per_launch, M - r0)]]
        tma = ((kind, _specs.tma_boxes(f"dsd_{kind}.cu", spec), bs, spec.get("XLO", 0))
               if kind in ("stream", "grouped_tma") else None)
        if not (nslots or spec.get("QUEUE")):
            n_counters = 0             # no split column and no queue: no counters
        hit = (fn, nt, smem, tables, nslots * m_tiles * bm * width, n_counters, launches, tma)
        calls[key] = hit
    return hit


def dsd(x, data, layout, trans_w, out, alpha, beta, allow_tf32=False):
    """``out = alpha * x @ op(W) + beta * out`` on the GPU; see docs/design.md. Returns ``out``.

    x: (M, K_in) cupy, unit last stride. data: (nnzb, bs, bs) C-contiguous. out: (M, N)
    C-contiguous. All share one dtype (float16, bfloat16 or float32).
    """
    import cupy

    M, N = out.shape
    if M == 0 or N == 0:
        return out
    trans_w = bool(trans_w)
    fn, nt, smem, tables, ws_size, n_counters, launches, tma = _dsd_call(
        layout, trans_w, dtype_id(out.dtype, allow_tf32), M, N)
    x = _aligned_rows(x)
    y = _writable_target(out, beta)
    ws = counters = _cached_arg(0, np.uint64)   # null pointers: no column is split
    if ws_size:
        ws = cupy.empty(ws_size, dtype=cupy.float32)
    if n_counters:
        counters = _counters(layout, n_counters, cupy.cuda.get_current_stream())
    scal = _scalars(alpha, beta)
    xlo = None
    if tma and tma[3]:
        x, xlo = split_tf32(x)         # XLO: the kernel takes x's hi and lo planes
    for r0, m, grid, tail in launches:
        xs, ys = (x, y) if m == M else (x[r0:r0 + m], y[r0:r0 + m])
        if tma:
            kind, boxes, bs, _ = tma
            it = x.itemsize
            planes = (xs,) if xlo is None else (xs, xlo if m == M else xlo[r0:r0 + m])
            maps = tuple(_tensor_maps.tile_map(a.data.ptr, m, a.shape[1], a.strides[0], it, *box)
                         for a, box in zip(planes, boxes))
            if kind == "stream":
                # dsd_stream.cu: x (and its lo plane) and the stored blocks as tensor maps
                # (bm x bs and bs x bs tiles)
                head = maps + (_tensor_maps.tile_map(data.data.ptr, data.shape[0] * bs, bs,
                                                     bs * it, it, *boxes[-1]),)
            else:
                # dsd_grouped_tma.cu: x (and its lo plane) as tensor maps (slab boxes), blocks
                # by address
                head = maps + (data,)
        else:
            head = (xs, _ld_arg(x), data)
        fn(grid, (nt,), head + tables + (ws, counters, ys) + tail + scal, shared_mem=smem)
    return _write_back(out, y)


def split_tf32(x):
    """(hi, lo): float32 ``x`` (M, K) split into its 3xTF32 parts by split_tf32.cu, the bits
    the kernels' own split gives (tf32x3.cuh). Two new (M, K) arrays whose rows are padded to
    16 bytes (views of wider buffers), so each suits a tensor map."""
    import cupy

    M, K = x.shape
    kp = -(-K // 4) * 4
    hi = cupy.empty((M, kp), dtype=cupy.float32)[:, :K]
    lo = cupy.empty((M, kp), dtype=cupy.float32)[:, :K]
    if M and K:
        fn = _kernel("split_tf32.cu", _specs.SPLIT_TF32_SPEC, "bsmm_split_tf32", 0)
        fn((min(-(-K // 256), 64), min(M, _MAX_GRID_Y)), (256,),
           (x, _ld_arg(x), hi, lo, _c_arg(kp, np.int64), _c_arg(M, np.int32), _c_arg(K, np.int32)))
    return hi, lo


def _c_arg(value, dtype):
    """``value`` as a ready kernel argument of numpy type ``dtype``: CuPy converts a numpy scalar
    on every launch (about 1 us each), but passes a CNumpyArray's bytes as they are."""
    from cupy.cuda.function import CNumpyArray

    return CNumpyArray(np.array(value, dtype=dtype))


_arg_cache = {}


def _cached_arg(value, dtype):
    """``_c_arg``, cached for up to 256 distinct (value, dtype); -0.0 is made afresh, since it
    compares equal to 0.0 as a key."""
    if value == 0 and math.copysign(1.0, value) < 0:
        return _c_arg(value, dtype)
    key = (value, dtype)
    hit = _arg_cache.get(key)
    if hit is None:
        hit = _c_arg(value, dtype)
        if len(_arg_cache) < 256:
            _arg_cache[key] = hit
    return hit


def _scalars(alpha, beta):
    """(float32 alpha, float32 beta) kernel arguments."""
    return _cached_arg(alpha, np.float32), _cached_arg(beta, np.float32)


def _ld_arg(a):
    """Row stride of 2-D ``a`` in elements, as an int64 kernel argument."""
    return _cached_arg(a.strides[0] // a.itemsize, np.int64)


def _writable_target(out, beta):
    """``out`` if the kernels can write it in place (C-contiguous, 16-byte aligned), else an
    aligned scratch array, holding out's values when beta reads them (see ``_write_back``)."""
    import cupy

    if out._c_contiguous and out.data.ptr % 16 == 0:
        return out
    return astype(out, out.dtype) if beta != 0 else cupy.empty(out.shape, out.dtype)


def _write_back(out, target):
    """Copy a scratch ``target`` of ``_writable_target`` into ``out`` (bit copy); returns out."""
    if target is not out:
        bits(out)[...] = bits(target)
    return out


def sddmm(x, dy, layout, out_data, alpha, beta, allow_tf32=False):
    """``out_data[b] = alpha * x[:, c-block].T @ dy[:, k-block] + beta * out_data[b]`` on the GPU.

    x: (M, R), dy: (M, C) cupy with unit last stride; out_data: (nnzb, bs, bs) C-contiguous.
    Returns ``out_data``.
    """
    return _sddmm(x, dy, layout, out_data, alpha, beta, allow_tf32, coarse=True)


def _sddmm(x, dy, layout, out_data, alpha, beta, allow_tf32, coarse):
    """``sddmm``; ``coarse``: whether the call may run coarsened (``_coarse_sddmm``'s own
    launches may not)."""
    import cupy

    if layout.nnzb == 0:
        return out_data
    M = x.shape[0]
    if M == 0:
        # Empty reduction: alpha * 0 + beta * out. Bit-level writes, which CuPy also supports
        # for bfloat16 (all-zero bits are 0.0 in every float format).
        if beta == 0:
            bits(out_data).fill(0)
        else:
            scaled = from_float32(to_float32(out_data) * np.float32(beta), out_data.dtype)
            bits(out_data)[...] = bits(scaled)
        return out_data
    bs, did = layout.blocksize, dtype_id(out_data.dtype, allow_tf32)
    x = _aligned_rows(x)
    dy = _aligned_rows(dy)
    target = _writable_target(out_data, beta)
    if (coarse and _specs.coarse_wgrad(bs, did, M, 0.0)
            and _arch(cupy.cuda.runtime.getDevice()) >= _specs.MIN_ARCH["sddmm_tall.cu"]):
        # the rule could take the call on some layout (measured with sm_90's 2 bs kernels, the
        # TMA's sddmm_tall.cu; the copy runs anywhere): this layout's predicted cost
        for rule in _specs.COARSE_WGRAD_RULES[bs, did]:
            if not _specs.coarse_wgrad(bs, did, M, 0.0, rule):
                continue                       # below its min_m: no plan built for it
            plan = _work_lists.coarse_plan(layout, rule.least)
            cost = (None if plan is None else
                    _specs.coarse_cost(rule, layout.nnzb, plan.ncoarse, plan.nrest))
            if _specs.coarse_wgrad(bs, did, M, cost, rule):
                _coarse_sddmm(x, dy, plan, target, alpha, beta, did,
                              _specs.coarse_first(rule, plan.ncoarse, plan.nrest))
                return _write_back(out_data, target)
    kind = _specs.sddmm_kernel(bs, did, M)
    if kind == "stream" and (
            _arch(cupy.cuda.runtime.getDevice()) < _specs.MIN_ARCH["sddmm_stream.cu"]
            or (_specs.SDDMM_KERNEL is None and layout.nnzb < _specs.SDDMM_STREAM_MIN_BLOCKS)):
        kind = _specs.sddmm_kernel(bs, did)
    if kind in ("tall", "grouped_tma") and (_arch(cupy.cuda.runtime.getDevice())
                                             < _specs.MIN_ARCH[f"sddmm_{kind}.cu"]):
        kind = _specs.sddmm_kernel(bs, did)
    if kind == "grouped_tma":
        fn, nt, smem, spec, boxes = _sddmm_launch("grouped_tma", bs, did, M)
        items, gent, crow = _work_lists.sddmm_grouped_plan(layout, spec,
                                                           _grouped_tail(fn, nt, smem, kind, bs))
        fn((items.shape[0],), (nt,), _row_maps(x, dy, boxes)
           + (items, gent, crow, target, _cached_arg(M, np.int32),
              _cached_arg(dy.shape[1], np.int32)) + _scalars(alpha, beta), shared_mem=smem)
        return _write_back(out_data, target)
    if kind == "tall":
        chunk = _specs.sddmm_m_chunk(kind, did, M, bs)
        merge = (chunk if chunk < M and _specs.SDDMM_MERGE_CHUNKS != "0"
                 and -(-M // chunk) <= _MAX_GRID_Y else 0)
        nb = _tall_nb(layout, bs, did, M)
        fn, nt, smem, spec, boxes = _sddmm_launch("tall", bs, did, M, nb, merge)
        # one block-row's segments (seg, cols)
        half = did in (1, 2)
        cut = dict(largest_first=half, even=half and _specs.TALL_EVEN_SEGMENTS)
        plan = _work_lists.sddmm_plan(layout, spec["NB"], **cut)
        if spec.get("MCH"):
            # the chunks in one launch, chunk-major (grid y), each segment's flag zero between
            # launches (kept per stream on the layout, as split-K's counters)
            flags = _counters(layout, plan[0].shape[0], cupy.cuda.get_current_stream())
            fn((plan[0].shape[0], -(-M // chunk)), (nt,),
               _row_maps(x, dy, boxes) + plan + (target, _cached_arg(M, np.int32))
               + _scalars(alpha, beta)
               + (flags, _cached_arg(chunk, np.int32)), shared_mem=smem)
            return _write_back(out_data, target)
        if (chunk == M and _specs.TALL_TSPLIT == "1" and _specs.tall_tsplit_supported(spec)
                and M >= 2 * _specs.TALL_TSPLIT_MIN_ROWS):
            split = _tall_tail_split(layout, plan, _work_lists.sddmm_plan_key(spec["NB"], **cut),
                                     bs, did, M, nb)
            if split is not None:
                # the pieces' sums through ws (a slot a piece), a counter a split segment
                fn, nt, smem, spec, boxes, seg, pieces, rows, nsplit = split
                ws = cupy.empty(nsplit * pieces * _specs.tall_tsplit_floats(spec),
                                dtype=cupy.float32)
                counters = _counters(layout, nsplit, cupy.cuda.get_current_stream())
                fn((seg.shape[0],), (nt,),
                   _row_maps(x, dy, boxes) + (seg, plan[1], target, _cached_arg(M, np.int32))
                   + _scalars(alpha, beta)
                   + (ws, counters, _cached_arg(pieces, np.int32), _cached_arg(rows, np.int32)),
                   shared_mem=smem)
                return _write_back(out_data, target)
        for r0 in range(0, M, chunk):
            # float32 (sddmm_m_chunk): a launch per chunk of rows, the later ones adding
            # into the float32 blocks (beta 1)
            m = min(chunk, M - r0)
            xs, dys = (x, dy) if m == M else (x[r0:r0 + m], dy[r0:r0 + m])
            fn((plan[0].shape[0],), (nt,),
               _row_maps(xs, dys, boxes) + plan + (target, _cached_arg(m, np.int32))
               + _scalars(alpha, beta if r0 == 0 else 1.0), shared_mem=smem)
        return _write_back(out_data, target)
    if kind == "stream":
        fn, nt, smem, spec, boxes = _sddmm_launch("stream", bs, did, M)
        seg, cols = _work_lists.sddmm_plan(layout, _specs.SDDMM_STREAM_NB)
        it = x.itemsize
        maps = _row_maps(x, dy, boxes) + (
            _tensor_maps.tile_map(target.data.ptr, target.shape[0] * bs, bs, bs * it, it,
                                  *boxes[2]),)
        fn((seg.shape[0],), (nt,),
           maps + (seg, cols, target, _cached_arg(M, np.int32)) + _scalars(alpha, beta),
           shared_mem=smem)
        return _write_back(out_data, target)
    if kind == "grouped":
        fn, nt, smem, spec, _ = _sddmm_launch("grouped", bs, did, M)
        items, gent, crow = _work_lists.sddmm_grouped_plan(layout, spec,
                                                           _grouped_tail(fn, nt, smem, kind, bs))
        fn((items.shape[0],), (nt,), (x, _ld_arg(x), dy, _ld_arg(dy), items, gent, crow, target,
                                      _cached_arg(M, np.int32), _cached_arg(dy.shape[1], np.int32))
           + _scalars(alpha, beta), shared_mem=smem)
        return _write_back(out_data, target)
    ld = (_ld_arg(x), _ld_arg(dy))
    fn, nt, smem, spec, _ = _sddmm_launch("column", bs, did, M)
    seg, cols = _work_lists.sddmm_plan(layout, spec["NB"])
    fn((seg.shape[0],), (nt,), (x, ld[0], dy, ld[1], seg, cols, target, _cached_arg(M, np.int32))
       + _scalars(alpha, beta), shared_mem=smem)
    return _write_back(out_data, target)


def _row_maps(x, dy, boxes):
    """Tensor maps of x and dy (row-major, unit last stride) over all their rows, with the
    boxes ``boxes[0]`` and ``boxes[1]``: the sddmm kernels' first two arguments."""
    return tuple(_tensor_maps.tile_map(a.data.ptr, a.shape[0], a.shape[1], a.strides[0],
                                       a.itemsize, *box)
                 for a, box in ((x, boxes[0]), (dy, boxes[1])))


_SIDE_STREAMS = {}


def _side_stream(dev, here):
    """The side stream (non-blocking, made once) for work forked off stream ``here`` on device
    ``dev``: one per caller's stream, so that independent streams (or a graph being captured on
    one of them) share none."""
    import cupy

    key = (dev, here.ptr)
    side = _SIDE_STREAMS.get(key)
    if side is None:
        side = _SIDE_STREAMS.setdefault(key, cupy.cuda.Stream(non_blocking=True))
    return side


def _mark(stream):
    """An event (no timing) recorded on ``stream``, for another stream to wait on."""
    import cupy

    event = cupy.cuda.Event(disable_timing=True)
    event.record(stream)
    return event


def _coarse_sddmm(x, dy, plan, target, alpha, beta, did, coarse_first=False):
    """``sddmm`` on a 2 x 2 coarsened layout (``_work_lists.coarse_plan``'s ``plan``, with at
    least one coarse block): the 2bs x 2bs blocks of ``plan.coarse`` and the blocks left on the
    direct kernel (``plan.rest``, if any) into scratch, the two on two streams where
    ``_specs.coarse_overlap`` (the coarse one on the side stream, launched first, where
    ``coarse_first``, else the rest's), then coarse_blocks.cu copies each stored block out into
    ``target`` (C-contiguous, 16-byte aligned; + beta * target, rounded once more)."""
    import cupy

    bs = target.shape[1]
    parts = [None if lay is None else cupy.empty((lay.nnzb, size, size), dtype=target.dtype)
             for lay, size in ((plan.coarse, 2 * bs), (plan.rest, bs))]
    if parts[1] is None:
        _sddmm(x, dy, plan.coarse, parts[0], alpha, 0.0, False, coarse=False)
        parts[1] = parts[0]                                  # no rest: its pointer unread
    elif not _specs.coarse_overlap(did):
        _sddmm(x, dy, plan.coarse, parts[0], alpha, 0.0, False, coarse=False)
        _sddmm(x, dy, plan.rest, parts[1], alpha, 0.0, False, coarse=False)
    else:
        # one wgrad (the coarse one where ``coarse_first``, else the rest's) launched first on
        # a side stream forked from the caller's by an event, the other on the caller's; the
        # join comes whatever is raised, as the scratch (allocated on the caller's stream
        # before the fork) goes back to its pool. The side's sub-layout builds its plan tables
        # from the side's pool; they are read on that stream only (COARSE_SIDE unchanged).
        here = cupy.cuda.get_current_stream()
        side = _side_stream(cupy.cuda.runtime.getDevice(), here)
        first = 0 if coarse_first else 1
        lays = (plan.coarse, plan.rest)
        side.wait_event(_mark(here))
        try:
            with side:
                _sddmm(x, dy, lays[first], parts[first], alpha, 0.0, False, coarse=False)
            _sddmm(x, dy, lays[1 - first], parts[1 - first], alpha, 0.0, False, coarse=False)
        finally:
            here.wait_event(_mark(side))
    spec = _specs.coarse_blocks_spec(bs, did)
    nt = _specs.launch_shape("coarse_blocks.cu", spec)[0]
    n = plan.sub.shape[0] * bs * bs * target.itemsize // 16   # a thread per 16 bytes
    fn = _kernel("coarse_blocks.cu", spec, "bsmm_coarse_blocks", 0)
    fn((-(-n // nt),), (nt,), (parts[0], parts[1], plan.sub, target,
                               _cached_arg(plan.sub.shape[0], np.int32),
                               _cached_arg(beta, np.float32)))
