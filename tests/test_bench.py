"""The benchmark command on the CPU: option parsing, an end-to-end quick run, metric arithmetic."""
import csv
import json
import re
import time
import types

import numpy as np
import pytest

from cupy_bsparse import __main__ as cli
from cupy_bsparse import _cpu_pool, bench, compiler


# The CSV header / JSON keys, as documented in bench.py and relied on by docs/benchmarks.md.
DOCUMENTED_COLUMNS = (
    "device", "op", "dtype", "tf32", "m", "c", "k", "blocksize", "layout", "density", "nnzb",
    "time_ms", "tflops", "gbs", "dense_ms", "efficiency", "speedup", "cusparse_ms", "torch_ms",
    "scipy_ms", "sets", "note",
)


def test_parser_reads_every_option():
    args = cli.build_parser().parse_args([
        "bench", "--m", "64", "300", "--c", "512", "--k", "256", "--blocksize", "16", "32",
        "--density", "0.05", "0.2", "--dtype", "float16", "bfloat16", "--op", "fprop", "wgrad",
        "--layout", "balanced", "--baselines", "dense", "torch", "--tf32", "--repeat", "7",
        "--warmup", "1", "--seed", "3", "--out", "res", "--quick", "--device", "cpu",
    ])
    assert args.command == "bench"
    assert (args.m, args.c, args.k) == ([64, 300], 512, 256)
    assert args.blocksize == [16, 32] and args.density == [0.05, 0.2]
    assert args.dtype == ["float16", "bfloat16"] and args.op == ["fprop", "wgrad"]
    assert args.layout == "balanced" and args.baselines == ["dense", "torch"]
    assert args.tf32 is True and (args.repeat, args.warmup, args.seed) == (7, 1, 3)
    assert (args.out, args.quick, args.device) == ("res", True, "cpu")
    assert cli.build_parser().parse_args(["info"]).command == "info"


@pytest.mark.parametrize("argv", [
    ["bench", "--op", "forward"],
    ["bench", "--dtype", "int8"],
    ["bench", "--layout", "ring"],
    ["bench", "--blocksize", "x"],
    [],
])
def test_parser_rejects_bad_options(argv):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(argv)
    assert e.value.code == 2


def test_defaults_follow_the_reference_shapes():
    gpu = bench.resolve("gpu")
    assert gpu.ms == (64, 4096) and gpu.blocksizes == (8, 16, 32, 64)
    assert gpu.features(64) == (16384, 16384) and gpu.features(256) == (16384, 16384)
    assert gpu.features(4096) == (8192, 8192)
    assert gpu.dtypes == ("float16", "float32") and gpu.ops == ("fprop", "bprop", "wgrad")
    assert gpu.densities == (0.1,) and gpu.baselines == ("dense", "cusparse", "torch")
    cpu = bench.resolve("cpu")
    assert cpu.ms == (64,) and cpu.features(64) == (4096, 4096)
    assert cpu.baselines == ("dense", "scipy")
    # Given values win over defaults; GPU-only baselines are dropped on the CPU.
    mine = bench.resolve("cpu", ms=[8], c=64, baselines=["dense", "cusparse", "torch"])
    assert mine.ms == (8,) and mine.features(8) == (64, 4096) and mine.baselines == ("dense",)
    again = bench.resolve("cpu", ms=[8, 64, 8], ops=["wgrad", "fprop", "wgrad"],
                          baselines=["scipy", "dense", "scipy"])
    assert again.ms == (8, 64) and again.ops == ("wgrad", "fprop")
    assert again.baselines == ("scipy", "dense")


