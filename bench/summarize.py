# Summarizes a benchmark run (scripts/bench.sh): reads the mcp-load JSON
# reports, Redis command counts (INFO commandstats) and the replicas' Redis
# round trips (mcp_redis_round_trips_total before and after) from a
# directory; prints the comparison table (the median run of each
# configuration, with the spread of its runs), the ratios the project's
# targets are stated in with whether each is met, Redis commands and round
# trips per tool call, and the wrk cross-check; writes summary.json beside
# them.
#
# Usage: summarize.py DIR

import json
import pathlib
import re
import statistics
import sys

CONFIGS = [
    ("a", "1 replica, in-memory store"),
    ("b", "1 replica, Redis store"),
    ("c", "3 replicas behind round-robin nginx, Redis"),
    ("d", "Python SDK server, Streamable HTTP sessions"),
    ("e", "Python SDK server, stateless_http=True"),
    ("f", "TypeScript SDK server, Streamable HTTP sessions"),
    ("g", "TypeScript SDK server, stateless (sessionIdGenerator undefined)"),
    ("h", "the hub (1 replica, Redis) in front of b"),
]

# Commands of the benchmark script itself, not of the replicas.
SCRIPT_COMMANDS = ("cmdstat_info", "cmdstat_config", "cmdstat_config|resetstat", "cmdstat_ping")


def redis_commands(path: pathlib.Path):
    if not path.exists():
        return None
    commands = {}
    for line in path.read_text().splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line.split(":", 1)
            if name in SCRIPT_COMMANDS:
                continue
            fields = dict(item.split("=") for item in rest.split(","))
            commands[name[len("cmdstat_"):]] = int(fields["calls"])
    return commands


def trips(directory: pathlib.Path, key: str):
    before, after = directory / f"{key}.trips-before.txt", directory / f"{key}.trips-after.txt"
    if not (before.exists() and after.exists()):
        return None

    def read(path):
        return {op: float(n) for op, n in (line.split() for line in path.read_text().splitlines() if line)}

    start, end = read(before), read(after)
    return {op: end[op] - start.get(op, 0.0) for op in end if end[op] - start.get(op, 0.0) > 0}


def run_of(directory: pathlib.Path, key: str):
    report = json.loads((directory / f"{key}.json").read_text())
    calls = report["calls"]["count"]
    commands = redis_commands(directory / f"{key}.redis.txt")
    round_trips = trips(directory, key)
    report["redis_commands"] = commands
    report["redis_commands_per_call"] = sum(commands.values()) / calls if commands and calls else None
    report["redis_round_trips"] = round_trips
    report["redis_round_trips_per_call"] = (
        sum(round_trips.values()) / calls if round_trips is not None and calls else None
    )
    return report


