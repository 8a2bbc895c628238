"""Kernel choice and specialisations (``_specs``): which template serves each block size, dtype
and M, what the environment may force, and the specs behind the measured choices."""
import os

import pytest

from cupy_bsparse import _specs


def test_dsd_kernel_choice(monkeypatch):
    # 16-bit bs 8 and 16 above M = 16 take the TMA grouped kernel; 16-bit bs <= 16 at M <= 16,
    # TF32 bs 8 and float32 bs 8 (3xTF32) the cp.async one; 16-bit bs 32/64 and float32 bs
    # 16-64 (3xTF32) the TMA stream kernel
    assert _specs.dsd_kernel(8, 1, 64) == "grouped_tma"
    assert _specs.dsd_kernel(8, 2, 16) == "grouped"
    assert _specs.dsd_kernel(8, 1, 17) == "grouped_tma"
    # bs 8 x @ W^T copies its blocks with cp.async, the rest with bulk copies (WCP 0, unset)
    assert dict(_specs.dsd_grouped_tma_spec(8, 1, 64, True))["WCP"] == 1
    assert "WCP" not in dict(_specs.dsd_grouped_tma_spec(8, 1, 64, False))
    assert "WCP" not in dict(_specs.dsd_grouped_tma_spec(16, 2, 4096, True))
    # 16-bit bs 8 at 16 < M <= 64: the launcher sets the copy mode by the layout (wcp), which
    # changes nothing else in the spec; float32, bs 16 and M = 4096 keep the spec's rule
    for tw in (False, True):
        bulk = dict(_specs.dsd_grouped_tma_spec(8, 1, 64, tw, wcp=0))
        cpa = dict(_specs.dsd_grouped_tma_spec(8, 1, 64, tw, wcp=1))
        assert "WCP" not in bulk and cpa.pop("WCP") == 1 and cpa == bulk
        assert _specs.dsd_grouped_tma_spec(8, 1, 64, tw) == _specs.dsd_grouped_tma_spec(
            8, 1, 64, tw, wcp=1 if tw else 0)
    assert _specs.copy_mode_by_layout(8, 1, 64) and _specs.copy_mode_by_layout(8, 2, 17)
    assert not _specs.copy_mode_by_layout(8, 1, 65) and not _specs.copy_mode_by_layout(16, 1, 64)
    assert not _specs.copy_mode_by_layout(8, 1, 16)       # M <= 16: not measured
    assert not _specs.copy_mode_by_layout(8, 0, 64)
    assert 1.93 < _specs.BULK_FROM < 2.82     # between the two layouts p16 measured
    specs = {s for n, s, _ in _specs.all_specializations() if n == "dsd_grouped_tma.cu"}
    for did in (1, 2):
        for tw in (False, True):
            for wcp in (0, 1):
                assert _specs.dsd_grouped_tma_spec(8, did, 64, tw, wcp=wcp) in specs
    assert _specs.dsd_kernel(16, 2, 4096) == "grouped_tma"
    assert _specs.dsd_kernel(16, 2, 16) == "grouped"
    assert _specs.dsd_kernel(16, 1, 17) == "grouped_tma"
    assert _specs.dsd_kernel(8, _specs._TF32, 1) == "grouped"
    assert _specs.dsd_kernel(16, _specs._TF32, 64) == "column"
    assert _specs.dsd_kernel(64, 1, 64) == "stream"
    assert _specs.dsd_kernel(32, 2, 1) == "stream"
    assert _specs.dsd_kernel(64, 1, 4096) == "stream"
    assert _specs.dsd_kernel(64, _specs._TF32, 64) == "column"
    assert _specs.dsd_kernel(16, 1, 64) == "grouped_tma"   # no 16-bit bs 16 stream kernel
    for bs in (16, 32, 64):
        for M in (1, 64, 4096):
            assert _specs.dsd_kernel(bs, 0, M) == "stream"
            assert dict(_specs.dsd_stream_spec(bs, 0, M, False))["DTYPE_ID"] == _specs._F32X3
    for M in (1, 64, 4096):
        # float32 bs 8 (3xTF32): the TMA kernel above M = 16 (v16), the cp.async one up to it
        assert _specs.dsd_kernel(8, 0, M) == ("grouped" if M <= 16 else "grouped_tma")
        assert dict(_specs.dsd_grouped_spec(8, 0, M, True))["DTYPE_ID"] == _specs._F32X3
        assert dict(_specs.dsd_grouped_tma_spec(8, 0, M, True))["DTYPE_ID"] == _specs._F32X3
    assert dict(_specs.dsd_grouped_tma_spec(8, 0, 64, False))["KW"] == 64     # 128-byte rows
    assert "WCP" in dict(_specs.dsd_grouped_tma_spec(8, 0, 64, True))
    monkeypatch.setattr(_specs, "DSD_KERNEL", "grouped")
    assert _specs.dsd_kernel(16, 1, 64) == "grouped"
    assert _specs.dsd_kernel(8, 0, 64) == "grouped"
    assert _specs.dsd_kernel(16, 0, 64) == "column"     # no grouped float32 bs 16 kernel
    assert _specs.dsd_kernel(64, 1, 64) == "column"     # no grouped bs 64 kernel
    assert _specs.dsd_kernel(32, 1, 64) == "grouped"
    assert _specs.dsd_kernel(16, _specs._TF32, 64) == "grouped"
    monkeypatch.setattr(_specs, "DSD_KERNEL", "column")
    assert _specs.dsd_kernel(8, 1, 64) == "column"
    assert _specs.dsd_kernel(64, 1, 64) == "column"
    assert _specs.dsd_kernel(8, 0, 64) == "column"
    monkeypatch.setattr(_specs, "DSD_KERNEL", "stream")
    assert _specs.dsd_kernel(64, 2, 64) == "stream"
    assert _specs.dsd_kernel(64, 0, 64) == "stream"
    assert _specs.dsd_kernel(8, 0, 64) == "grouped"     # no bs 8 stream kernel
    monkeypatch.setattr(_specs, "DSD_KERNEL", "grouped_tma")
    assert _specs.dsd_kernel(8, 2, 4096) == "grouped_tma"
    assert _specs.dsd_kernel(8, 0, 1) == "grouped_tma"
    assert _specs.dsd_kernel(8, _specs._TF32, 64) == "grouped"  # no TF32 TMA kernel
    assert _specs.dsd_kernel(16, 0, 64) == "column"     # float32 bs 16: no grouped kernel


def test_wgmma_environment_value_checked():
    import subprocess
    import sys

    for value, ok in (("1", True), ("0", True), ("", True), ("true", False), (" 1", False)):
        r = subprocess.run([sys.executable, "-c", "import cupy_bsparse._specs as s; print(s.USE_WGMMA)"],
                           env={**os.environ, "CUPY_BSPARSE_WGMMA": value}, capture_output=True,
                           text=True)
        assert (r.returncode == 0) == ok, (value, r.stderr)
        if ok:
            assert r.stdout.strip() == str(value != "0")     # on unless "0" (v16)
        else:
            assert "CUPY_BSPARSE_WGMMA must be one of '0', '1'" in r.stderr


def test_dsd_kernel_environment_value_checked():
    assert _specs._kernel_choice("") is None
    assert _specs._kernel_choice("grouped") == "grouped"
    with pytest.raises(ValueError, match="CUPY_BSPARSE_DSD_KERNEL"):
        _specs._kernel_choice("fast")


