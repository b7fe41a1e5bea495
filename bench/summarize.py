# Summarizes a benchmark run (scripts/bench.sh): reads the mcp-load JSON
# reports and Redis command counts from a directory, prints the comparison
# table, the ratios the project's targets are stated in, and Redis commands
# per tool call; writes summary.json beside them.
#
# Usage: summarize.py DIR

import json
import pathlib
import sys

CONFIGS = [
    ("a", "1 replica, in-memory store"),
    ("b", "1 replica, Redis store"),
    ("c", "3 replicas behind round-robin nginx, Redis"),
    ("d", "Python SDK server, Streamable HTTP sessions"),
    ("e", "Python SDK server, stateless_http=True"),
]


def load(directory: pathlib.Path, name: str):
    path = directory / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def redis_calls(directory: pathlib.Path, name: str) -> int | None:
    path = directory / f"{name}.redis.txt"
    if not path.exists():
        return None
    total = 0
    for line in path.read_text().splitlines():
        if line.startswith("cmdstat_"):
            fields = dict(item.split("=") for item in line.split(":", 1)[1].split(","))
            name_ = line.split(":", 1)[0]
            if name_ not in ("cmdstat_info", "cmdstat_config", "cmdstat_ping"):
                total += int(fields["calls"])
    return total


def main() -> None:
    directory = pathlib.Path(sys.argv[1])
    rows = []
    summary = {"runs": {}, "ratios": {}}
    print("| config | what | calls/s | p50 ms | p90 ms | p99 ms | max ms | session start p50 ms | errors | Redis cmds/call |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, what in CONFIGS:
        report = load(directory, key)
        if report is None:
            continue
        commands = redis_calls(directory, key)
        per_call = None
        if commands is not None and report["calls"]["count"]:
            per_call = commands / report["calls"]["count"]
        summary["runs"][key] = {**report, "what": what, "redis_commands_per_call": per_call}
        calls = report["calls"]
        print(
            f"| {key} | {what} | {report['throughput_rps']:.0f} | {calls['p50_ms']:.3f} | "
            f"{calls['p90_ms']:.3f} | {calls['p99_ms']:.3f} | {calls['max_ms']:.3f} | "
            f"{report['session_start']['p50_ms']:.3f} | {report['error_count']} | "
            f"{'-' if per_call is None else f'{per_call:.2f}'} |"
        )
    for extra in sorted(directory.glob("extra-*.json")):
        report = json.loads(extra.read_text())
        calls = report["calls"]
        print(
            f"| {extra.stem[6:]} | {report['label']} | {report['throughput_rps']:.0f} | {calls['p50_ms']:.3f} | "
            f"{calls['p90_ms']:.3f} | {calls['p99_ms']:.3f} | {calls['max_ms']:.3f} | "
            f"{report['session_start']['p50_ms']:.3f} | {report['error_count']} | - |"
        )
    runs = summary["runs"]

    def ratio(x: str, y: str) -> None:
        if x in runs and y in runs and runs[y]["throughput_rps"]:
            value = runs[x]["throughput_rps"] / runs[y]["throughput_rps"]
            p99 = runs[x]["calls"]["p99_ms"] - runs[y]["calls"]["p99_ms"]
            summary["ratios"][f"{x}/{y}"] = {"throughput": value, "p99_delta_ms": p99}
            print(f"{x}/{y}: throughput x{value:.2f}, p99 {p99:+.3f} ms")

    print()
    ratio("b", "a")
    ratio("c", "a")
    ratio("a", "d")
    ratio("a", "e")
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