def wrk_summary(path: pathlib.Path):
    if not path.exists():
        return None
    text = path.read_text()
    found = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        found["requests_per_s"] = float(m.group(1))
    for pct in ("50", "90", "99"):
        if m := re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            found[f"p{pct}_ms"] = float(m.group(1)) * scale
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        found["non_2xx"] = int(m.group(1))
    found["socket_errors"] = text.count("Socket errors")
    return found


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    directory = pathlib.Path(sys.argv[1])
    summary = {"runs": {}, "ratios": {}, "targets": {}, "wrk": {}}
    print("| config | what | calls/s (median) | runs: calls/s | p50 ms | p90 ms | p99 ms | max ms "
          "| session start p50 ms | errors (all runs) | Redis cmds/call | Redis round trips/call |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, what in CONFIGS:
        runs = [run_of(directory, p.stem) for p in sorted(directory.glob(f"{key}.*.json"))]
        if not runs:
            continue
        runs.sort(key=lambda r: r["throughput_rps"])
        median = runs[(len(runs) - 1) // 2]
        errors = sum(r["error_count"] for r in runs)
        summary["runs"][key] = {
            **median,
            "what": what,
            "all_runs_rps": [r["throughput_rps"] for r in runs],
            "all_runs_p99_ms": [r["calls"]["p99_ms"] for r in runs],
            "errors_all_runs": errors,
        }
        calls = median["calls"]
        spread = " / ".join(f"{r['throughput_rps']:.0f}" for r in runs)
        print(
            f"| {key} | {what} | {median['throughput_rps']:.0f} | {spread} | {calls['p50_ms']:.3f} | "
            f"{calls['p90_ms']:.3f} | {calls['p99_ms']:.3f} | {calls['max_ms']:.3f} | "
            f"{median['session_start']['p50_ms']:.3f} | {errors} | "
            f"{fmt(median['redis_commands_per_call'])} | {fmt(median['redis_round_trips_per_call'], 3)} |"
        )
    for extra in sorted(directory.glob("extra-*.json")):
        report = run_of(directory, extra.stem)
        summary["runs"][extra.stem] = report
        calls = report["calls"]
        start = report["session_start"]
        print(
            f"| {extra.stem[6:]} | {report['label']} | {report['throughput_rps']:.0f} | - | {calls['p50_ms']:.3f} | "
            f"{calls['p90_ms']:.3f} | {calls['p99_ms']:.3f} | {calls['max_ms']:.3f} | "
            f"{fmt(start['p50_ms'], 3) if start['count'] else '-'} | {report['error_count']} | "
            f"{fmt(report['redis_commands_per_call'])} | {fmt(report['redis_round_trips_per_call'], 3)} |"
        )
    runs = summary["runs"]

    print()
    for key in ("b", "c", "h", "extra-b-stateless"):
        if key in runs and runs[key]["redis_commands"]:
            per_call = {
                name: count / runs[key]["calls"]["count"] for name, count in runs[key]["redis_commands"].items()
            }
            trips_ = {op: n / runs[key]["calls"]["count"] for op, n in (runs[key]["redis_round_trips"] or {}).items()}
            print(f"{key}: Redis commands per call " + ", ".join(f"{n} {v:.3f}" for n, v in sorted(per_call.items())))
            print(f"{key}: Redis round trips per call " + ", ".join(f"{n} {v:.4f}" for n, v in sorted(trips_.items())))

    def ratio(x: str, y: str):
        if x in runs and y in runs and runs[y]["throughput_rps"]:
            value = runs[x]["throughput_rps"] / runs[y]["throughput_rps"]
            p99 = runs[x]["calls"]["p99_ms"] - runs[y]["calls"]["p99_ms"]
            summary["ratios"][f"{x}/{y}"] = {"throughput": value, "p99_delta_ms": p99}
            print(f"{x}/{y}: throughput x{value:.3f}, p99 {p99:+.3f} ms")
            return value, p99
        return None

    print()
    ba = ratio("b", "a")
    ratio("c", "a")
    ad = ratio("a", "d")
    ratio("a", "e")
    ratio("a", "f")
    ratio("a", "g")
    ratio("h", "b")

    def target(name: str, met: bool, detail: str):
        summary["targets"][name] = {"met": met, "detail": detail}
        print(f"target {name}: {'met' if met else 'NOT met'} ({detail})")

    print()
    if ba:
        target("b >= 90% of a, p99 within 1 ms", ba[0] >= 0.9 and ba[1] <= 1.0,
               f"b/a x{ba[0]:.3f}, p99 {ba[1]:+.3f} ms")
    trip_values = [runs[k]["redis_round_trips_per_call"] for k in ("b", "c") if k in runs]
    trip_values = [v for v in trip_values if v is not None]
    if trip_values:
        target("<= 1 Redis round trip per call", max(trip_values) <= 1.0,
               ", ".join(f"{k} {fmt(runs[k]['redis_round_trips_per_call'], 4)}" for k in ("b", "c") if k in runs))
    if ad:
        target("a >= 20x d, lower p99", ad[0] >= 20 and ad[1] < 0, f"a/d x{ad[0]:.1f}, p99 {ad[1]:+.3f} ms")
    all_errors = sum(r.get("errors_all_runs", r["error_count"]) for r in runs.values())
    target("zero errors", all_errors == 0, f"{all_errors} errors over every run")

    for name in ("wrk-a-session", "wrk-a-stateless"):
        found = wrk_summary(directory / f"{name}.txt")
        if found:
            summary["wrk"][name] = found
            print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
