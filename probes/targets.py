"""Issue 4's status table from bench JSON files (no GPU needed).

For each (M, C, K, layout, dtype, block size) found: E of fprop / bprop / wgrad, bprop's and
wgrad's time over fprop's, the target E and whether the row is met (every E at or above the
target, and bprop and wgrad within 1.25x of fprop). The issue's targets "also hold for
non-square W and for M that is not a multiple of the tile": a case takes its regime's targets
by M (``regime``: small for M up to 128, large for M 2048-8192), and a shape that is not the
regime's (M = 64 with C = K = 16384, M = 4096 with C = K = 8192) is marked with its M, C and
K, as is a product missing from the files. Later files replace earlier rows of the same case
(densities are cases apart).

    python probes/targets.py OUT/targets_M64.json OUT/targets_M4096.json
"""
import json
import sys

#: issue 4: target E at d = 0.10 per (M, dtype, block size), and each regime's C = K
TARGETS = {}
for _dt in ("float16", "bfloat16"):
    TARGETS.update({(64, _dt, 8): 0.6, (64, _dt, 16): 0.8, (64, _dt, 32): 0.8, (64, _dt, 64): 0.8,
                    (4096, _dt, 8): 0.06, (4096, _dt, 16): 0.12, (4096, _dt, 32): 0.22,
                    (4096, _dt, 64): 0.45})
TARGETS.update({(64, "float32", 8): 0.6, (64, "float32", 16): 0.8, (64, "float32", 32): 0.8,
                (64, "float32", 64): 0.8, (4096, "float32", 8): 0.45,
                (4096, "float32", 16): 0.7, (4096, "float32", 32): 0.85,
                (4096, "float32", 64): 0.85})
REGIME_CK = {64: 16384, 4096: 8192}


def regime(m):
    """The regime (the M of TARGETS' keys) whose targets a case of ``m`` rows takes: 64 for M
    up to 128, 4096 for M 2048-8192, None otherwise (no target)."""
    return 64 if 1 <= m <= 128 else 4096 if 2048 <= m <= 8192 else None
RATIO = 1.25
OPS = ("fprop", "bprop", "wgrad")


def load(paths):
    """{case key: {op: row}} from bench JSON files; later files win."""
    cases = {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        for r in doc["results"]:
            if r.get("tf32"):
                continue                  # the targets are for float32 accuracy
            key = (r["m"], r["c"], r["k"], r["layout"], r["dtype"], r["blocksize"],
                   round(r["density"], 3))
            cases.setdefault(key, {})[r["op"]] = r
    return cases


def _e(row):
    return None if row is None else row.get("efficiency")


def status(cases):
    """Rows of (cells..., met) for every case with a target, in regime / dtype / bs order."""
    order = {"float16": 0, "bfloat16": 1, "float32": 2}
    out = []
    for key in sorted(cases, key=lambda k: (k[0], k[3], order.get(k[4], 9), k[5], k[6])):
        m, c, k, layout, dtype, bs, _ = key
        reg = regime(m)
        target = TARGETS.get((reg, dtype, bs))
        if target is None:
            continue
        ops = cases[key]
        es = [_e(ops.get(op)) for op in OPS]
        t = {op: ops[op]["time_ms"] if op in ops else None for op in OPS}
        ratios = [t[op] / t["fprop"] if t[op] and t["fprop"] else None for op in ("bprop", "wgrad")]
        density = next(iter(ops.values()))["density"]
        notes = []
        if next(iter(ops.values())).get("device") != "gpu":
            notes.append("CPU reference")
        if m != reg or c != REGIME_CK[reg] or k != REGIME_CK[reg]:
            notes.append(f"M = {m}, C = {c}, K = {k}: the M = {reg} regime's targets")
        if abs(density - 0.1) > 0.005:
            notes.append(f"d = {density:.3f}")
        missing = [op for op, e in zip(OPS, es) if e is None]
        if missing:
            notes.append("no " + " / ".join(missing))
        met = (not missing and all(e >= target for e in es)
               and all(r is not None and r <= RATIO for r in ratios))
        short = [op for op, e in zip(OPS, es) if e is not None and e < target]
        short += [f"{op} {r:.2f}x" for op, r in zip(("bprop", "wgrad"), ratios)
                  if r is not None and r > RATIO]
        out.append(dict(m=m, layout=layout, dtype=dtype, bs=bs, e=es, ratios=ratios,
                        target=target, met=met, short=short, notes=notes))
    return out


def _f(v, spec):
    return "n/a" if v is None else format(v, spec)


def markdown(rows):
    lines = ["| M | layout | dtype | bs | E fprop / bprop / wgrad | bprop, wgrad x fprop | target "
             "| met |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = "**yes**" if r["met"] else "no" + (f" ({', '.join(r['short'])})" if r["short"] else "")
        if r["notes"]:
            met += "; " + "; ".join(r["notes"])
        lines.append(f"| {r['m']} | {r['layout']} | {r['dtype']} | {r['bs']} | "
                     + " / ".join(_f(e, ".3f") for e in r["e"]) + " | "
                     + ", ".join(_f(x, ".2f") for x in r["ratios"]) + f" | {r['target']} | {met} |")
    n_met = sum(r["met"] for r in rows)
    lines.append(f"\n{n_met} of {len(rows)} rows met.")
    return "\n".join(lines)


def main(argv):
    if not argv:
        sys.exit(__doc__)
    print(markdown(status(load(argv))))


if __name__ == "__main__":
    main(sys.argv[1:])