def test_sddmm_kernel_choice(monkeypatch):
    # 16-bit bs 32/64 take the TMA kernels: stream at M <= 64 (sddmm() also wants a layout of
    # at least SDDMM_STREAM_MIN_BLOCKS blocks unless forced), tall above; bs 8/16 the grouped one
    assert _specs.sddmm_kernel(32, 1, 64) == "stream"
    assert _specs.sddmm_kernel(32, 2, 1) == "stream"
    assert _specs.sddmm_kernel(32, 1, 65) == "tall"
    assert _specs.sddmm_kernel(32, _specs._TF32, 4096) == "column"   # no float32 TMA kernel
    assert _specs.sddmm_kernel(64, 1, 64) == "stream"
    assert _specs.sddmm_kernel(32, 0, 32) == "stream"       # float32: 3xTF32
    assert _specs.sddmm_kernel(32, 0, 33) == "tall"         # float32 bs 32 above M = 32 (v24)
    assert _specs.sddmm_kernel(32, 0, 64) == "tall"
    # float32 bs 16 (3xTF32): grouped up to M = 16, tall above (16-row steps up to M = 64)
    assert _specs.sddmm_kernel(16, 0, 1) == "grouped"
    assert _specs.sddmm_kernel(16, 0, 16) == "grouped"
    assert _specs.sddmm_kernel(16, 0, 17) == "tall"
    assert _specs.sddmm_kernel(16, 0, 65) == "tall"
    assert dict(_specs.sddmm_grouped_spec(16, 0, 16))["DTYPE_ID"] == _specs._F32X3
    assert dict(_specs.sddmm_tall_spec(16, 0, 64))["BK"] == 16
    assert dict(_specs.sddmm_tall_spec(16, 0, 65))["BK"] == 32
    assert dict(_specs.sddmm_tall_spec(16, 0))["NB"] == 8
    assert dict(_specs.sddmm_tall_spec(16, 0, 65))["STAGES"] == 2           # v26
    assert dict(_specs.sddmm_tall_spec(16, 0, 64))["STAGES"] == 4
    assert _specs.sddmm_kernel(64, 0, 4096) == "tall"
    assert _specs.sddmm_kernel(8, 0, 4096) == "grouped"     # float32 bs 8: 3xTF32
    assert dict(_specs.sddmm_grouped_spec(8, 0, 4096))["DTYPE_ID"] == _specs._F32X3
    assert dict(_specs.sddmm_grouped_spec(8, 0, 64))["PAIRS"] == 1      # two blocks a tile
    assert dict(_specs.sddmm_grouped_spec(8, 1, 4096))["MK"] == 64       # 64-row steps (v12)
    assert dict(_specs.sddmm_grouped_spec(8, 0, 4096))["MK"] == 32
    assert _specs.sddmm_kernel(8, 1, 64) == "grouped"
    assert _specs.sddmm_kernel(8, 1, 512) == "grouped"         # 16-bit bs 8 pairs: TMA above
    assert _specs.sddmm_kernel(8, 2, 513) == "grouped_tma"     # M = 512 (v16)
    assert _specs.sddmm_kernel(8, 0, 4096) == "grouped"        # float32 stays on cp.async
    assert dict(_specs.sddmm_tall_spec(32, 0, 4096))["KSUM"] == 16
    # float32 bs 64 on wgmma (sm_90a): one warpgroup for two blocks, their planes in shared memory
    wg = dict(_specs.sddmm_tall_spec(64, 0, 4096, wgmma=True))
    assert (wg["WGMMA"], wg["NB"], wg["BK"]) == (1, 2, 16)
    assert _specs.sddmm_tall_launch_shape(tuple(wg.items()))[:2] == (160, 1024 + 4 * (3 * 4096 + 16)
                                                                      + 2 * 64 * 128)
    assert "WGMMA" not in dict(_specs.sddmm_tall_spec(64, 0, 4096))
    assert "WGMMA" not in dict(_specs.sddmm_tall_spec(32, 0, 4096, wgmma=True))
    # 16-bit bs 32: a 2-stage ring above M = 1024 (v25)
    assert dict(_specs.sddmm_tall_spec(32, 1, 1025))["STAGES"] == 2
    assert dict(_specs.sddmm_tall_spec(32, 2, 1024))["STAGES"] == 3
    assert dict(_specs.sddmm_tall_spec(32, 1))["STAGES"] == 3
    assert "KSUM" not in dict(_specs.sddmm_tall_spec(16, 0, 4096))
    assert dict(_specs.sddmm_grouped_tma_spec(8, 1, 64))["PAIRS"] == 1
    assert "PAIRS" not in dict(_specs.sddmm_grouped_tma_spec(16, 1, 64))
    assert _specs.sddmm_kernel(16, 1, 16) == "grouped"       # faster there (v12)
    assert _specs.sddmm_kernel(16, 1, 17) == "grouped_tma"
    assert _specs.sddmm_kernel(16, 2, 65) == "grouped_tma"
    # its own items up to M = 512, sddmm_grouped.cu's above
    assert dict(_specs.sddmm_grouped_tma_spec(16, 1, 512))["NCX"] == 16
    assert dict(_specs.sddmm_grouped_tma_spec(16, 1, 513))["NCX"] == 32
    assert _specs.sddmm_kernel(16, _specs._TF32, 4096) == "grouped"
    assert dict(_specs.sddmm_stream_spec(32, 1, 7))["BK"] == 16
    assert dict(_specs.sddmm_stream_spec(32, 1, 33))["BK"] == 64
    # wgmma consumers: 16-bit bs 64 at 16 < M only, one warpgroup
    for did, bs, M, want in ((1, 64, 64, 1), (2, 64, 17, 1), (1, 64, 16, 0), (1, 32, 64, 0),
                             (0, 64, 64, 0)):
        p = dict(_specs.sddmm_stream_spec(bs, did, M, wgmma=True))
        assert p.get("WGMMA", 0) == want
        if want:
            assert (p["WARPS_M"], p["WARPS_N"]) == (4, 1)
        else:                     # elsewhere the mma.sync spec, unchanged
            assert p == dict(_specs.sddmm_stream_spec(bs, did, M))
    assert "WGMMA" not in dict(_specs.sddmm_stream_spec(64, 1, 64))
    assert _specs.sddmm_kernel(8, 1) == "grouped"
    assert _specs.sddmm_kernel(16, _specs._TF32) == "grouped"
    assert _specs.sddmm_kernel(32, 1) == "column"
    assert _specs.sddmm_kernel(8, 0) == "grouped"
    assert _specs.sddmm_kernel(16, 0) == "grouped"     # float32 bs 16: 3xTF32 as well
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "grouped_tma")
    assert _specs.sddmm_kernel(16, 1, 64) == "grouped_tma"
    assert _specs.sddmm_kernel(16, 1) == "grouped"             # no M: the fallback
    assert _specs.sddmm_kernel(8, 1, 64) == "grouped_tma"      # bs 8 pairs, forced
    assert _specs.sddmm_kernel(8, 0, 64) == "grouped_tma"
    assert _specs.sddmm_kernel(32, 1, 64) == "column"          # no grouped bs 32 kernel
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "stream")
    assert _specs.sddmm_kernel(16, 0, 64) == "stream"       # forced, it serves float32 bs 16
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "grouped")
    assert _specs.sddmm_kernel(16, 0, 4096) == "grouped"
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "column")
    assert _specs.sddmm_kernel(8, 2) == "column"
    assert _specs.sddmm_kernel(8, 0, 64) == "column"
    assert _specs.sddmm_kernel(32, 1, 64) == "column"
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "tall")
    assert _specs.sddmm_kernel(64, 1, 7) == "tall"
    assert _specs.sddmm_kernel(16, 1, 4096) == "grouped"   # no 16-bit bs 16 tall kernel
    assert _specs.sddmm_kernel(16, 0, 7) == "tall"
    with pytest.raises(ValueError, match="CUPY_BSPARSE_SDDMM_KERNEL"):
        _specs._kernel_choice("x", "CUPY_BSPARSE_SDDMM_KERNEL")


def test_tma_boxes_are_copyable():
    """Every tensor-map box the launchers ask for (``tma_boxes``, one source for launcher and
    kernel layout) is one the TMA can copy: rows of 32, 64 or 128 bytes, at most
    256 of them; checked for every specialisation of every TMA template, without a GPU."""
    from cupy_bsparse import _tensor_maps

    names = {n for n, arch in _specs.MIN_ARCH.items() if arch >= 90}
    seen = set()
    for name, spec, _ in _specs.all_specializations():
        if name in names:
            esz = _specs._itemsize(dict(spec)["DTYPE_ID"])
            for box in _specs.tma_boxes(name, spec):
                _tensor_maps.check_box(esz, *box)
            seen.add(name)
    assert seen == names
    with pytest.raises(ValueError, match="no tensor map box"):
        _tensor_maps.check_box(4, 64, 64)                  # 256-byte rows
    with pytest.raises(ValueError, match="copies nothing"):
        _specs.tma_boxes("dsd.cu", _specs.dsd_spec(32, 1, 64, False))


@pytest.mark.parametrize("arch", [80, 86, 90, 120])
def test_every_specialisation_fits_its_gpu(arch):
    """No launch asks for more shared memory or threads than the GPU allows (on sm_80 the
    16-bit bs 16 sddmm asked for 196 KB of 163 KB); sm_90's specialisations are the tuned ones,
    unchanged; none is left out but, on sm_120 (99 KB), the forced-only float32 bs 8 pairs on
    sddmm_grouped_tma.cu and the float32 specs that take x split ahead (F32_SPLIT "pass":
    XLO), which may not fit smaller GPUs (the launcher falls back to the
    default spec there)."""
    from cupy_bsparse import compiler

    dropped = []
    for name, spec, _ in _specs.all_specializations():
        if arch < _specs.MIN_ARCH.get(name, 0) or (arch != 90 and compiler.needs_sm90a(spec)):
            continue
        try:
            _specs.fit_shared(name, spec, _specs.SMEM_LIMIT[arch])
        except RuntimeError:
            dropped.append((name, dict(spec)))
    dropped = [(n, s) for n, s in dropped if not s.get("XLO")]
    assert all(n == "sddmm_grouped_tma.cu" and s["BS"] == 8 and s["DTYPE_ID"] == _specs._F32X3
               for n, s in dropped) and (arch == 120) == bool(dropped), dropped
    for name, spec, _ in _specs.device_specializations(arch):
        threads, smem = _specs.launch_shape(name, spec)[:2]
        assert smem <= _specs.SMEM_LIMIT[arch], (name, dict(spec), smem)
        assert 0 < threads <= 1024, (name, dict(spec), threads)
    if arch == 90:
        assert _specs.fitted_specializations(90) == []
        assert len(_specs.device_specializations(90)) == len(_specs.all_specializations())
    else:
        assert _specs.fitted_specializations(arch)


def test_fit_shared_steps():
    spec = _specs.sddmm_grouped_spec(16, 1, 64)             # 3 stages of 32 rows: 196 KB
    assert _specs.sddmm_grouped_launch_shape(spec)[1] > 166912
    a100 = dict(_specs.fit_shared("sddmm_grouped.cu", spec, 166912))
    assert (a100["STAGES"], a100["MK"]) == (2, 32)          # fewer stages first
    small = dict(_specs.fit_shared("sddmm_grouped.cu", spec, 101376))
    assert small["STAGES"] == 2 and small["MK"] % 16 == 0 and small["MK"] < 32
    big = dict(_specs.sddmm_grouped_spec(16, 1, 4096))       # 48-row steps halve to 16, not 24
    assert dict(_specs.fit_shared("sddmm_grouped.cu", tuple(sorted(big.items())), 101376))["MK"] == 16
    assert _specs.fit_shared("sddmm_grouped.cu", spec, 1 << 20) == spec
    with pytest.raises(RuntimeError, match="needs .* bytes of shared memory .* allows 4096"):
        _specs.fit_shared("sddmm_grouped.cu", spec, 4096)


