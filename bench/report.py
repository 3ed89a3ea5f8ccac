"""The figures the benchmarks share, and the summary that `make bench` ends with.

    .venv/bin/python bench/report.py [--dir var/bench]

Each benchmark repeats its measurement (`--runs`) and reports the median over the runs, computed here, so that one
noisy run on a shared 2-core machine does not decide a target. Here too: the ratios of our setup to the stock one,
issue 8's targets with their bars and pass/fail, and the machine the figures come from. Run as a script, it reads
load.json, parse.json, coldstart.json and startup.json (each if present) from the directory and writes summary.md
and summary.json there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"

# Issue 8's bars.
BAR_USERS = 500  # concurrent conversations the throughput, latency, error and loss bars are measured at
BAR_DURATION_S = 60.0
BAR_THROUGHPUT = 120.0  # messages/s
BAR_P95_MS = 150.0
BAR_RATIO = 2.0  # our throughput over the stock setup's, both within the latency bar
BAR_PARSE_P95_MS = 15.0
BAR_COLD_START_S = 20.0
BAR_RSS_MB = 1536.0  # 1.5 GiB, all server processes together
BAR_TRAINING_S = 300.0

# The figures of a load level that are medians over runs in the report.
LEVEL_FIGURES = (
    "throughput", "p50_ms", "p95_ms", "p99_ms", "messages", "errors", "off_path",
    "declarations_completed", "cases_found", "cases_lost", "enrollments_completed", "enrollments_found",
    "rss_rasa_mb", "rss_actions_mb", "rss_total_mb",
)  # fmt: skip

PASS, FAIL, NOT_MEASURED = "pass", "FAIL", "not measured"


def median(values: Sequence[float | int | None]) -> float | None:
    """The median of the values that are there (None: a run that did not measure it), rounded for reports."""
    present = [v for v in values if v is not None]
    return round(float(statistics.median(present)), 2) if present else None


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median_levels(runs: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per level (matched by `users`, in the order of the first run), the median over the runs of each figure in
    LEVEL_FIGURES, with `runs` saying how many runs measured that level. The per-run figures stay with the runs."""
    order = [level["users"] for level in runs[0]] if runs else []
    medians = []
    for users in order:
        same = [level for run in runs for level in run if level["users"] == users]
        row: dict[str, Any] = {"users": users, "runs": len(same)}
        for figure in LEVEL_FIGURES:
            row[figure] = median([level.get(figure) for level in same])
        medians.append(row)
    return medians