@pytest.mark.parametrize("device, given, match", [
    ("cpu", dict(c=100, blocksizes=[16]), "multiples"),
    ("gpu", dict(blocksizes=[12]), "block sizes"),
    ("gpu", dict(dtypes=["float64"]), "CPU only"),
    ("cpu", dict(densities=[0.0]), "density"),
    ("cpu", dict(densities=[1.5]), "density"),
    ("cpu", dict(ms=[0]), "M must be positive ints"),
    ("cpu", dict(layout="small_world", c=512, k=256), "C == K"),
    ("cpu", dict(repeat=0), "repeat must be an int >= 1"),
    ("cpu", dict(warmup=-1), "warmup an int >= 0"),
    ("cpu", dict(repeat=1.5), "repeat must be an int"),
    ("cpu", dict(ms=[1.5]), "M must be positive ints"),
    ("cpu", dict(ms=[True]), "M must be positive ints"),
    ("cpu", dict(c=1024.0), "C must be a positive int"),
    ("cpu", dict(blocksizes=[8.0]), "block size must be a positive int"),
    ("cpu", dict(blocksizes=[True]), "block size must be a positive int"),
    ("cpu", dict(densities=["0.1"]), "density must be a number"),
    ("cpu", dict(densities=[True]), "density must be a number"),
    ("cpu", dict(dtypes=["int8"]), "dtype must be one of"),
    ("cpu", dict(ops=["forward"]), "op must be one of"),
    ("cpu", dict(layout="ring"), "layout must be one of"),
    ("cpu", dict(blocksizes=[0]), "block size must be a positive int"),
    ("tpu", dict(), "device must be 'gpu' or 'cpu'"),
    ("cpu", dict(c=0), "C must be a positive int, got 0"),       # not the default in disguise
    ("cpu", dict(tf32=True), "TF32 tensor cores; the CPU reference has none"),
    ("gpu", dict(k=-32, blocksizes=[32]), "K must be a positive int"),
    ("cpu", dict(seed=-1), "seed must be a non-negative int"),
    ("cpu", dict(ms=[10**11]), "more than 2\\*\\*31 elements"),
    ("cpu", dict(c=32, k=32, blocksizes=[32], layout="barabasi_albert"), "at least 2 block-rows"),
    ("cpu", dict(c=64, k=64, blocksizes=[32], layout="small_world", densities=[1.0]),
     "stores no block"),
    ("cpu", dict(c=64, k=64, blocksizes=[32], densities=[0.001]), "random' at density 0.001"),
    ("cpu", dict(c=64, k=64, blocksizes=[32], layout="balanced", densities=[0.1]),
     "stores no block"),
])
def test_resolve_rejects_bad_sweeps(device, given, match):
    with pytest.raises(ValueError, match=match):
        bench.resolve(device, **given)


def test_metric_arithmetic_on_a_hand_made_case():
    # M=64, C=K=1024, bs 32: a 32 x 32 block grid, 100 blocks stored (density 100/1024).
    m, c, k, bs, nnzb, itemsize = 64, 1024, 1024, 32, 100, 2
    nnz = nnzb * bs * bs  # 102400
    assert bench.useful_flops(m, nnz) == 13_107_200
    assert bench.moved_bytes(m, c, k, nnz, itemsize) == (65536 + 65536 + 102400) * 2
    got = bench.metrics(m, c, k, nnz, itemsize, nnzb / 1024, t_ms=0.5, dense_ms=2.0)
    assert got["tflops"] == pytest.approx(13_107_200 / 0.5e-3 / 1e12)  # 0.0262144
    assert got["gbs"] == pytest.approx(466_944 / 0.5e-3 / 1e9)  # 0.933888
    assert got["speedup"] == pytest.approx(4.0)
    assert got["efficiency"] == pytest.approx(100 / 1024 * 4.0)  # 0.390625
    # No dense time: no E or speed-up; no sparse time: nothing.
    assert bench.metrics(m, c, k, nnz, itemsize, 0.1, 0.5)["efficiency"] is None
    assert set(bench.metrics(m, c, k, nnz, itemsize, 0.1, None).values()) == {None}