def test_f32_split_specs():
    """F32_SPLIT's specs (opt-in): float32 only; "pass" sets XLO (grouped: 2 stages, the
    default's steps at M <= 64, two CTAs an SM; stream: no fewer CTAs an SM by shared memory
    than the default, up to 4, else the default spec), with one more tensor-map box (x's lo
    plane, x's box); other dtypes are unchanged; dsd_grouped_tma_spec takes no other split."""
    for M in (1, 64, 4096):
        for tw in (False, True):
            base = dict(_specs.dsd_grouped_tma_spec(8, 0, M, tw))
            lo = dict(_specs.dsd_grouped_tma_spec(8, 0, M, tw, split="pass"))
            assert lo["XLO"] == 1
            assert _specs.dsd_grouped_tma_launch_shape(tuple(sorted(lo.items())))[1] <= 113 * 1024
            with pytest.raises(ValueError, match="split must be None or 'pass'"):
                _specs.dsd_grouped_tma_spec(8, 0, M, tw, split="slab")
            assert lo["STAGES"] == 2
            if M <= 64:
                assert (lo["KW"], lo["CAP"]) == (base["KW"], base["CAP"])
            boxes = _specs.tma_boxes("dsd_grouped_tma.cu", tuple(sorted(lo.items())))
            assert boxes == _specs.tma_boxes("dsd_grouped_tma.cu", tuple(sorted(base.items()))) * 2
            for did in (1, 2):
                assert (_specs.dsd_grouped_tma_spec(8, did, M, tw, split="pass")
                        == _specs.dsd_grouped_tma_spec(8, did, M, tw))
            for bs in (16, 32, 64):
                b = _specs.dsd_stream_spec(bs, 0, M, tw)
                p = _specs.dsd_stream_spec(bs, 0, M, tw, split="pass")
                sb, sp = (_specs.dsd_stream_launch_shape(s)[1] for s in (b, p))
                assert _specs._ctas_by_smem(sp) >= min(4, _specs._ctas_by_smem(sb))
                if bs == 32 and M > 64:
                    assert p == b      # XLO would cost a CTA an SM: the default
                    continue
                assert dict(p)["XLO"] == 1 and dict(p)["STAGES"] >= 2
                xb, wb = _specs.tma_boxes("dsd_stream.cu", b)
                assert _specs.tma_boxes("dsd_stream.cu", p) == (xb, xb, wb)
                assert _specs.dsd_stream_spec(bs, 1, M, tw, split="pass") == \
                    _specs.dsd_stream_spec(bs, 1, M, tw)
                assert "XLO" not in dict(_specs.dsd_stream_spec(bs, 0, M, tw, split="slab"))
    assert ("split_tf32.cu", _specs.SPLIT_TF32_SPEC, "bsmm_split_tf32") in _specs.all_specializations()
    assert _specs.launch_shape("split_tf32.cu", _specs.SPLIT_TF32_SPEC) == (256, 0)


def test_grouped_tma_producer_warps():
    """dsd_grouped_tma.cu's PW: two producer warps by default for 16-bit bs 8 (v22, v23), one
    elsewhere; one warp a CTA more per producer warp, the same shared memory and steps; PW 1
    leaves the spec as it was before PW existed."""
    for bs, did, tw, want in ((8, 1, False, 2), (8, 2, True, 2), (16, 2, True, 1), (16, 1, False, 1),
                              (8, 0, False, 1)):
        base = _specs.dsd_grouped_tma_spec(bs, did, 64, tw)
        assert dict(base).get("PW", 1) == want, (bs, did)
        one = _specs.dsd_grouped_tma_spec(bs, did, 64, tw, pw=1)
        assert "PW" not in dict(one)
        two = _specs.dsd_grouped_tma_spec(bs, did, 64, tw, pw=_specs.PW_PROBE)
        assert {k: v for k, v in two if k != "PW"} == dict(one) and dict(two)["PW"] == 2
        (t1, s1, m1), (t2, s2, m2) = (_specs.dsd_grouped_tma_launch_shape(x) for x in (one, two))
        assert t2 == t1 + 32 and (s2, m2) == (s1, m1)
    for bad in (0, 3, 4):   # more than two spill at two CTAs an SM
        with pytest.raises(ValueError, match="pw must be 1 or 2"):
            _specs.dsd_grouped_tma_spec(16, 1, 64, False, pw=bad)


