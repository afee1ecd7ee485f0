"""Issue 33's attacks and our variants of each kind, run as the command line would meet them: every one
ends in the outcome it must (one `error:` line and exit status 2 for a refused file; the damage named
for a dataset; the user's files kept), in under 5 s and 500 MB, and writes nothing outside the folder
the user named. The attack files are made at test time from pickle opcodes (tests/hostile.py); each
runs in a forked child of a fresh interpreter under RLIMIT_AS (its address space + 500 MB), timed,
its peak memory measured with wait4. Then a fixed-seed fuzz of the fixtures' bytes."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SCRATCH
import hostile

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork, wait4 and /proc: the harness is Linux's")


def _harness(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "hostile.py"), *args], cwd=SCRATCH, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def results():
    return {(row["kind"], row["name"]): row for row in _harness("--attacks")}


ATTACKS = hostile.ATTACKS


@pytest.mark.parametrize("attack", ATTACKS, ids=[f"{a.kind}: {a.name}" for a in ATTACKS])
def test_the_attack_holds(attack, results):
    if attack.needs_fixture and not (hostile.FIXTURES / "tiny32.pkl").is_file():
        pytest.skip(f"NVIDIA fixtures not found at {hostile.FIXTURES}")
    row = results[(attack.kind, attack.name)]
    assert row["held"], row
    assert row["seconds"] < hostile.TIME_LIMIT and row["peak_mb"] < hostile.MEMORY_LIMIT_MB
    if attack.exit_status == 2:
        assert row["error"].startswith("error: ") and "\n" not in row["error"]


def test_every_kind_of_the_issue_is_attacked_several_ways():
    kinds = {}
    for attack in ATTACKS:
        kinds[attack.kind] = kinds.get(attack.kind, 0) + 1
    assert set(kinds) == {"symlink-lock", "billion-laughs", "deep-nesting", "few-bytes-gigabytes", "bad-values",
                          "dataset-escape", "convert-overwrite"}
    assert min(kinds.values()) >= 4, kinds


def test_a_fixed_seed_fuzz_of_the_fixtures_ends_in_an_import_or_one_error_line():
    """Mutations of tiny32.pkl's bytes (bits flipped around opcodes, opcodes inserted, lengths and memo
    indices changed, ranges deleted or repeated, the file cut): each one is read and checked as
    `import-nvidia` does before it builds anything, and must pass or be refused with one line, in under
    5 s; the whole run, in one process limited to 500 MB more address space than it starts with, stays
    under 500 MB resident. (benchmarks/fuzz_nvidia_reader.py runs thousands, each in its own child.)"""
    if not (hostile.FIXTURES / "tiny32.pkl").is_file():
        pytest.skip(f"NVIDIA fixtures not found at {hostile.FIXTURES}")
    rows = _harness("--fuzz", "250", "--seed", "33", "--in-process")
    assert len(rows) == 250
    failed = [row for row in rows if not row["held"]]
    assert not failed, failed[:3]
    outcomes = {row["exit"] for row in rows}
    assert outcomes == {0, 2}  # some mutations are harmless (weights changed), most are refused
    assert max(row["seconds"] for row in rows) < hostile.TIME_LIMIT
    assert max(row["peak_mb"] for row in rows) < hostile.MEMORY_LIMIT_MB
    assert len({row["mutation"] for row in rows}) == 7  # every kind of mutation was tried
