"""tests/conftest.py's CUPY_BSPARSE_SHARD (.ci/gpu's GPU_SHARDS): the shards split the selected
tests into disjoint parts that cover them all; a bad value is a clear error."""
import os
import subprocess
import sys

import pytest

from conftest import parse_shard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collected(shard, target="tests/test_layouts.py", k="small_world"):
    env = dict(os.environ)
    env.pop("CUPY_BSPARSE_SHARD", None)
    if shard is not None:
        env["CUPY_BSPARSE_SHARD"] = shard
    run = subprocess.run([sys.executable, "-m", "pytest", target, "--collect-only", "-q",
                          "-p", "no:cacheprovider", "-k", k], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return [line for line in run.stdout.splitlines() if "::" in line]


def test_shards_partition_the_selected_tests():
    everything = _collected(None)
    assert len(everything) >= 6                     # enough tests for three non-empty shards
    parts = [_collected(f"{i}/3") for i in range(3)]
    assert all(parts)
    assert sorted(sum(parts, [])) == sorted(everything)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("value", ["1", "a/b", "3/3", "-1/2", "1/0", "0/2/4"])
def test_parse_shard_rejects(value):
    with pytest.raises(ValueError, match="CUPY_BSPARSE_SHARD"):
        parse_shard(value)


def test_parse_shard():
    assert parse_shard("2/5") == (2, 5)