def test_grouped_tma_f32_consumer_warps(monkeypatch):
    """float32 bs 8 on dsd_grouped_tma.cu: F32_GROUP_WARPS consumer warps of 4 block-columns
    above M = 64 (v58: 7, R 28, so a CTA is 8 warps and two CTAs an SM leave 128 registers a
    thread), 8 warps and R 32 up to M = 64 and for 16-bit; the shared memory and row tile are
    the 8-warp spec's, the CTA a warp smaller."""
    assert _specs.F32_GROUP_WARPS == 7
    for M in (65, 300, 4096):
        for tw in (False, True):
            for split in (None, "pass"):
                p = dict(_specs.dsd_grouped_tma_spec(8, 0, M, tw, split=split))
                assert (p["WARPS_N"], p["R"]) == (7, 28), (M, tw, split)
    for bs, did, M in ((8, 0, 64), (8, 0, 16), (8, 1, 4096), (8, 2, 300), (16, 1, 4096)):
        p = dict(_specs.dsd_grouped_tma_spec(bs, did, M, False))
        assert (p["WARPS_N"], p["R"]) == (8, 256 // bs), (bs, did, M)
    seven = _specs.dsd_grouped_tma_spec(8, 0, 4096, False, split="pass")
    monkeypatch.setattr(_specs, "F32_GROUP_WARPS", 8)
    eight = _specs.dsd_grouped_tma_spec(8, 0, 4096, False, split="pass")
    assert dict(eight)["R"] == 32
    (t7, s7, m7), (t8, s8, m8) = (_specs.dsd_grouped_tma_launch_shape(x) for x in (seven, eight))
    assert (t7, t8) == (256, 288) and (s7, m7) == (s8, m8)


def test_f32_split_defaults_and_forcing(monkeypatch):
    """float32 takes x split ahead ("pass") where v21 measured it faster: dsd_grouped_tma.cu
    at bs 8 (any M), dsd_stream.cu at bs 64 with 16 < M <= 64; nowhere else. A forced
    F32_SPLIT applies to those two kernels at every bs and M, "off" as None; the weight
    gradient's kernels never take a split."""
    monkeypatch.setattr(_specs, "F32_SPLIT", None)
    pick = _specs.f32_split
    assert pick("dsd_grouped_tma.cu", 8, 64) == pick("dsd_grouped_tma.cu", 8, 4096) == "pass"
    assert pick("dsd_stream.cu", 64, 64) == pick("dsd_stream.cu", 64, 17) == "pass"
    for args in (("dsd_stream.cu", 64, 16), ("dsd_stream.cu", 64, 65), ("dsd_stream.cu", 32, 64),
                 ("dsd_stream.cu", 16, 64), ("sddmm_grouped.cu", 8, 64),
                 ("dsd_grouped.cu", 8, 7), ("sddmm_grouped.cu", 16, 4096)):
        assert pick(*args) is None, args
    for forced, want in (("off", None), ("pass", "pass")):
        monkeypatch.setattr(_specs, "F32_SPLIT", forced)
        assert pick("dsd_grouped_tma.cu", 8, 64) == pick("dsd_stream.cu", 16, 4096) == want
        for args in (("sddmm_grouped.cu", 8, 64), ("sddmm_grouped.cu", 16, 4096),
                     ("sddmm_tall.cu", 16, 4096), ("dsd_grouped.cu", 8, 7)):
            assert pick(*args) is None, args


def test_f32_split_environment_value_checked():
    import subprocess
    import sys

    for value, want in (("", "None"), ("off", "off"), ("pass", "pass"), ("slab", None),
                        ("1", None)):
        r = subprocess.run([sys.executable, "-c", "import cupy_bsparse._specs as s; print(s.F32_SPLIT)"],
                           env={**os.environ, "CUPY_BSPARSE_F32_SPLIT": value}, capture_output=True,
                           text=True)
        assert (r.returncode == 0) == (want is not None), (value, r.stderr)
        if want is None:
            assert "CUPY_BSPARSE_F32_SPLIT must be one of 'off', 'pass'" in r.stderr
        else:
            assert r.stdout.strip() == want


def test_sddmm_grouped_two_way_spec(monkeypatch):
    """TPAIRS (v53) on sddmm_grouped.cu: float32 bs 8 pairs on SOFF only (not 16-bit or bs 16,
    never the TMA kernel); two_way=None follows _specs.TWO_WAY_PAIRS (None / "1" on, "0"
    off); CI compiles both settings at both M regimes whatever the switch; the launch cache key
    holds the switch; the environment variable takes "0" / "1" only."""
    from cupy_bsparse import _gpu_ops

    for M in (1, 64, 4096):
        off = dict(_specs.sddmm_grouped_spec(8, 0, M, two_way=False))
        on = dict(_specs.sddmm_grouped_spec(8, 0, M, two_way=True))
        assert on.pop("TPAIRS") == 1 and on == off and "TPAIRS" not in off
        for bs, did in ((8, 1), (8, 2), (16, 0)):
            assert "TPAIRS" not in dict(_specs.sddmm_grouped_spec(bs, did, M, two_way=True))
        for value, want in ((None, 1), ("0", None), ("1", 1)):
            monkeypatch.setattr(_specs, "TWO_WAY_PAIRS", value)
            assert dict(_specs.sddmm_grouped_spec(8, 0, M)).get("TPAIRS") == want
            assert "TPAIRS" not in dict(_specs.sddmm_grouped_tma_spec(8, 0, M))
            assert _gpu_ops._sddmm_spec_key(M)[-1] == value
    for value in (None, "1"):
        monkeypatch.setattr(_specs, "TWO_WAY_PAIRS", value)
        listed = {(dict(spec)["MK"], dict(spec).get("TPAIRS", 0), dict(spec).get("TF32_REDO", 0))
                  for name, spec, _ in _specs.all_specializations()
                  if name == "sddmm_grouped.cu" and dict(spec)["BS"] == 8
                  and dict(spec)["DTYPE_ID"] == _specs._F32X3}
        assert listed == {(mk, t, r) for mk in (16, 32) for t in (0, 1) for r in (0, 1)}
    test_queue_order_env("TWO_WAY_PAIRS", ((None, "None"), ("0", "0"), ("1", "1")))
    test_queue_order_env("SDDMM_GROUPED_TAIL", ((None, "None"), ("0", "0"), ("1", "1")))


def test_grouped_tail_on(monkeypatch):
    """SDDMM_GROUPED_TAIL (v54): None orders the tail on sddmm_grouped.cu at bs 8 and 16 and on
    sddmm_grouped_tma.cu at bs 16, not on sddmm_grouped_tma.cu at bs 8 (p59: +0.9% there);
    "1" everywhere, "0" nowhere."""
    cases = [(k, bs) for k in ("grouped", "grouped_tma") for bs in (8, 16)]
    for value, want in ((None, [True, True, False, True]), ("1", [True] * 4),
                        ("0", [False] * 4)):
        monkeypatch.setattr(_specs, "SDDMM_GROUPED_TAIL", value)
        assert [_specs.grouped_tail_on(k, bs) for k, bs in cases] == want


def test_grouped_tail_launch(monkeypatch):
    """_gpu_ops._grouped_tail (the tail a grouped sddmm launch passes to its plan) follows
    grouped_tail_on for the launch's kernel and block size: two waves of resident CTAs where
    on, 0 where off; cached per function, so a second call does not ask the device again.
    The device is faked here (no GPU needed)."""
    cupy = pytest.importorskip("cupy")
    from types import SimpleNamespace

    from cupy_bsparse import _gpu_ops

    asked = []
    monkeypatch.setattr(cupy.cuda.runtime, "getDevice", lambda: 0)
    monkeypatch.setattr(_gpu_ops, "_resident", lambda fn, nt, smem, dev: asked.append(fn) or 66)
    monkeypatch.setattr(_gpu_ops, "_TAILS", {})
    cases = [("grouped", 8), ("grouped", 16), ("grouped_tma", 8), ("grouped_tma", 16)]
    for value, want in ((None, [132, 132, 0, 132]), ("1", [132] * 4), ("0", [0] * 4)):
        monkeypatch.setattr(_specs, "SDDMM_GROUPED_TAIL", value)
        fns = [SimpleNamespace(kernel=SimpleNamespace(ptr=i)) for i in range(4)]
        got = [_gpu_ops._grouped_tail(fn, 512, 1024, k, bs) for fn, (k, bs) in zip(fns, cases)]
        assert got == want
    assert len(asked) == 3 + 1          # None: three launches on; "1": the fourth is new


def test_sddmm_grouped_tf32_redo_spec(monkeypatch):
    """TF32_REDO on sddmm_grouped.cu: only float32 bs 8's pairs (not 16-bit, TF32 or bs 16); redo=None follows _specs.TF32_REDO (None / "1" on, the
    default since v52; "0" off); CI compiles both the redo and the clamped specs at both M
    regimes; the environment variable takes "0" / "1" only."""
    for M in (1, 64, 4096):
        base = dict(_specs.sddmm_grouped_spec(8, 0, M, redo=False))
        on = dict(_specs.sddmm_grouped_spec(8, 0, M, redo=True))
        assert on.pop("TF32_REDO") == 1 and on == base and "TF32_REDO" not in base
        for bs, did in ((8, 1), (8, 2), (8, _specs._TF32), (16, 0), (16, 1)):
            assert "TF32_REDO" not in dict(_specs.sddmm_grouped_spec(bs, did, M, redo=True))
        # sddmm_grouped_tma.cu takes the grouped kernel's items, not its redo
        assert "TF32_REDO" not in dict(_specs.sddmm_grouped_tma_spec(8, 0, M))
        # SOFF (v53): the grouped kernel's float32 pairs, whatever the redo, not the TMA
        # kernel's (its table keeps slots)
        assert base["SOFF"] == on["SOFF"] == 1
        for bs, did in ((8, 1), (8, 2), (16, 0)):
            assert "SOFF" not in dict(_specs.sddmm_grouped_spec(bs, did, M))
        for did in (0, 1, 2):
            assert "SOFF" not in dict(_specs.sddmm_grouped_tma_spec(8, did, M))
        for value, want in ((None, 1), ("1", 1), ("0", None)):
            monkeypatch.setattr(_specs, "TF32_REDO", value)
            assert dict(_specs.sddmm_grouped_spec(8, 0, M)).get("TF32_REDO") == want
        assert "TF32_REDO" not in dict(_specs.sddmm_grouped_spec(8, 0, M, redo=False))
    for value in ("1", "0"):   # the listing is the same whatever the switch says
        monkeypatch.setattr(_specs, "TF32_REDO", value)
        listed = [dict(spec) for name, spec, _ in _specs.all_specializations()
                  if name == "sddmm_grouped.cu" and dict(spec)["BS"] == 8
                  and dict(spec)["DTYPE_ID"] == _specs._F32X3]
        assert {(sp["MK"], sp.get("TF32_REDO", 0)) for sp in listed} == {
            (16, 0), (16, 1), (32, 0), (32, 1)}   # M <= 512 and above, both splits
    test_queue_order_env("TF32_REDO", ((None, "None"), ("0", "0"), ("1", "1")))


def test_sddmm_tall_redo_off_at_small_m(monkeypatch):
    """float32 bs 32 on sddmm_tall.cu keeps the clamped split up to M = 256 (v56: TF32_REDO
    22% slower at M = 64), unless TF32_REDO is forced or ``redo`` given; bs 16 keeps the redo
    at every M; the launch cache key tells M = 256 from 257."""
    from cupy_bsparse import _gpu_ops

    monkeypatch.setattr(_specs, "TF32_REDO", None)
    assert _specs.TALL_BS32_CLAMPED_M == 256
    for M, want in ((1, None), (64, None), (256, None), (257, 1), (4096, 1), (None, 1)):
        assert dict(_specs.sddmm_tall_spec(32, 0, M)).get("TF32_REDO") == want
        assert dict(_specs.sddmm_tall_spec(16, 0, M)).get("TF32_REDO") == 1
        assert dict(_specs.sddmm_tall_spec(32, 0, M, redo=True)).get("TF32_REDO") == 1
    monkeypatch.setattr(_specs, "TF32_REDO", "1")
    assert dict(_specs.sddmm_tall_spec(32, 0, 64)).get("TF32_REDO") == 1
    assert _gpu_ops._sddmm_spec_key(256) != _gpu_ops._sddmm_spec_key(257)


def test_sddmm_tall_tf32_redo_spec(monkeypatch):
    """TF32_REDO on sddmm_tall.cu: float32 on the mma.sync consumers (segments) only, not
    on wgmma consumers or 16-bit; on by default; CI compiles bs 16, 32 and 64 with MCH both
    with and without it."""
    for bs in (16, 32, 64):
        base = dict(_specs.sddmm_tall_spec(bs, 0, 4096, mch=1024, redo=False))
        on = dict(_specs.sddmm_tall_spec(bs, 0, 4096, mch=1024, redo=True))
        assert on.pop("TF32_REDO") == 1 and on == base and "TF32_REDO" not in base
        monkeypatch.setattr(_specs, "TF32_REDO", None)
        assert dict(_specs.sddmm_tall_spec(bs, 0, 4096, mch=1024)).get("TF32_REDO") == 1
        monkeypatch.setattr(_specs, "TF32_REDO", "0")
        assert "TF32_REDO" not in dict(_specs.sddmm_tall_spec(bs, 0, 4096, mch=1024))
    assert "TF32_REDO" not in dict(_specs.sddmm_tall_spec(64, 0, 4096, True, redo=True))
    for did in (1, 2):
        assert "TF32_REDO" not in dict(_specs.sddmm_tall_spec(32, did, 4096, redo=True))
    for value in (None, "0"):
        monkeypatch.setattr(_specs, "TF32_REDO", value)
        listed = {(dict(spec)["BS"], dict(spec).get("TF32_REDO", 0))
                  for name, spec, _ in _specs.all_specializations()
                  if name == "sddmm_tall.cu" and dict(spec).get("MCH")}
        assert listed == {(bs, r) for bs in (16, 32, 64) for r in (0, 1)}


def test_grouped_tma_unsigned_columns():
    """dsd_grouped_tma.cu's UCOL: on by default for 16-bit (v23), off for float32; UCOL 0 is
    the spec without it."""
    for bs, did, want in ((8, 1, 1), (16, 2, 1), (8, 0, 0)):
        base = _specs.dsd_grouped_tma_spec(bs, did, 64, False)
        assert dict(base).get("UCOL", 0) == want
        off = dict(_specs.dsd_grouped_tma_spec(bs, did, 64, False, ucol=0))
        spec = dict(_specs.dsd_grouped_tma_spec(bs, did, 64, False, ucol=_specs.UCOL_PROBE))
        assert "UCOL" not in off and spec.pop("UCOL") == 1 and spec == off
    with pytest.raises(ValueError, match="ucol must be 0 or 1"):
        _specs.dsd_grouped_tma_spec(8, 1, 64, False, ucol=2)


def test_sddmm_tall_merged_chunks_spec(monkeypatch):
    """sddmm_tall_spec(mch=1024): MCH 1 for float32 on the mma.sync consumers (bs 16, 32; bs 64
    without wgmma), none on wgmma consumers or 16-bit; CI compiles the MCH specs;
    CUPY_BSPARSE_SDDMM_MERGE_CHUNKS None (merged) by default, "0" (a launch a chunk) / "1" as
    given."""
    assert dict(_specs.sddmm_tall_spec(16, 0, 4096, mch=1024)).get("MCH") == 1
    assert dict(_specs.sddmm_tall_spec(32, 0, 4096, True, mch=1024)).get("MCH") == 1
    assert dict(_specs.sddmm_tall_spec(64, 0, 4096, False, mch=1024)).get("MCH") == 1
    assert "MCH" not in dict(_specs.sddmm_tall_spec(64, 0, 4096, True, mch=1024))   # wgmma
    for did in (1, 2):
        assert "MCH" not in dict(_specs.sddmm_tall_spec(32, did, 4096, mch=1024))
    assert "MCH" not in dict(_specs.sddmm_tall_spec(16, 0, 4096))
    listed = [dict(spec) for name, spec, _ in _specs.all_specializations()
              if name == "sddmm_tall.cu"]
    assert any(sp.get("MCH") and sp["BS"] == 16 for sp in listed)
    test_queue_order_env("SDDMM_MERGE_CHUNKS", ((None, "None"), ("0", "0"), ("1", "1")))


def test_group_balance_choice():
    """CUPY_BSPARSE_GROUP_BALANCE: unset or empty is the default (1.25, measured in v51); "0"
    is None (off); else a factor of at least 1, a ValueError naming the variable otherwise."""
    choose = _specs._factor_choice
    assert choose(None, "V") is None and choose("", "V") is None
    assert choose(None, "V", 1.25) == 1.25 and choose("", "V", 1.25) == 1.25
    assert choose("0", "V", 1.25) is None
    assert choose("1.25", "V") == 1.25 and choose("1", "V") == 1.0 and choose("2", "V") == 2.0
    for bad in ("0.9", "0.0", "-1", "abc", "nan", "inf", "1,5"):
        with pytest.raises(ValueError, match="V must be 0 \\(off\\) or a number of at least 1"):
            choose(bad, "V")
    assert _specs.GROUP_BALANCE_DEFAULT == 1.25
    import subprocess
    import sys
    code = "import cupy_bsparse._specs as s; print(s.GROUP_BALANCE)"
    env = {k: v for k, v in os.environ.items() if k != "CUPY_BSPARSE_GROUP_BALANCE"}
    for value, want in ((None, "1.25"), ("0", "None"), ("1.5", "1.5")):
        e = env if value is None else {**env, "CUPY_BSPARSE_GROUP_BALANCE": value}
        r = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == want, (value, r.stdout, r.stderr)
    assert (_specs.GROUP_BALANCE == _specs.GROUP_BALANCE_DEFAULT
            or "CUPY_BSPARSE_GROUP_BALANCE" in os.environ)


def test_sddmm_m_chunk_choice(monkeypatch):
    """CUPY_BSPARSE_SDDMM_M_CHUNK: unset or empty is None (the measured rule: 1024 rows at
    bs 16, one launch elsewhere); else a positive multiple of 64 rows, a ValueError naming the
    variable otherwise. It applies to float32 on sddmm_tall.cu only, and never beyond M."""
    choose = _specs._rows_choice
    assert choose(None, "V") is None and choose("", "V") is None and choose("256", "V") == 256
    for bad in ("100", "0", "-64", "abc", "64.0"):
        with pytest.raises(ValueError, match="V must be a positive multiple of 64 rows"):
            choose(bad, "V")
    monkeypatch.setattr(_specs, "SDDMM_M_CHUNK", 256)
    assert _specs.sddmm_m_chunk("tall", 0, 4096, 64) == 256
    assert _specs.sddmm_m_chunk("tall", 0, 100, 16) == 100
    for kind, did in (("tall", 1), ("grouped", 0), ("stream", 0)):
        assert _specs.sddmm_m_chunk(kind, did, 4096, 16) == 4096
    monkeypatch.setattr(_specs, "SDDMM_M_CHUNK", None)
    assert _specs.sddmm_m_chunk("tall", 0, 4096, 16) == 1024
    assert _specs.sddmm_m_chunk("tall", 0, 1000, 16) == 1000
    assert _specs.sddmm_m_chunk("tall", 0, 4096, 32) == 4096
    assert _specs.sddmm_m_chunk("tall", 1, 4096, 16) == 4096


def test_stream_persist_rule(monkeypatch):
    """dsd_stream.cu's PERSIST: float32 up to M = 64 by default but for bs 32 x @ W and bs 16
    x @ W^T (v24); "1" every dtype, "0" none (CUPY_BSPARSE_PERSIST); never above M = 64;
    ``persist`` overrides."""
    def on(did, M, bs=64, trans=False, **kw):
        return dict(_specs.dsd_stream_spec(bs, did, M, trans, **kw)).get("PERSIST", 0)

    monkeypatch.setattr(_specs, "STREAM_PERSIST", None)
    assert on(0, 64) == on(0, 1) == on(0, 64, bs=16) == on(0, 64, trans=True) == 1
    assert on(0, 33, bs=32, trans=True) == 1
    assert on(0, 64, bs=32) == on(0, 64, bs=16, trans=True) == 0
    assert on(1, 64) == on(2, 33) == on(0, 65) == on(0, 4096) == 0
    monkeypatch.setattr(_specs, "STREAM_PERSIST", "1")
    assert on(0, 64, bs=32) == on(0, 64, bs=16, trans=True) == 1
    monkeypatch.setattr(_specs, "STREAM_PERSIST", None)
    # on the float32 wgmma consumers (bs 32's default where wgmma is asked for), always
    monkeypatch.setattr(_specs, "F32_WGMMA", None)
    assert on(0, 64, bs=32, wgmma=True) == on(0, 33, bs=32, trans=True, wgmma=True) == 1
    assert on(0, 64, bs=16, trans=True, wgmma=True) == 0
    assert on(1, 64, persist=True) == 1 and on(0, 64, persist=False) == 0
    monkeypatch.setattr(_specs, "STREAM_PERSIST", "1")
    assert on(1, 64) == on(0, 64) == 1 and on(1, 4096) == 0
    monkeypatch.setattr(_specs, "STREAM_PERSIST", "0")
    assert on(1, 64) == on(0, 64) == 0
    with pytest.raises(ValueError, match="CUPY_BSPARSE_PERSIST"):
        _specs._kernel_choice("2", "CUPY_BSPARSE_PERSIST", kinds=("0", "1"))


def test_f32_wgmma_rule(monkeypatch):
    """dsd_stream.cu's float32 wgmma consumers: bs 32 by default, bs 16 and 32 with "1", none
    with "0"; only at 16 < M <= 64 and where wgmma is asked for; no KSUM or XLO with them."""
    def spec(bs, M=64, trans=False, wgmma=True, **kw):
        return dict(_specs.dsd_stream_spec(bs, 0, M, trans, wgmma, **kw))

    monkeypatch.setattr(_specs, "F32_WGMMA", None)
    assert spec(32).get("WGMMA") == spec(32, 33, True).get("WGMMA") == 1
    assert not spec(16).get("WGMMA") and not spec(64).get("WGMMA")
    assert not spec(32, wgmma=False).get("WGMMA") and not spec(32, 16).get("WGMMA")
    assert not spec(32, 4096).get("WGMMA")
    s = spec(32, split="pass")
    assert s["WGMMA"] == 1 and "KSUM" not in s and "XLO" not in s
    assert (s["WARPS_M"], s["WARPS_N"], s["BM"]) == (4, 1, 64)
    monkeypatch.setattr(_specs, "F32_WGMMA", "1")
    assert spec(16).get("WGMMA") == spec(32).get("WGMMA") == 1 and not spec(64).get("WGMMA")
    monkeypatch.setattr(_specs, "F32_WGMMA", "0")
    assert not spec(32).get("WGMMA")
    assert spec(32, f32_wgmma=True).get("WGMMA") == 1
    with pytest.raises(ValueError, match="CUPY_BSPARSE_F32_WGMMA"):
        _specs._kernel_choice("2", "CUPY_BSPARSE_F32_WGMMA", kinds=("0", "1"))


def test_f32_tall_wgmma_rule(monkeypatch):
    """sddmm_tall.cu's float32 wgmma consumers: bs 64 unless F32_TALL_WGMMA is "0" (or
    ``f32_wgmma`` says), never bs 16 or 32; only where wgmma is asked for; their shared memory;
    CI compiles them whatever the switch says; the environment variable takes "0" only."""
    def spec(bs, M=4096, wgmma=True, **kw):
        return dict(_specs.sddmm_tall_spec(bs, 0, M, wgmma, **kw))

    monkeypatch.setattr(_specs, "F32_TALL_WGMMA", None)
    s = spec(64)
    assert (s["WGMMA"], s["NB"], s["BK"], s["BPW"], s["STAGES"]) == (1, 2, 16, 2, 4)
    assert not spec(16).get("WGMMA") and not spec(32).get("WGMMA")
    assert not spec(16, f32_wgmma=True).get("WGMMA") and not spec(32, f32_wgmma=True).get("WGMMA")
    assert not spec(64, wgmma=False).get("WGMMA") and not spec(64, f32_wgmma=False).get("WGMMA")
    # 4 consumer warps and the producer; 4 ring stages of x's and 2 dy tiles (16 x 64 float32)
    # and their barriers, dy's 2 planes of 64 rows of 128 bytes, 1024 bytes for the swizzle
    assert _specs.sddmm_tall_launch_shape(tuple(s.items())) == (
        160, 1024 + 4 * (3 * 4096 + 16) + 2 * 64 * 128, 2)
    monkeypatch.setattr(_specs, "F32_TALL_WGMMA", "0")
    assert not spec(64).get("WGMMA") and spec(64, f32_wgmma=True) == s
    specs = _specs.all_specializations()
    assert ("sddmm_tall.cu", tuple(sorted(s.items())), "bsmm_sddmm_tall") in specs
    assert not any(n == "sddmm_tall.cu" and dict(sp).get("WGMMA") and dict(sp)["DTYPE_ID"] == 4
                   and dict(sp)["BS"] != 64 for n, sp, _ in specs)
    test_queue_order_env("F32_TALL_WGMMA", ((None, "None"), ("0", "0")))


def test_stream_group_rule(monkeypatch):
    """dsd_stream.cu's columns a CTA: 4 for 16-bit above M = 64 where the layout's 4-column
    groups leave at most GROUP_SHARE_MAX of the x tile copies, STREAM_R where set, else 1."""
    monkeypatch.setattr(_specs, "STREAM_R", None)
    monkeypatch.setattr(_specs, "GROUP_SHARE_MAX", 0.8)
    assert _specs.stream_group(32, 1, 4096, share=0.39) == 4
    assert _specs.stream_group(32, 2, 4096, share=0.8) == 4
    assert _specs.stream_group(32, 1, 4096, share=0.86) == 1
    assert _specs.stream_group(32, 1, 4096) == 1
    assert _specs.stream_group(32, 1, 64, share=0.1) == 1        # small M: one column
    assert _specs.stream_group(32, 4, 4096, share=0.1) == 1      # float32 (3xTF32 code)
    assert _specs.stream_group(64, 1, 4096, share=0.1) == 1      # bs 64: not in the rule
    assert _specs.stream_group_by_layout(32, 1, 4096)
    assert not _specs.stream_group_by_layout(32, 0, 4096)
    assert not _specs.stream_group_by_layout(64, 1, 4096)
    assert dict(_specs.dsd_stream_spec(32, 1, 4096, False, r=4))["R"] == 4
    assert "R" not in dict(_specs.dsd_stream_spec(32, 1, 4096, False, r=1))
    monkeypatch.setattr(_specs, "STREAM_R", "2")
    assert _specs.stream_group(32, 1, 4096, share=0.9) == 2
    assert not _specs.stream_group_by_layout(32, 1, 4096)
    monkeypatch.setattr(_specs, "STREAM_R", None)
    monkeypatch.setattr(_specs, "GROUP_SHARE_MAX", None)
    assert _specs.stream_group(32, 1, 4096, share=0.1) == 1
    with pytest.raises(ValueError, match="CUPY_BSPARSE_STREAM_R"):
        _specs._kernel_choice("3", "CUPY_BSPARSE_STREAM_R", kinds=("1", "2", "4"))


def test_stream_group_default_by_layout(monkeypatch):
    """The shipped rule (v30): 16-bit bs 32 above M = 64 on a small-world W (4-column groups
    leave about 0.39 of the x tile copies at d = 0.1) takes R 4; random and Barabasi-Albert
    layouts (0.86, 0.79) and every bs 64 layout keep R 1."""
    from cupy_bsparse import _work_lists, bench
    from cupy_bsparse.block_layout import BlockLayout

    monkeypatch.setattr(_specs, "STREAM_R", None)
    monkeypatch.setattr(_specs, "GROUP_SHARE_MAX", 0.5)
    monkeypatch.setattr(_specs, "GROUP_BLOCK_SIZES", (32,))
    for kind, want in (("small_world", 4), ("random", 1), ("barabasi_albert", 1)):
        for bs, n in ((32, 256), (64, 128)):
            layout = BlockLayout.from_mask(bench.make_mask(kind, n, n, 0.1, seed=0), bs)
            for trans_w in (False, True):
                share = _work_lists.group_step_share(layout, trans_w, 4)
                for code in (1, 2):
                    got = _specs.stream_group(bs, code, 4096, share=share)
                    assert got == (want if bs == 32 else 1), (kind, bs, trans_w, share)


def test_stream_tall_rule(monkeypatch):
    """dsd_stream.cu's 512-row tiles: 16-bit bs 32 at R 1 above M = 64 only; STREAM_TALL where
    set at every such M, else STREAM_TALL_DEFAULT from STREAM_TALL_M rows; the spec carries the
    knob set, and all_specializations lists both sets."""
    monkeypatch.setattr(_specs, "STREAM_TALL", None)
    monkeypatch.setattr(_specs, "STREAM_TALL_DEFAULT", 1)
    monkeypatch.setattr(_specs, "STREAM_TALL_M", 2048)
    assert _specs.stream_tall(32, 1, 4096) == 1 and _specs.stream_tall(32, 2, 2048) == 1
    assert _specs.stream_tall(32, 1, 2047) == 0
    assert _specs.stream_tall(32, 1, 4096, r=4) == 0
    for bs, code, M in ((64, 1, 4096), (16, 2, 4096), (32, 4, 4096), (32, 0, 4096),
                        (32, 1, 64)):
        assert _specs.stream_tall(bs, code, M) == 0
    assert dict(_specs.dsd_stream_spec(32, 1, 4096, False))["BM"] == 512
    assert dict(_specs.dsd_stream_spec(32, 1, 1024, True))["BM"] == 256
    assert dict(_specs.dsd_stream_spec(32, 1, 4096, False, r=4))["BM"] == 256   # groups win
    monkeypatch.setattr(_specs, "STREAM_TALL", "2")
    assert _specs.stream_tall(32, 2, 65) == 2 and _specs.stream_tall(32, 2, 64) == 0
    assert (dict(_specs.dsd_stream_spec(32, 2, 100, True)).items()
            >= _specs.STREAM_TALL_SETS[1].items())
    monkeypatch.setattr(_specs, "STREAM_TALL", "3")
    assert dict(_specs.dsd_stream_spec(32, 1, 4096, True)).get("QUEUE") == 1
    monkeypatch.setattr(_specs, "STREAM_TALL", "0")
    assert _specs.stream_tall(32, 1, 4096) == 0
    assert "XB" not in dict(_specs.dsd_stream_spec(32, 1, 4096, False))
    monkeypatch.setattr(_specs, "STREAM_TALL", None)
    monkeypatch.setattr(_specs, "STREAM_TALL_DEFAULT", 0)
    specs = [dict(s) for n, s, _ in _specs.all_specializations() if n == "dsd_stream.cu"]
    for did in (1, 2):
        for tw in (0, 1):
            for knobs in _specs.STREAM_TALL_SETS:
                assert any(s.items() >= {**knobs, "DTYPE_ID": did, "TRANS_W": tw}.items()
                           for s in specs)
    with pytest.raises(ValueError, match="CUPY_BSPARSE_STREAM_TALL"):
        _specs._kernel_choice("3", "CUPY_BSPARSE_STREAM_TALL", kinds=("0", "1", "2"))


def test_stream_queue(monkeypatch):
    """STREAM_QUEUE (opt-in): QUEUE on dsd_stream.cu's 16-bit R 1 specs above M = 64 only,
    with room for the stages' items in shared memory; no other spec changes. A bad environment
    value fails the import."""
    import subprocess
    import sys

    monkeypatch.setattr(_specs, "STREAM_QUEUE", None)
    monkeypatch.setattr(_specs, "STREAM_TALL", "1")    # (the third set is on the queue)
    base = dict(_specs.dsd_stream_spec(32, 1, 4096, False))
    assert "QUEUE" not in base
    monkeypatch.setattr(_specs, "STREAM_QUEUE", "1")
    spec = dict(_specs.dsd_stream_spec(32, 1, 4096, False))
    assert spec == {**base, "QUEUE": 1}
    shape = _specs.launch_shape("dsd_stream.cu", tuple(sorted(spec.items())))
    base_shape = _specs.launch_shape("dsd_stream.cu", tuple(sorted(base.items())))
    assert shape[1] == base_shape[1] + 16 * (spec["STAGES"] + 1)
    assert dict(_specs.dsd_stream_spec(64, 2, 1000, True)).get("QUEUE") == 1
    for other in (_specs.dsd_stream_spec(32, 1, 4096, False, r=4),       # column groups
                  _specs.dsd_stream_spec(64, 0, 4096, False),            # float32
                  _specs.dsd_stream_spec(32, 1, 64, False),              # M = 64
                  _specs.dsd_stream_spec(32, 1, 4096, False, queue=False)):
        assert "QUEUE" not in dict(other)
    assert "PERSIST" not in spec
    r = subprocess.run([sys.executable, "-c", "import cupy_bsparse._specs"],
                       env={**os.environ, "CUPY_BSPARSE_STREAM_QUEUE": "2"}, capture_output=True,
                       text=True)
    assert r.returncode != 0 and "CUPY_BSPARSE_STREAM_QUEUE must be one of" in r.stderr


@pytest.mark.parametrize("name,values", [
    ("QUEUE_WALK", ((None, "None"), ("", "None"), ("ascending", "ascending"),
                    ("hashed", "hashed"), ("hubs", "hubs"))),
    ("GROUP_WALK", ((None, "hubs"), ("", "hubs"), ("ascending", "ascending"),
                    ("hashed", "hashed"), ("hubs", "hubs")))])
def test_queue_order_env(name, values):
    """CUPY_BSPARSE_QUEUE_WALK / _GROUP_WALK: None (the queue's walk by the layout) and "hubs"
    by default, the variable's values as ``values`` pairs them; anything else fails the import
    naming the variable."""
    import subprocess
    import sys
    var = "CUPY_BSPARSE_" + name
    code = f"import cupy_bsparse._specs as s; print(s.{name})"
    env = {k: v for k, v in os.environ.items() if k != var}
    for value, want in values:
        e = env if value is None else {**env, var: value}
        r = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == want, (value, r.stdout, r.stderr)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**env, var: "yes"})
    assert r.returncode != 0 and f"{var} must be one of" in r.stderr


