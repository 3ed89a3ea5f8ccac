"""The benchmark report's arithmetic on hand-made figures (no servers): medians over runs, the ratios of our setup
to the stock one, and the targets' pass/fail."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from actions.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
import report


def level(users: int, throughput: float, p95: float, **figures: Any) -> dict[str, Any]:
    """One level of one run: the figures a load run reports, with the ones not given at harmless values."""
    base: dict[str, Any] = {
        "users": users, "throughput": throughput, "p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95 * 2,
        "messages": int(throughput * 60), "errors": 0, "declarations_completed": 10, "cases_found": 10,
        "cases_lost": 0, "enrollments_completed": 0, "enrollments_found": 0,
        "rss_rasa_mb": 800.0, "rss_actions_mb": 250.0, "rss_total_mb": 1050.0,
    }  # fmt: skip
    return {**base, **figures}


def load_report(tuned: list[list[dict[str, Any]]], stock: list[list[dict[str, Any]]] | None, duration: float = 60.0):
    setups = {"tuned": {"runs": tuned, "median": report.median_levels(tuned)}}
    result: dict[str, Any] = {"duration_s": duration, "setups": setups}
    if stock is not None:
        setups["stock"] = {"runs": stock, "median": report.median_levels(stock)}
        result["ratios"] = report.ratios(setups["tuned"]["median"], setups["stock"]["median"])
    return result


def by_name(targets: list[report.Target]) -> dict[str, report.Target]:
    return {t.target: t for t in targets}


def test_each_figure_of_a_level_is_the_median_over_the_runs() -> None:
    runs = [
        [level(50, 100, 80), level(500, 130, 140, errors=0, rss_total_mb=1100.0)],
        [level(50, 90, 95), level(500, 110, 200, errors=3, rss_total_mb=1300.0)],
        [level(50, 120, 70), level(500, 125, 120, errors=1, rss_total_mb=None)],
    ]
    medians = report.median_levels(runs)
    assert [m["users"] for m in medians] == [50, 500]
    assert medians[0]["throughput"] == 100 and medians[0]["p95_ms"] == 80 and medians[0]["runs"] == 3
    assert medians[1]["throughput"] == 125 and medians[1]["p95_ms"] == 140 and medians[1]["errors"] == 1
    assert medians[1]["rss_total_mb"] == 1200  # the run that did not measure it is left out


def test_an_even_number_of_runs_takes_the_mean_of_the_middle_two() -> None:
    assert report.median([1, 2, 3, 10]) == 2.5
    assert report.median([None, None]) is None


def test_ratios_per_level_and_at_the_latency_bar() -> None:
    tuned = [level(50, 140, 60), level(200, 150, 120), level(500, 160, 400)]
    stock = [level(50, 60, 140), level(200, 40, 900), level(500, 30, 5000)]
    found = report.ratios(tuned, stock)
    assert [r["throughput_ratio"] for r in found["per_level"]] == [2.33, 3.75, 5.33]
    assert found["per_level"][0]["stock_p95_ms"] == 140
    at_bar = found["at_latency_bar"]
    # Ours stays within 150 ms up to 200 conversations, stock only at 50: 150 / 60.
    assert at_bar["tuned"] == {"users": 200, "throughput": 150, "p95_ms": 120}
    assert at_bar["stock"] == {"users": 50, "throughput": 60, "p95_ms": 140}
    assert at_bar["throughput_ratio"] == 2.5


def test_no_ratio_at_the_latency_bar_when_a_setup_is_never_within_it() -> None:
    found = report.ratios([level(50, 140, 60)], [level(50, 20, 900)])
    assert found["at_latency_bar"]["stock"] is None and found["at_latency_bar"]["throughput_ratio"] is None
    target = report.ratio_target({"ratios": found})
    assert target.status == report.NOT_MEASURED and "stock" in target.note


def test_the_load_targets_pass_at_500_conversations_for_60_s() -> None:
    tuned = [[level(50, 140, 60), level(500, 130, 140)] for _ in range(3)]
    stock = [[level(50, 60, 140), level(500, 30, 3000)] for _ in range(3)]
    targets = by_name(report.load_targets(load_report(tuned, stock)))
    assert {name: t.status for name, t in targets.items()} == {
        "throughput": report.PASS,
        "latency p95 per message": report.PASS,
        "errors": report.PASS,
        "lost cases": report.PASS,
        "total RSS of the servers": report.PASS,
        "throughput against the stock setup": report.PASS,  # 130 at 500 over 60 at 50
    }
    assert targets["throughput against the stock setup"].measured == "2.17×"


def test_the_load_targets_fail_on_any_run_with_errors_or_lost_cases() -> None:
    tuned = [
        [level(500, 100, 160, errors=0)],
        [level(500, 100, 160, errors=0)],
        [level(500, 100, 160, errors=2, cases_found=9, cases_lost=1, rss_total_mb=1600.0)],
    ]
    targets = by_name(report.load_targets(load_report(tuned, None)))
    assert targets["throughput"].status == report.FAIL and targets["latency p95 per message"].status == report.FAIL
    assert targets["errors"].status == report.FAIL and "worst run 2" in targets["errors"].measured
    assert targets["lost cases"].status == report.FAIL
    assert targets["total RSS of the servers"].status == report.PASS  # the median, 1050 MiB
    assert targets["throughput against the stock setup"].status == report.NOT_MEASURED


def test_a_short_run_is_judged_but_marked() -> None:
    targets = by_name(report.load_targets(load_report([[level(5, 130, 50), level(20, 125, 90)]], None, 10.0)))
    assert targets["throughput"].status == "pass (short run)"
    assert targets["throughput"].note.startswith("20 conversations, 10 s")


@pytest.mark.parametrize(
    ("make", "figures", "status"),
    [
        (report.parse_target, {"median": {"p95_ms": 9.0, "count": 2400}, "runs": [{}, {}, {}]}, report.PASS),
        (report.parse_target, {"median": {"p95_ms": 15.5, "count": 2400}, "runs": [{}]}, report.FAIL),
        (report.parse_target, None, report.NOT_MEASURED),
        (report.cold_start_target, {"median": {"ready_s": 19.9}, "runs": [{}]}, report.PASS),
        (report.cold_start_target, {"median": {"ready_s": 21.0}, "runs": [{}]}, report.FAIL),
        (report.training_target, {"training_s": {"median": 280.0, "runs": [1, 2, 3]}}, report.PASS),
        (report.training_target, {"training_s": {"median": 301.0, "runs": [1]}}, report.FAIL),
        (report.training_target, {"agent_load_and_first_parse_s": {"median": 9.0, "runs": [9]}}, report.NOT_MEASURED),
    ],
)
def test_the_other_targets(make: Any, figures: dict[str, Any] | None, status: str) -> None:
    assert make(figures).status == status


def test_the_summary_takes_every_target_from_the_reports_there_are(tmp_path: Path) -> None:
    load = load_report([[level(500, 130, 140)]], [[level(500, 30, 3000)]])
    (tmp_path / "load.json").write_text(json.dumps(load))
    (tmp_path / "coldstart.json").write_text(json.dumps({"median": {"ready_s": 18.2}, "runs": [{}]}))
    result, markdown = report.summary(tmp_path)
    statuses = {t["target"]: t["status"] for t in result["targets"]}
    assert statuses["throughput"] == report.PASS
    assert statuses["cold start: `helpline serve` to the first correct answer"] == report.PASS
    assert statuses["NLU parse in-process, p95"] == report.NOT_MEASURED
    assert statuses["full training"] == report.NOT_MEASURED
    assert "| throughput | ≥ 120 messages/s | 130.0 messages/s | pass |" in markdown
    assert set(result["sources"]) == {"load", "coldstart"}