def test_rotation_covers_l2_and_stays_bounded():
    l2 = 50 * 2**20
    assert bench.rotation_sets(4 * l2, l2) == 1
    assert bench.rotation_sets(10 * l2, l2) == 1
    assert bench.rotation_sets(l2 // 2, l2) == 8
    assert bench.rotation_sets(l2 // 5 + 1, l2) == 20  # ceil(4 * 5 * (1 - tiny))
    assert bench.rotation_sets(1, l2) == 128
    assert bench.rotation_sets(1, l2, max_sets=5) == 5
    assert bench.rotation_sets(123, 0) == 1  # the CPU does not rotate


def test_time_cpu_cycles_through_the_sets():
    seen = []
    ms = bench.time_cpu(lambda i: seen.append(i) or time.sleep(0.002), [(0,), (1,), (2,)],
                        warmup=2, repeat=4)
    assert seen == [0, 1, 2, 0, 1, 2]  # warm-up, then the timed calls continue the cycle
    assert 1.5 < ms < 200


@pytest.mark.parametrize("kind", bench.LAYOUTS)
def test_make_mask_hits_the_density(kind):
    mask = bench.make_mask(kind, 64, 64, 0.1, seed=0)
    assert mask.shape == (64, 64) and mask.dtype == bool
    assert 0.05 <= mask.mean() <= 0.15
    assert np.array_equal(mask, bench.make_mask(kind, 64, 64, 0.1, seed=0))


def test_make_mask_errors():
    with pytest.raises(ValueError, match="square"):
        bench.make_mask("barabasi_albert", 32, 16, 0.1, seed=0)
    with pytest.raises(ValueError, match="layout must be one of"):
        bench.make_mask("ring", 4, 4, 0.1)
    with pytest.raises(ValueError, match="at least 2 block-rows"):
        bench.make_mask("barabasi_albert", 1, 1, 0.5)


def _check_rows(rows):
    """Every row: the documented columns and metrics consistent with its own times."""
    for r in rows:
        assert set(r) == set(DOCUMENTED_COLUMNS)
        assert r["device"] == "cpu" and r["time_ms"] > 0 and r["dense_ms"] > 0
        assert r["density"] == pytest.approx(r["nnzb"] / ((r["c"] // r["blocksize"]) *
                                                          (r["k"] // r["blocksize"])))
        nnz = r["nnzb"] * r["blocksize"] ** 2
        assert r["tflops"] == pytest.approx(2 * r["m"] * nnz / (r["time_ms"] * 1e-3) / 1e12)
        assert r["speedup"] == pytest.approx(r["dense_ms"] / r["time_ms"])
        assert r["efficiency"] == pytest.approx(r["density"] * r["speedup"])
        if r["op"] == "wgrad":
            assert r["scipy_ms"] is None and "no SDDMM" in r["note"]
        else:
            assert r["scipy_ms"] > 0


def test_quick_bench_on_the_cpu_end_to_end(tmp_path, capsys, monkeypatch):
    # Pretend there is no GPU: this is what the README's first command does on a CPU machine.
    monkeypatch.setattr(bench, "gpu_available", lambda: False)
    prefix = tmp_path / "quick"
    t0 = time.perf_counter()
    assert cli.main(["bench", "--quick", "--out", str(prefix)]) == 0
    assert time.perf_counter() - t0 < 30
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == cli.NO_GPU_NOTE
    assert out.out.splitlines()[1] == f"device: CPU reference (numpy; {_cpu_pool.describe()})"
    assert "TFLOP/s" in out.out and "scipy BSR ms" in out.out
    assert "[6/6] M=16 fp32 bs32" in out.err  # progress on stderr

    doc = json.loads((prefix.with_suffix(".json")).read_text())
    assert doc["columns"] == list(DOCUMENTED_COLUMNS)
    assert doc["meta"]["device"] == "cpu"
    assert doc["meta"]["kernel_fingerprint"] == compiler.source_fingerprint()
    rows = doc["results"]
    sweep = bench.resolve("cpu", quick=True)
    assert len(rows) == len(sweep.groups()) * len(bench.OPS) == 6
    assert [r["op"] for r in rows[:3]] == list(bench.OPS)
    _check_rows(rows)

    with open(prefix.with_suffix(".csv"), newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == DOCUMENTED_COLUMNS
        table = list(reader)
    assert len(table) == len(rows)
    for line, r in zip(table, rows):
        assert float(line["time_ms"]) == pytest.approx(r["time_ms"])
        assert line["scipy_ms"] == ("" if r["scipy_ms"] is None else str(r["scipy_ms"]))


def test_bench_options_reach_the_run(capsys):
    argv = ["bench", "--device", "cpu", "--m", "8", "--c", "128", "--k", "64", "--blocksize",
            "8", "--density", "0.25", "--dtype", "float16", "float64", "--op", "bprop",
            "--layout", "balanced", "--baselines", "dense", "--repeat", "2", "--warmup", "0"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert cli.NO_GPU_NOTE not in out  # asked for the CPU: no note about a missing GPU
    lines = [line.split() for line in out.splitlines() if line.startswith("bprop")]
    assert [line[:6] for line in lines] == [["bprop", "fp16", "8", "128", "64", "8"],
                                            ["bprop", "fp64", "8", "128", "64", "8"]]
    assert "scipy" not in out  # baselines not asked for are not run
    assert "dense: numpy in float32" in out  # numpy has no half-precision BLAS


def test_bench_bad_sweep_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "--device", "cpu", "--c", "100", "--blocksize", "16"])
    assert e.value.code == 2
    assert "multiples of the block size 16" in capsys.readouterr().err


@pytest.mark.parametrize("out, match", [
    ("{tmp}/missing/run", "folder '.*missing' does not exist"),
    ("", "give a file name"),
    ("{tmp}/run", "'.*run.json' is a folder"),
])
def test_bench_out_is_checked_before_the_sweep(tmp_path, capsys, monkeypatch, out, match):
    from cupy_bsparse import __main__ as cli

    (tmp_path / "run.json").mkdir()
    monkeypatch.setattr(cli.bench, "run", lambda *a, **k: pytest.fail("the sweep ran"))
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "--device", "cpu", "--out", out.format(tmp=tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and "usage: python -m cupy_bsparse bench" in err


def test_zero_sized_layout_is_never_timed():
    # every (C, K, bs, density) the validation lets through stores at least one block
    for kind in ("random", "balanced", "small_world", "barabasi_albert"):
        for n in (2, 3, 4, 5):
            for d in (0.05, 0.1, 0.5, 1.0):
                try:
                    bench._check_layout_size(kind, n, n, d)
                except ValueError:
                    continue
                assert bench.make_mask(kind, n, n, d, seed=0).any(), (kind, n, d)


def test_cli_exit_code_reports_a_failed_case(monkeypatch, capsys):
    from cupy_bsparse import __main__ as cli

    assert cli.main(["bench", "--device", "cpu", "--quick"]) == 0

    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(bench, "matmul", broken)
    assert cli.main(["bench", "--device", "cpu", "--quick", "--op", "fprop"]) == 1
    assert "kernel exploded" in capsys.readouterr().out


def test_failed_case_is_reported_not_hidden(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(bench, "matmul", broken)
    rows = bench.run(bench.resolve("cpu", quick=True, ops=["fprop", "wgrad"]), log=None)
    fprop = [r for r in rows if r["op"] == "fprop"]
    assert all(r["time_ms"] is None and "kernel exploded" in r["note"] for r in fprop)
    assert all(r["speedup"] is None and r["dense_ms"] > 0 for r in fprop)
    assert all(r["time_ms"] > 0 for r in rows if r["op"] == "wgrad")
    assert "n/a" in bench.format_table(rows, ("dense", "scipy"))


def test_format_table_aligns_and_marks_missing_values():
    row = dict.fromkeys(bench.COLUMNS)
    row.update(op="fprop", dtype="bfloat16", m=64, c=16384, k=16384, blocksize=32,
               density=0.1, time_ms=0.02134, tflops=157.3, gbs=2712.4, dense_ms=0.195,
               efficiency=0.9138, speedup=9.138, note="torch: not importable")
    text = bench.format_table([row], ("dense", "torch")).splitlines()
    header, line = text[0], text[1]
    assert len(header) == len(line)
    assert line.split() == ["fprop", "bf16", "64", "16384", "16384", "32", "0.100", "0.02134",
                            "157", "2712", "0.195", "0.914", "9.14", "n/a"]
    assert text[2:] == ["notes:", "  torch: not importable"]


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    rows = bench.run(bench.resolve("cpu", quick=True, densities=[0.1, 0.5]), log=None)
    assert bench.plot(tmp_path / "p.png", rows)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info_reports_the_environment(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cupy_bsparse ")
    assert f"kernel source fingerprint: {compiler.source_fingerprint()}" in out
    assert "GPU: " in out and "NVRTC: " in out


def test_overheads_without_gpu_says_so(monkeypatch, capsys):
    from cupy_bsparse import __main__ as cli

    monkeypatch.setattr(cli.bench, "gpu_available", lambda: False)
    assert cli.main(["overheads"]) == 1
    assert "no usable CUDA GPU" in capsys.readouterr().err


def test_overheads_report_names_every_measurement():
    from cupy_bsparse import overheads

    r = {"compile": {"first_call_s": 3.2, "process_s": 4.7, "import_s": 0.9, "next_spec_s": 0.77},
         "cache_hit": {"first_call_s": 0.107, "process_s": 1.3, "import_s": 0.8},
         "tables": {"nnzb": 104858, "tables_ms": [2.8, 1.3, 0.9]},
         "host": {"per_call_us": 34.3, "kernel_us": 5.8, "per_call_range_us": [30.1, 41.0],
                  "batches": [10, 200]}}
    text = overheads.report(r)
    for part in ("first call 3.20 s", "new specialisation after that: 0.77 s",
                 "first call 0.107 s", "104858 blocks", "2.8, 1.3, 0.9 ms",
                 "34.3 us per call (median of 10 batches of 200 calls, 30.1-41.0)",
                 "beyond the kernel 28.5 us"):
        assert part in text, part


def test_overheads_first_call_starts_with_both_caches_empty(monkeypatch, tmp_path):
    from cupy_bsparse import overheads

    seen = {}

    def run(cmd, env, **kw):
        seen.update(env)
        return types.SimpleNamespace(stdout='{"first_call_s": 0.1}\n')

    monkeypatch.setenv("CUPY_BSPARSE_CACHE_DIR", "/somewhere/warm")
    monkeypatch.setattr(overheads.subprocess, "run", run)
    assert overheads._first_call(str(tmp_path))["first_call_s"] == 0.1
    # the sm_90a cache then defaults to a folder inside the empty CUPY_CACHE_DIR
    assert seen["CUPY_CACHE_DIR"] == str(tmp_path) and "CUPY_BSPARSE_CACHE_DIR" not in seen


def _speedup_row(op, bs, density, speedup, m=64):
    row = dict.fromkeys(bench.COLUMNS)
    row.update(op=op, dtype="float16", m=m, c=1024, k=1024, layout="random", blocksize=bs,
               density=density, speedup=speedup)
    return row


def test_break_even_reads_the_first_crossing():
    rows = ([_speedup_row("fprop", 8, d, s) for d, s in ((0.4, 0.5), (0.1, 3.0), (0.2, 1.5))]
            + [_speedup_row("fprop", 16, d, s) for d, s in ((0.1, 2.0), (0.2, 0.8), (0.4, 1.2))]
            + [_speedup_row("fprop", 32, d, s) for d, s in ((0.1, 4.0), (0.4, 1.1))]
            + [_speedup_row("fprop", 64, d, s) for d, s in ((0.1, 0.9), (0.4, 0.2))]
            + [_speedup_row("bprop", 8, 0.1, 2.0), _speedup_row("bprop", 8, 0.4, None),
               _speedup_row("wgrad", 8, 0.1, 2.0)])
    rows += [_speedup_row("fprop", 8, d, s, m=4096)                 # two falls: the first
             for d, s in ((0.1, 2.0), (0.2, 0.8), (0.4, 1.2), (0.8, 0.5))]
    rows += [_speedup_row("fprop", 16, d, s, m=4096)                # slower first, then a fall
             for d, s in ((0.1, 0.9), (0.2, 1.8), (0.4, 1.5), (0.8, 0.7))]
    rows += [_speedup_row("fprop", 32, d, s, m=4096)                # wins only at high density
             for d, s in ((0.1, 0.8), (0.2, 1.2))]
    rows += [_speedup_row("fprop", 64, d, s, m=4096)                # repeated density: averaged
             for d, s in ((0.1, 0.5), (0.1, 1.5), (0.2, 0.8))]
    got4096 = {e["blocksize"]: e for e in bench.break_even(rows) if e["m"] == 4096}
    assert got4096[8]["bound"] == "between" and got4096[8]["crossings"] == 3
    assert got4096[8]["density"] == pytest.approx(0.1 + 0.1 / 1.2)
    assert got4096[16]["bound"] == "between" and got4096[16]["crossings"] == 2
    assert got4096[16]["density"] == pytest.approx(0.65)            # 0.4 + 0.5 / 0.8 * 0.4
    assert got4096[32]["bound"] == "rising" and got4096[32]["density"] == pytest.approx(0.15)
    assert got4096[64]["bound"] == "between" and got4096[64]["density"] == pytest.approx(0.1)
    rows = [r for r in rows if r["m"] == 64]
    got = {(e["op"], e["blocksize"]): e for e in bench.break_even(rows)}
    assert set(got) == {("fprop", 8), ("fprop", 16), ("fprop", 32), ("fprop", 64)}
    assert got["fprop", 8]["bound"] == "between"
    assert got["fprop", 8]["density"] == pytest.approx(0.3)        # 0.2 + 0.5 / 1.0 * 0.2
    assert (got["fprop", 8]["lo"], got["fprop", 8]["hi"]) == (0.2, 0.4)
    assert got["fprop", 16]["density"] == pytest.approx(0.1 + 0.1 / 1.2)   # first crossing
    assert got["fprop", 32]["bound"] == "above" and got["fprop", 32]["lo"] == 0.4
    assert got["fprop", 64]["bound"] == "below" and got["fprop", 64]["lo"] == 0.1
    assert all(got[k]["density"] is None for k in (("fprop", 32), ("fprop", 64)))
    text = bench.format_break_even(bench.break_even(rows)).splitlines()
    assert text[0].startswith("break-even density")
    assert text[1].split() == ["op", "dtype", "M", "C", "K", "layout", "bs", "8", "bs", "16",
                               "bs", "32", "bs", "64"]
    assert text[2].split() == ["fprop", "fp16", "64", "1024", "1024", "random", "0.3",
                               "(0.2-0.4)", "0.183", "(0.1-0.2)*", ">", "0.4", "<", "0.1"]
    assert text[3].startswith("* the speed-up crosses 1 more than once")
    assert bench.format_break_even([]) == ""


def test_density_sweep_prints_and_writes_the_break_even_map(tmp_path, capsys):
    prefix = tmp_path / "sweep"
    argv = ["bench", "--device", "cpu", "--quick", "--op", "fprop", "--density", "0.1", "0.6",
            "--out", str(prefix)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "break-even density (block-sparse faster below it):" in out
    doc = json.loads(prefix.with_suffix(".json").read_text())
    entries = doc["break_even"]
    assert sorted(e["blocksize"] for e in entries) == [16, 32]
    assert all(e["bound"] in ("between", "above", "below") for e in entries)
    assert entries == bench.break_even(doc["results"])