@pytest.mark.parametrize("name,values", [
    ("COARSE_WGRAD", ((None, "None"), ("", "None"), ("0", "0"), ("1", "1"))),
    ("COARSE_OVERLAP", ((None, "None"), ("", "None"), ("0", "0"), ("1", "1"))),
    ("COARSE_SIDE", ((None, "None"), ("rest", "rest"), ("coarse", "coarse")))])
def test_coarse_wgrad_env(name, values):
    """CUPY_BSPARSE_COARSE_WGRAD (None: by the rule), _COARSE_OVERLAP (None: two streams for
    float32) and _COARSE_SIDE (None: by the predicted work): None by default,
    the values as given; anything else fails the import naming the variable."""
    test_queue_order_env(name, values)


def test_coarse_wgrad_rule(monkeypatch):
    """The coarse wgrad (16-bit bs 32, float32 bs 8 and 16): by a rule at a predicted cost of
    at most its limit and M >= its min_m with no sddmm kernel forced; on small world's counts
    (v50's layouts, C = K = 8192), not on random's; float32 bs 8's hybrid on
    Barabasi-Albert's; "1" wherever it can run, "0" never; never a layout that cannot be
    coarsened (cost None), TF32 or 3xTF32 codes, other block sizes."""
    monkeypatch.setattr(_specs, "COARSE_WGRAD", None)
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", None)
    lo_m = _specs.COARSE_WGRAD_MIN_M
    rules = _specs.COARSE_WGRAD_RULES
    assert set(rules) == {(32, 1), (32, 2), (8, 0), (16, 0)}
    for (bs, did), options in rules.items():
        assert options[0].least == 1 or (bs, did) == (16, 0)
        for r in options:
            assert 1.6 <= r.cost <= 4 and 0.9 <= r.limit <= 1 and r.min_m is None
            assert not _specs.coarse_wgrad(bs, did, 4096, r.limit + 1e-9, r)
            assert _specs.coarse_wgrad(bs, did, 4096, r.limit, r)
            assert _specs.coarse_wgrad(bs, did, lo_m, 0.1, r)
            assert not _specs.coarse_wgrad(bs, did, lo_m - 1, 0.1, r)
    for r in rules[32, 1]:                    # every group coarse: fill = blocks / 4 groups
        at = {fill: _specs.coarse_cost(r, 6656, round(6656 / (4 * fill)), 0)
              for fill in (0.65, 0.29, r.cost / 4 + 0.01, r.cost / 4 - 0.01)}
        assert _specs.coarse_wgrad(32, 1, 4096, at[0.65], r)                # small world
        assert _specs.coarse_wgrad(32, 1, 1024, at[r.cost / 4 + 0.01], r)
        assert not _specs.coarse_wgrad(32, 1, 4096, at[r.cost / 4 - 0.01], r)
        assert not _specs.coarse_wgrad(32, 1, 4096, at[0.29], r)            # random

    def takes(bs, did, nnzb, counts):
        """The first rule (index) whose (ncoarse, nrest) in ``counts`` it takes, or None."""
        for i, r in enumerate(rules[bs, did]):
            ncoarse, nrest = counts[r.least]
            if _specs.coarse_wgrad(bs, did, 4096, _specs.coarse_cost(r, nnzb, ncoarse, nrest), r):
                return i
        return None
    # probes/p48.py's counts (v50): {least: (coarse blocks, blocks left direct)}
    assert takes(8, 0, 104448, {1: (37369, 0), 2: (26115, 11254)}) == 0       # small world
    assert takes(8, 0, 99246, {1: (78248, 0), 2: (16644, 61604)}) == 1        # Barabasi-Albert
    assert takes(8, 0, 104858, {1: (90254, 0), 2: (13613, 76641)}) is None    # random
    assert takes(16, 0, 26624, {4: (3998, 10632)}) == 0                       # small world
    assert takes(16, 0, 78848, {4: (12764, 27792)}) == 0                      # ... d 0.3
    assert takes(16, 0, 26214, {4: (8, 26182)}) is None                       # random
    assert takes(16, 0, 78643, {4: (559, 76407)}) is None                     # ... d 0.3
    for bs, did, cost in ((32, 1, None), (8, 0, None), (32, 0, 0.1), (8, 4, 0.1), (8, 3, 0.1),
                          (8, 1, 0.1), (64, 1, 0.1), (16, 1, 0.1), (16, 3, 0.1), (64, 0, 0.1)):
        for knob in (None, "1"):
            monkeypatch.setattr(_specs, "COARSE_WGRAD", knob)
            assert not _specs.coarse_wgrad(bs, did, 4096, cost)
    monkeypatch.setattr(_specs, "COARSE_WGRAD", None)
    assert _specs.coarse_wgrad(16, 0, 4096, 0.0)                   # some rule could
    monkeypatch.setattr(_specs, "COARSE_WGRAD_MIN_M", 8192)        # read at call time
    assert not _specs.coarse_wgrad(16, 0, 4096, 0.0)
    assert _specs.coarse_wgrad(16, 0, 4096, 0.0, _specs.CoarseRule(3.5, 4, 0.95, 2048))
    monkeypatch.setattr(_specs, "COARSE_WGRAD_MIN_M", lo_m)
    monkeypatch.setattr(_specs, "SDDMM_KERNEL", "tall")            # a kernel forced: its own
    assert not _specs.coarse_wgrad(32, 1, 4096, 0.1)
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "1")
    assert _specs.coarse_wgrad(32, 1, 1, 3.0) and _specs.coarse_wgrad(8, 0, 65, 3.0)
    monkeypatch.setattr(_specs, "COARSE_WGRAD", "0")
    assert not _specs.coarse_wgrad(32, 1, 4096, 0.1) and not _specs.coarse_wgrad(8, 0, 4096, 0.1)


