"""One summary line for the GPU suite run in shards (.ci/gpu's GPU_SHARDS): the counts of every
pytest summary line ("== 12 passed, 3 skipped, 4 deselected in 5.0s ==") in LOG, added up
(deselected left out: each shard counts the others' tests there).

    python .ci/sum_pytest.py LOG SECONDS
"""
import re
import sys

KINDS = ("failed", "passed", "skipped", "xfailed", "xpassed", "warnings", "errors")


def main(log, seconds):
    totals, shards = dict.fromkeys(KINDS, 0), 0
    with open(log, errors="replace") as f:
        for line in f:
            if not re.search(r"\d+ (passed|failed|skipped|deselected|errors?)\b.* in [\d.]+s", line):
                continue
            shards += 1
            for count, kind in re.findall(r"(\d+) (\w+)", line):
                kind = {"error": "errors", "warning": "warnings"}.get(kind, kind)
                if kind in totals:
                    totals[kind] += int(count)
    parts = [f"{v} {k}" for k, v in totals.items() if v]
    print(f"{', '.join(parts) or 'no tests'} in {seconds}s ({shards} shards)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