def within_bar(levels: Sequence[dict[str, Any]], p95_bar: float = BAR_P95_MS) -> dict[str, Any] | None:
    """The highest level whose p95 is within the bar: the most sustained throughput this setup showed there."""
    fitting = [level for level in levels if level.get("p95_ms") is not None and level["p95_ms"] <= p95_bar]
    if not fitting:
        return None
    best = max(fitting, key=lambda level: level["users"])
    return {"users": best["users"], "throughput": best["throughput"], "p95_ms": best["p95_ms"]}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def ratios(tuned: Sequence[dict[str, Any]], stock: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Our setup against the stock one, from the per-level medians of each.

    `per_level`: at the same number of conversations, our throughput over stock's, with each p95 beside it.
    `at_latency_bar`: for each setup the highest level whose p95 ≤ 150 ms and its throughput, and the ratio of
    those two throughputs (the issue's "at equal p95"); None where a setup is within the bar at no level.
    """
    stock_by_users = {level["users"]: level for level in stock}
    per_level = []
    for level in tuned:
        peer = stock_by_users.get(level["users"])
        if peer is None:
            continue
        per_level.append(
            {
                "users": level["users"],
                "tuned_throughput": level["throughput"],
                "stock_throughput": peer["throughput"],
                "throughput_ratio": ratio(level["throughput"], peer["throughput"]),
                "tuned_p95_ms": level["p95_ms"],
                "stock_p95_ms": peer["p95_ms"],
            }
        )
    best_tuned, best_stock = within_bar(tuned), within_bar(stock)
    return {
        "per_level": per_level,
        "at_latency_bar": {
            "p95_bar_ms": BAR_P95_MS,
            "tuned": best_tuned,
            "stock": best_stock,
            "throughput_ratio": ratio(
                best_tuned["throughput"] if best_tuned else None, best_stock["throughput"] if best_stock else None
            ),
        },
    }


@dataclass
class Target:
    """One of issue 8's targets: what it is, its bar, the measured median, pass/fail, and how it was measured."""

    target: str
    bar: str
    measured: str
    status: str
    note: str = ""


def judged(ok: bool, exact: bool) -> str:
    """pass/FAIL; a run that did not meet the bar's conditions (fewer conversations, shorter) says so."""
    status = PASS if ok else FAIL
    return status if exact else f"{status} (short run)"


def bar_level(report: dict[str, Any], setup: str = "tuned") -> tuple[dict[str, Any], list[dict[str, Any]], bool, str]:
    """The level the bars are judged at: 500 conversations, or in a run without it the highest level run. Returns
    its medians, its per-run figures, whether the run met the bar's conditions, and a note saying how it ran."""
    medians = report["setups"][setup]["median"]
    users = BAR_USERS if any(level["users"] == BAR_USERS for level in medians) else max(lv["users"] for lv in medians)
    level = next(lv for lv in medians if lv["users"] == users)
    per_run = [lv for run in report["setups"][setup]["runs"] for lv in run if lv["users"] == users]
    note = f"{users} conversations, {report['duration_s']:g} s, median of {len(per_run)} run(s)"
    exact = users == BAR_USERS and report["duration_s"] >= BAR_DURATION_S
    if not exact:
        note += f"; the bar: {BAR_USERS} conversations, {BAR_DURATION_S:g} s"
    return level, per_run, exact, note


def load_targets(report: dict[str, Any]) -> list[Target]:
    """The targets the load benchmark measures, for our setup (`tuned`)."""
    level, per_run, exact, note = bar_level(report)
    worst_errors = max(lv["errors"] for lv in per_run)
    all_levels = [lv for run in report["setups"]["tuned"]["runs"] for lv in run]
    lost = sum(lv["cases_lost"] for lv in all_levels)
    unequal = sum(
        lv["cases_found"] != lv["declarations_completed"] or lv["enrollments_found"] != lv["enrollments_completed"]
        for lv in all_levels
    )
    rss = max((lv["rss_total_mb"] for lv in report["setups"]["tuned"]["median"] if lv["rss_total_mb"]), default=None)
    targets = [
        Target("throughput", f"≥ {BAR_THROUGHPUT:g} messages/s", f"{level['throughput']} messages/s",
               judged(level["throughput"] >= BAR_THROUGHPUT, exact), note),
        Target("latency p95 per message", f"≤ {BAR_P95_MS:g} ms", f"{level['p95_ms']} ms",
               judged(level["p95_ms"] <= BAR_P95_MS, exact), note),
        Target("errors", "0 in every run", f"{level['errors']:g} (worst run {worst_errors})",
               judged(worst_errors == 0, exact), note),
        Target("lost cases", "0: cases and enrollments in the database = flows completed",
               f"{lost} lost, {unequal} level(s) unequal", PASS if lost == 0 and unequal == 0 else FAIL,
               "every level of every run"),
        Target("total RSS of the servers", f"≤ {BAR_RSS_MB / 1024:g} GiB",
               f"{rss:g} MiB" if rss is not None else "–",
               NOT_MEASURED if rss is None else PASS if rss <= BAR_RSS_MB else FAIL,
               "the highest level's median of the max sampled during it"),
    ]  # fmt: skip
    targets.append(ratio_target(report))
    return targets


def ratio_target(report: dict[str, Any]) -> Target:
    name, bar = "throughput against the stock setup", f"≥ {BAR_RATIO:g}× at equal p95"
    found = report.get("ratios")
    if not found:
        return Target(name, bar, "–", NOT_MEASURED, "run without the stock peer")
    at_bar = found["at_latency_bar"]
    if at_bar["throughput_ratio"] is None:
        missing = [setup for setup in ("tuned", "stock") if at_bar[setup] is None]
        return Target(
            name,
            bar,
            "–",
            NOT_MEASURED,
            f"p95 > {BAR_P95_MS:g} ms at every level for: {', '.join(missing)} (run lower levels)",
        )
    tuned, stock = at_bar["tuned"], at_bar["stock"]
    return Target(
        name,
        bar,
        f"{at_bar['throughput_ratio']}×",
        PASS if at_bar["throughput_ratio"] >= BAR_RATIO else FAIL,
        f"{tuned['throughput']} msg/s at {tuned['users']} conversations over {stock['throughput']} msg/s at "
        f"{stock['users']}: each setup's highest level with p95 ≤ {BAR_P95_MS:g} ms",
    )


def parse_target(report: dict[str, Any] | None) -> Target:
    name, bar = "NLU parse in-process, p95", f"≤ {BAR_PARSE_P95_MS:g} ms"
    if report is None:
        return Target(name, bar, "–", NOT_MEASURED, "no parse.json")
    p95 = report["median"]["p95_ms"]
    return Target(
        name,
        bar,
        f"{p95} ms",
        PASS if p95 <= BAR_PARSE_P95_MS else FAIL,
        f"{report['median']['count']:g} parses per run, median of {len(report['runs'])} run(s)",
    )


def cold_start_target(report: dict[str, Any] | None) -> Target:
    name, bar = "cold start: `helpline serve` to the first correct answer", f"≤ {BAR_COLD_START_S:g} s"
    if report is None:
        return Target(name, bar, "–", NOT_MEASURED, "no coldstart.json")
    ready = report["median"]["ready_s"]
    return Target(
        name,
        bar,
        f"{ready} s",
        PASS if ready <= BAR_COLD_START_S else FAIL,
        f"model trained, median of {len(report['runs'])} run(s)",
    )


def training_target(report: dict[str, Any] | None) -> Target:
    name, bar = "full training", f"≤ {BAR_TRAINING_S / 60:g} min"
    if report is None or "training_s" not in report:
        return Target(name, bar, "–", NOT_MEASURED, "no startup.json with training: `make bench-startup`")
    training = report["training_s"]
    return Target(
        name,
        bar,
        f"{training['median']} s",
        PASS if training["median"] <= BAR_TRAINING_S else FAIL,
        f"`helpline train --force`, median of {len(training['runs'])} run(s) (bench/startup.py)",
    )


def targets_table(targets: Sequence[Target]) -> str:
    lines = ["| target | bar | measured (median) | result | how |", "|---|---|---|---|---|"]
    lines += [f"| {t.target} | {t.bar} | {t.measured} | {t.status} | {t.note} |" for t in targets]
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    """Where and when the figures were taken: cores, CPU model, date, the git commit (and whether the working
    tree differs from it), the command line."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None

    head = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": head.stdout.strip() if head and head.returncode == 0 else None,
        "working_tree_modified": bool(status.stdout.strip()) if status and status.returncode == 0 else None,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
    }


def machine_lines(info: dict[str, Any]) -> str:
    commit = info["commit"] or "unknown"
    if info["working_tree_modified"]:
        commit += " (working tree modified)"
    return (
        f"- machine: {info['nproc']} cores, {info['cpu']}\n- date: {info['date']}\n- commit: {commit}\n"
        f"- command: `{info['command']}`\n"
    )


def write(out: Path, name: str, report: dict[str, Any], markdown: str) -> None:
    """`name`.json (everything) and `name`.md into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / f"{name}.md").write_text(markdown, encoding="utf-8")


def read(directory: Path, name: str) -> dict[str, Any] | None:
    path = directory / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def summary(directory: Path) -> tuple[dict[str, Any], str]:
    """All targets from the reports in `directory`, as JSON and markdown."""
    load, parse, cold, startup = (read(directory, name) for name in ("load", "parse", "coldstart", "startup"))
    targets = load_targets(load) if load else [Target("load targets", "", "–", NOT_MEASURED, "no load.json")]
    targets += [parse_target(parse), cold_start_target(cold), training_target(startup)]
    info = machine()
    sources = {
        name: dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")
        for name in ("load", "parse", "coldstart", "startup")
        if (path := directory / f"{name}.json").is_file()
    }
    result = {"machine": info, "sources": sources, "targets": [asdict(t) for t in targets]}
    lines = [
        "# Benchmark summary (issue 8)\n",
        machine_lines(info),
        "Each figure is the median over the runs of its benchmark; the details are in load.md, parse.md, "
        "coldstart.md (and startup.json). `(short run)`: measured at fewer conversations or for less time than the "
        "bar asks.\n",
        targets_table(targets),
        "Reports read: " + (", ".join(f"{name}.json ({date})" for name, date in sources.items()) or "none") + "\n",
    ]
    return result, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=str(OUT), help="where the benchmarks wrote their JSON")
    args = parser.parse_args(argv)
    result, markdown = summary(Path(args.dir))
    write(Path(args.dir), "summary", result, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