def test_coarse_cost():
    """(coarse blocks x the rule's cost + blocks left direct) / stored blocks; None without a
    coarse block; a rule's fields and defaults."""
    r = _specs.CoarseRule(3.0, 4)
    assert (r.cost, r.least, r.limit, r.min_m) == (3.0, 4, 1.0, None)
    assert _specs.CoarseRule(2.0, 2, 0.9, 2048) == (2.0, 2, 0.9, 2048)
    assert _specs.coarse_cost(r, 100, 15, 40) == (15 * 3.0 + 40) / 100
    assert _specs.coarse_cost(r, 8, 2, 0) == 2 * 3.0 / 8
    assert _specs.coarse_cost(r, 100, 0, 100) is None
    assert _specs.coarse_cost(r, 0, 0, 0) is None


def test_coarse_first(monkeypatch):
    """The hybrid's wgrad of more predicted work launched first (coarse blocks x the rule's
    cost against the blocks left direct; v50's float32 bs 16 small world and bs 8
    Barabasi-Albert counts); COARSE_SIDE "coarse" / "rest" whatever the work."""
    monkeypatch.setattr(_specs, "COARSE_SIDE", None)
    r16, r8 = _specs.COARSE_WGRAD_RULES[16, 0][0], _specs.COARSE_WGRAD_RULES[8, 0][1]
    assert _specs.coarse_first(r16, 3998, 10632) and not _specs.coarse_first(r8, 16644, 61604)
    assert not _specs.coarse_first(_specs.CoarseRule(2.0, 2), 5, 10)
    monkeypatch.setattr(_specs, "COARSE_SIDE", "coarse")
    assert _specs.coarse_first(r8, 16644, 61604) and _specs.coarse_first(r16, 1, 10 ** 6)
    monkeypatch.setattr(_specs, "COARSE_SIDE", "rest")
    assert not _specs.coarse_first(r16, 3998, 10632)


