"""Issue 33's table: every hostile attack kind, and a long fuzz of the NVIDIA fixtures, each file in its own
forked child under RLIMIT_AS (its address space + 500 MB) with its time and peak memory measured.

    PYTHONPATH=. python benchmarks/fuzz_nvidia_reader.py [--count 2000] [--seed 0] [--fixtures tiny32,small64]
                                                         [--json results.json]

Attacks (tests/hostile.py, also run by tests/test_hostile_attacks.py) go through the command line
(`import-nvidia`, `convert`, `verify`) as a user would meet them. The fuzz mutates the fixtures' bytes
(bits flipped around opcodes, opcodes inserted, lengths and memo indices changed, ranges deleted or
repeated, the file cut, bytes anywhere) and reads and checks each file as `import-nvidia` does before it
builds anything. A file holds when it ends in its expected outcome (for the fuzz: read fine, or one
`error:` line with exit status 2), in under 5 s and 500 MB. Prints a Markdown table (kind, files tried,
held, max time, peak memory) with the CPU it ran on, for docs/security.md; --json keeps every row.
"""

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import hostile  # noqa: E402


def cpu() -> str:
    """The CPU's model name and the flags the project names beside every figure."""
    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name") and name == "unknown CPU":
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if flag in flags]
    return f"{name} ({os.cpu_count()} cores; flags: {', '.join(shown) or 'none of avx2/avx512/amx'})"


def table(rows) -> str:
    groups = collections.OrderedDict()
    for row in rows:
        groups.setdefault(row["kind"], []).append(row)
    lines = ["| attack kind | files tried | held | max time (s) | peak memory (MB) |",
             "| --- | ---: | --- | ---: | ---: |"]
    for kind, members in groups.items():
        held = sum(row["held"] for row in members)
        lines.append(f"| {kind} | {len(members)} | {'yes' if held == len(members) else f'no ({held} held)'} | "
                     f"{max(row['seconds'] for row in members):.2f} | {max(row['peak_mb'] for row in members):.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="mutated files per fixture (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixtures", default="tiny32,small64")
    parser.add_argument("--no-attacks", action="store_true", help="only the fuzz")
    parser.add_argument("--json", default=None, help="write every row here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows, started = [], time.time()
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        if not args.no_attacks:
            for index, attack in enumerate(hostile.available_attacks()):
                row = hostile.run_attack(attack, Path(folder) / f"{index:03d}")
                rows.append(row)
                if not row["held"]:
                    print(f"NOT HELD: {attack.kind}: {attack.name}: {row['problems']}", file=sys.stderr)
        for name in args.fixtures.split(","):
            if not (hostile.FIXTURES / f"{name}.pkl").is_file():
                print(f"{name}.pkl not found in {hostile.FIXTURES}: not fuzzed", file=sys.stderr)
                continue
            outcomes = collections.Counter()
            for result in hostile.fuzz(args.count, args.seed, (name,), folder):
                outcomes[(result["mutation"], result["exit"])] += 1
                rows.append({**result, "kind": f"fuzz: mutations of {name}.pkl"})
                if not result["held"]:
                    print(f"NOT HELD: fuzz {name} #{result['index']} ({result['mutation']}): {result['stderr'][-500:]}",
                          file=sys.stderr)
            print(f"{name}: " + ", ".join(f"{mutation} -> exit {code}: {count}"
                                          for (mutation, code), count in sorted(outcomes.items())), file=sys.stderr)
    print(f"CPU: {cpu()}; {time.time() - started:.0f} s in all")
    print(table(rows))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"cpu": cpu(), "rows": rows}, file, indent=1)
    return 0 if all(row["held"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
