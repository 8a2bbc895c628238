"""Summarise ncu --csv --page raw files: one line per case with the bound's numbers.

    python3 probes/ncu_summary.py DIR          (every DIR/*.csv, ncu_rows.sh)
    python3 probes/ncu_summary.py --all FILE   (every non-zero counter of one file, ncu_l2.sh)"""
import csv, glob, io, os, sys

KEYS = [("gpu__time_duration.sum", "us", 1e-3), ("dram__throughput.avg.pct_of_peak_sustained_elapsed", "dram%", 1),
        ("lts__throughput.avg.pct_of_peak_sustained_elapsed", "L2%", 1),
        ("sm__throughput.avg.pct_of_peak_sustained_elapsed", "sm%", 1),
        ("l1tex__m_xbar2l1tex_read_bytes.sum", "L2->SM MB", 1e-6), ("dram__bytes_read.sum", "dram MB", 1e-6),
        ("dram__bytes_write.sum", "dram wr MB", 1e-6), ("lts__t_sector_hit_rate.pct", "L2 hit%", 1),
        ("smsp__issue_active.avg.pct_of_peak_sustained_active", "issue%", 1),
        ("smsp__warps_active.avg.per_cycle_active", "warps/sched", 1),
        ("smsp__warps_eligible.avg.per_cycle_active", "eligible", 1),
        ("sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active", "hmma%", 1),
        ("launch__registers_per_thread", "regs", 1), ("launch__grid_size", "grid", 1)]
STALL = "smsp__average_warps_issue_stalled_"


def raw(path):
    """(names, units, values) of the first profiled launch in an ncu raw CSV, or None."""
    text = open(path).read()
    i = text.find('"ID"')
    if i < 0:
        return None
    rows = list(csv.reader(io.StringIO(text[i:])))
    return rows[0], rows[1], rows[2] if len(rows) > 2 else []


def print_all(path):
    """Every counter of ``path`` with a non-zero numeric value, one a line."""
    got = raw(path)
    if got is None or not got[2]:
        print("no data"); return
    for k, u, v in zip(*got):
        try:
            f = float(v.replace(",", ""))
        except ValueError:
            continue
        if "__" in k and f != 0:
            print(f"   {k:72s} {v:>16s} {u}")


if sys.argv[1] == "--all":
    print_all(sys.argv[2]); sys.exit()
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.csv"))):
    got = raw(path)
    if got is None:
        print(os.path.basename(path), "no data"); continue
    head, units, vals = got
    d = dict(zip(head, vals)); u = dict(zip(head, units))
    def num(k):
        try: return float(d[k].replace(",", ""))
        except (KeyError, ValueError): return None
    parts = [d.get("Kernel Name", "?")[:24]]
    for k, name, scale in KEYS:
        v = num(k)
        if v is not None:
            if k == "gpu__time_duration.sum":
                scale = {"nsecond": 1e-3, "usecond": 1, "msecond": 1e3}.get(u.get(k, ""), 1e-3)
            if k.endswith("bytes_read_bytes.sum") or "bytes" in k:
                scale = {"byte": 1e-6, "Kbyte": 1e-3, "Mbyte": 1, "Gbyte": 1e3}.get(u.get(k, ""), 1e-6)
            parts.append(f"{name} {v * scale:.3g}")
    stalls = sorted(((num(k) or 0, k[len(STALL):].replace("_per_issue_active.ratio", ""))
                     for k in head if k.startswith(STALL) and k.endswith("_per_issue_active.ratio")), reverse=True)
    parts.append("stalls " + " ".join(f"{n} {v:.2f}" for v, n in stalls[:5]))
    print(os.path.basename(path)[:-4] + ": " + "; ".join(parts))