def test_coarse_overlap(monkeypatch):
    """The hybrid's two wgrads on two streams: by default for float32 (element code 0) only;
    "1" every code, "0" none."""
    for knob, want in ((None, (True, False, False)), ("1", (True, True, True)),
                       ("0", (False, False, False))):
        monkeypatch.setattr(_specs, "COARSE_OVERLAP", knob)
        assert tuple(_specs.coarse_overlap(did) for did in (0, 1, 2)) == want


def test_walk_by_share(monkeypatch):
    """The queue's walk where QUEUE_WALK is None: "hubs" at bs 64 when the modelled sharing
    gains WALK_GAIN or more over ascending, else ascending; at bs 32 ascending without asking
    the model; a set QUEUE_WALK as it is."""
    def never(walk):
        raise AssertionError("the model was asked")

    monkeypatch.setattr(_specs, "QUEUE_WALK", None)
    share = {"ascending": 1.25, "hubs": 1.25 + _specs.WALK_GAIN}
    assert _specs.walk_by_share(64, share.get) == "hubs"
    share["hubs"] -= 0.01
    assert _specs.walk_by_share(64, share.get) == "ascending"
    assert _specs.walk_by_share(32, never) == "ascending"
    for walk in _specs.QUEUE_WALKS:
        monkeypatch.setattr(_specs, "QUEUE_WALK", walk)
        assert _specs.walk_by_share(64, never) == walk


def test_stream_qlist_rule(monkeypatch):
    """QLIST by the layout: ``qlist_ahead`` gives QLIST_AHEAD on the 512-row queue set with a
    long column only; the spec takes QLIST n and ILV 0 on a queue set and ignores ``qlist``
    off one (float32, without wgmma, M <= 256)."""
    monkeypatch.setattr(_specs, "STREAM_WGQ", None)
    monkeypatch.setattr(_specs, "STREAM_QUEUE", None)
    monkeypatch.setattr(_specs, "QLIST_AHEAD", 3)
    assert [_specs.qlist_ahead(w, h) for w in (512, 256, 0) for h in (True, False)] == \
        [3, 0, 0, 0, 0, 0]
    monkeypatch.setattr(_specs, "QLIST_AHEAD", 0)
    assert _specs.qlist_ahead(512, True) == 0
    base = dict(_specs.dsd_stream_spec(64, 1, 4096, False, wgmma=True))
    assert base["BM"] == 512 and "QLIST" not in base and base["ILV"] == 2
    assert dict(_specs.dsd_stream_spec(64, 1, 4096, False, wgmma=True, qlist=4)) == \
        {**base, "QLIST": 4, "ILV": 0}
    for other in (_specs.dsd_stream_spec(64, 0, 4096, False, wgmma=True, qlist=4),
                  _specs.dsd_stream_spec(64, 1, 4096, False, wgmma=False, qlist=4),
                  _specs.dsd_stream_spec(64, 1, 256, False, wgmma=True, qlist=4)):
        assert "QLIST" not in dict(other)


def test_stream_wgmma_queue_sets(monkeypatch):
    """STREAM_WGQ: 16-bit bs 64 above M = 256 with wgmma consumers takes 256-row tiles up to
    M = 384, then the row tile that pads M the least (512 on a tie) from STREAM_WGQ_SETS, as its whole spec's tile, ring and
    consumers; not without wgmma, at other block sizes, float32, M <= 256, R > 1 or with the
    queue forced off; "0" / "256" / "512" force it. Both tiles are compiled in CI."""
    monkeypatch.setattr(_specs, "STREAM_WGQ", None)
    monkeypatch.setattr(_specs, "STREAM_QUEUE", None)
    assert [_specs.stream_wgq(64, 1, M, 1, True) for M in (64, 256, 257, 384, 385, 512, 600,
                                                           768, 1024, 1100, 4095, 4096)] == [
        0, 0, 256, 256, 512, 512, 256, 256, 512, 256, 512, 512]
    for args in ((64, 1, 4096, 1, False), (32, 1, 4096, 1, True), (64, 4, 4096, 1, True),
                 (64, 2, 4096, 4, True)):
        assert _specs.stream_wgq(*args) == 0
    for M, tile in ((4096, 512), (1100, 256)):
        for code in (1, 2):
            for tw in (False, True):
                spec = dict(_specs.dsd_stream_spec(64, code, M, tw, True))
                assert spec == {**spec, **_specs.STREAM_WGQ_SETS[tile]}
                assert _specs.launch_shape("dsd_stream.cu", tuple(sorted(spec.items())))[1] <= (
                    227 * 1024)
    assert "WGMMA" not in dict(_specs.dsd_stream_spec(64, 1, 4096, False, False))
    assert dict(_specs.dsd_stream_spec(64, 1, 4096, False, True))["BM"] == 512
    monkeypatch.setattr(_specs, "STREAM_QUEUE", "0")
    assert dict(_specs.dsd_stream_spec(64, 1, 4096, False, True))["BM"] == 128
    monkeypatch.setattr(_specs, "STREAM_QUEUE", None)
    monkeypatch.setattr(_specs, "STREAM_WGQ", "256")
    assert _specs.stream_wgq(64, 2, 65, 1, True) == 256
    monkeypatch.setattr(_specs, "STREAM_WGQ", "0")
    assert _specs.stream_wgq(64, 2, 4096, 1, True) == 0
    specs = _specs.all_specializations()
    for tile in (256, 512):
        spec = _specs.dsd_stream_spec(64, 1, 4096, False, True, r=1, wgq=tile)
        assert ("dsd_stream.cu", spec, "bsmm_dsd_stream") in specs


def test_queue_fits():
    """The queue's layout rule: the longest column times the CTAs a wave at most the blocks
    (v33's counts: random 40 x 132 <= 6554 fits, Barabasi-Albert 94 x 132 > 6318 does not)."""
    assert _specs.queue_fits(40, 6554, 132) and not _specs.queue_fits(94, 6318, 132)
    assert _specs.queue_fits(16, 2112, 132) and not _specs.queue_fits(16, 2111, 132)
    assert not _specs.STREAM_TALL_SETS[_specs.STREAM_TALL_QUEUE_FALLBACK - 1].get("QUEUE")
    assert _specs.stream_tall_fallback(4096) == _specs.STREAM_TALL_QUEUE_FALLBACK
    assert _specs.stream_tall_fallback(4095) == 0
    assert _specs.STREAM_TALL_M <= _specs.STREAM_TALL_FALLBACK_M


def test_sddmm_tall_segment_size_by_tail(monkeypatch):
    """16-bit bs 64 wgrad takes the first segment size whose segments fill the device (at least
    one wave, a last wave empty or at least a quarter full: ``sddmm_tall_segment_size``, v32),
    else the last: NB 8 / 4 / 2 on the wgmma consumers (a warpgroup for two blocks at 8, v42),
    4 / 2 on mma.sync; other block sizes, float32 and the 2-D items have one size. A size
    outside the choices is a ValueError naming ``nb``."""
    assert _specs.sddmm_tall_nb_choices(64, 1) == (4, 2) == _specs.sddmm_tall_nb_choices(64, 2)
    assert _specs.sddmm_tall_nb_choices(64, 0) == () == _specs.sddmm_tall_nb_choices(32, 1)
    assert _specs.sddmm_tall_nb_choices(64, 1, True) == (8, 4, 2)
    assert _specs.sddmm_tall_nb_choices(64, 2, True, wgmma16=False) == (4, 2)
    assert _specs.sddmm_tall_nb_choices(64, 0, True) == ()
    assert _specs.sddmm_tall_nb_choices(64, 1, True, M=512) == (2,)
    assert _specs.sddmm_tall_nb_choices(64, 1, True, M=513) == (8, 4, 2)
    small = dict(_specs.sddmm_tall_spec(64, 1, 256, True))
    assert "BPW" not in small and (small["NB"], small["STAGES"]) == (2, 3)
    assert dict(_specs.sddmm_tall_spec(64, 1, 4096))["NB"] == 4
    assert dict(_specs.sddmm_tall_spec(64, 1, 4096, nb=2)) == {
        **dict(_specs.sddmm_tall_spec(64, 1, 4096)), "NB": 2}
    w8 = dict(_specs.sddmm_tall_spec(64, 1, 4096, True))
    assert (w8["NB"], w8["BPW"], w8["STAGES"], w8["WGMMA"]) == (8, 2, 3, 1)
    assert w8 == dict(_specs.sddmm_tall_spec(64, 1, 4096, True, nb=8))
    w4 = dict(_specs.sddmm_tall_spec(64, 2, 4096, True, nb=4))
    assert "BPW" not in w4 and (w4["NB"], w4["STAGES"], w4["WGMMA"]) == (4, 4, 1)
    assert dict(_specs.sddmm_tall_spec(64, 2, 8192, True, nb=2))["STAGES"] == 3
    with pytest.raises(ValueError, match="nb must be one of"):
        _specs.sddmm_tall_spec(64, 1, 4096, nb=3)
    with pytest.raises(ValueError, match="nb must be one of"):
        _specs.sddmm_tall_spec(64, 1, 4096, nb=8)        # mma.sync: 4 or 2
    with pytest.raises(ValueError, match="nb must be one of"):
        _specs.sddmm_tall_spec(32, 1, 4096, nb=2)
    pick = _specs.sddmm_tall_segment_size

    def by(counts):
        return lambda nb: counts[nb]

    def two(seg):                 # p29 bs64sweep's NB 4 segment counts (H100: 132 resident)
        return pick((4, 2), by({4: (seg, 132)}))

    assert two(415) == 2      # small world d 0.1: 3.14 waves
    assert two(802) == 2      # Barabasi-Albert d 0.2: 6.08
    assert two(452) == 4      # random d 0.1: 3.42
    assert two(254) == 4      # small world d 0.05: 1.92
    assert two(264) == 4      # whole waves
    assert two(20) == 2       # a sixth of one wave: more, shorter CTAs
    assert two(38) == 2       # small world C = K = 2048: 0.29 waves (p29 auto)
    assert two(0) == 4        # an empty layout
    assert pick((4,), by({})) == 4 and pick((), by({})) is None

    def three(s8, s4):
        return pick((8, 4, 2), by({8: (s8, 132), 4: (s4, 132)}))

    assert three(256, 452) == 8       # 1.94 waves
    assert three(20, 452) == 4        # NB 8 under a wave, NB 4 fills
    assert three(140, 415) == 2       # neither: a 6% and a 14% last wave
    assert three(0, 0) == 8
    assert three(129, 254) == 8       # small world d 0.05: one wave, 98% full (v42)
    assert three(75, 129) == 4        # random C = K = 4096: 57%, then 98%
    assert three(32, 38) == 2         # C = K = 2048: 24%, 29%
    specs = _specs.all_specializations()
    for wg, nb in ((False, 2), (True, 4), (True, 2)):
        assert ("sddmm_tall.cu", _specs.sddmm_tall_spec(64, 2, 4096, wg, nb=nb),
                "bsmm_sddmm_tall") in specs
    assert ("sddmm_tall.cu", _specs.sddmm_tall_spec(64, 2, 4096, True),
            "bsmm_sddmm_tall") in specs


def test_tall_tail_split(monkeypatch):
    """TSPLIT (v59): off unless TALL_TSPLIT is "1"; then over one wave a last wave under
    TALL_TSPLIT_TAIL of the resident CTAs has its segments cut into pieces that fit a wave;
    under one wave every segment is cut into the count of pieces that ends in the fewest
    rounds of piece length (none where no count beats whole segments); at most
    TALL_TSPLIT_MAX pieces of at least TALL_TSPLIT_MIN_ROWS rows, a multiple of the step, the
    last piece shorter and none empty. Full waves, a well-filled last wave and short M are
    left whole. The spec takes it on 16-bit mma.sync consumers only, with 16 more bytes of
    shared memory (the combine's flag)."""
    rule = _specs.tall_tail_split
    assert _specs.TALL_TSPLIT is None
    assert rule(584, 528, 4095, 32) == (1, 4095, 0)                 # off by default
    monkeypatch.setattr(_specs, "TALL_TSPLIT", "1")
    # the non-square shape of v56: 56 segments past one wave of 528
    assert rule(584, 528, 4095, 32) == (4, 1024, 56)
    assert rule(584, 528, 4096, 32) == (4, 1024, 56)
    assert rule(1042, 528, 4096, 32) == (1, 4096, 0)                # 514 of 528: kept whole
    assert rule(1056, 528, 4096, 32) == (1, 4096, 0)                # two full waves
    assert rule(528 + 200, 528, 4096, 32) == (2, 2048, 200)         # 528 // 200 = 2 pieces
    assert rule(528 + 264, 528, 4096, 32) == (1, 4096, 0)           # half a wave: whole
    assert rule(100, 528, 4096, 32) == (4, 1024, 100)               # under one wave
    assert rule(293, 528, 4096, 32) == (3, 1376, 293)               # 2 rounds of a third
    assert rule(264, 528, 4096, 32) == (2, 2048, 264)               # 1 round of a half
    assert rule(519, 528, 4095, 32) == (1, 4095, 0)                 # no count ends sooner
    assert rule(400, 528, 4096, 32) == (1, 4096, 0)
    assert rule(100, 528, 1500, 32) == (2, 768, 100)                # pieces of >= 512 rows
    assert rule(100, 528, 1000, 32) == (1, 1000, 0)
    assert rule(100, 528, 257, 32) == (1, 257, 0)
    monkeypatch.setattr(_specs, "TALL_TSPLIT_MIN_ROWS", 32)
    assert rule(100, 528, 257, 32) == (3, 96, 100)                  # 96 + 96 + 65 rows
    for segments, resident, M, bk in ((7, 132, 1000, 64), (50, 528, 4095, 32), (300, 528, 33, 32),
                                      (600, 528, 5000, 32), (1, 8, 129, 32)):
        pieces, rows, split = rule(segments, resident, M, bk)
        assert rows % bk == 0 or pieces == 1
        assert (pieces - 1) * rows < M <= pieces * rows
        assert pieces <= _specs.TALL_TSPLIT_MAX and split <= segments
        assert split * pieces <= resident or split == segments < resident
    monkeypatch.setattr(_specs, "TALL_TSPLIT", "0")
    assert rule(584, 528, 4095, 32) == (1, 4095, 0)
    base = dict(_specs.sddmm_tall_spec(32, 1, 4096))
    assert dict(_specs.sddmm_tall_spec(32, 1, 4096, tsplit=True)) == {**base, "TSPLIT": 1}
    assert _specs.tall_tsplit_supported(_specs.sddmm_tall_spec(32, 2, 4096))
    for spec in (_specs.sddmm_tall_spec(64, 1, 4096, True), _specs.sddmm_tall_spec(32, 0, 4096)):
        assert not _specs.tall_tsplit_supported(spec)
        assert "TSPLIT" not in dict(_specs.sddmm_tall_spec(
            dict(spec)["BS"], dict(spec)["DTYPE_ID"] if dict(spec)["DTYPE_ID"] != 4 else 0,
            4096, bool(dict(spec).get("WGMMA")), tsplit=True))
    t0, s0, _ = _specs.sddmm_tall_launch_shape(_specs.sddmm_tall_spec(32, 1, 4096))
    t1, s1, _ = _specs.sddmm_tall_launch_shape(_specs.sddmm_tall_spec(32, 1, 4096, tsplit=True))
    assert (t1, s1) == (t0, s0 + 16)
    floats = _specs.tall_tsplit_floats
    assert floats(_specs.sddmm_tall_spec(32, 1, 4096, tsplit=True)) == 7 * 32 * 32
    assert floats(_specs.sddmm_tall_spec(64, 1, 4096, tsplit=True)) == 4 * 64 * 64
