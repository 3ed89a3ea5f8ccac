"""Triage rules at every threshold, each category, the urgent flag, and the configuration they are read from."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from actions.services.triage import (
    CAUSES,
    DEFAULT_CONFIG,
    EDGE,
    HIGH,
    LOW,
    MEDIUM,
    NOT_ELIGIBLE,
    SUDDEN,
    UNSTABLE,
    ConfigError,
    Facts,
    MonitoringRules,
    triage,
)
from actions.settings import PROJECT_ROOT

SEEDS = Path(os.environ.get("SEEDS_DIR", PROJECT_ROOT.parent / "shared" / "seeds"))


def rules(**overrides: Any) -> MonitoringRules:
    """The shipped configuration, with a line of 6000 (edge 9000) so that boundaries are round numbers."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw.update(monitoring_line=6000, edge_factor=1.5, severe_share=0.5, notable_share=0.2, holidays=[])
    raw.update(overrides)
    return MonitoringRules.from_mapping(raw)


def facts(income: int, amount: int | None, size: int = 1, **kw: Any) -> Facts:
    return Facts(
        cause=kw.pop("cause", "因病"),
        amount=None if amount is None else Decimal(amount),
        income=Decimal(income),
        size=size,
        description=kw.pop("description", ""),
        registered_poor=kw.pop("registered_poor", False),
    )


def test_the_shipped_configuration_loads_and_its_line_is_the_one_the_report_states() -> None:
    shipped = MonitoringRules.load()
    assert shipped.monitoring_line == Decimal(5220)
    assert "5220" in shipped.monitoring_line_source
    zaozhuang = (SEEDS / "000_8b20aa8917956952.txt").read_text(encoding="utf-8")
    assert "2020年7月,我市将农村低保标准上调至每年5220元" in zaozhuang
    assert set(shipped.urgent_words) <= {*CAUSES, "any"}
    assert shipped.verification_working_days == 5


# --- per-capita income after the shock against the line (6000) and its edge (9000) -----------------------------


@pytest.mark.parametrize(
    ("income", "category", "risk"),
    [
        (5999, EDGE, HIGH),  # below the line
        (6000, EDGE, MEDIUM),  # at the line: not below it, but below the edge
        (8999, EDGE, MEDIUM),
        (9000, NOT_ELIGIBLE, LOW),  # at the edge: not below it
    ],
)
def test_per_capita_income_against_the_line_and_the_edge(income: int, category: str, risk: str) -> None:
    result = triage(rules(), facts(income, 0))
    assert (result.category, result.risk, result.urgent) == (category, risk, False)


def test_per_capita_income_is_after_the_shock_and_per_person() -> None:
    # (38000 − 2000) / 4 = 9000: at the edge; one 元 more of expense and it is below.
    assert triage(rules(), facts(38000, 2000, size=4)).category == NOT_ELIGIBLE
    below = triage(rules(), facts(38000, 2001, size=4))
    assert below.category == EDGE
    assert below.per_capita_after == Decimal("8999.75")


# --- the expense or loss against a normal year's income: severe at 50%, notable at 20% ---------------------------


def test_a_shock_just_below_the_severe_share_is_not_a_sudden_hardship() -> None:
    result = triage(rules(), facts(16000, 7999))  # 49.99%, per capita 8001
    assert (result.category, result.risk) == (EDGE, MEDIUM)


def test_a_shock_at_the_severe_share_is_a_sudden_hardship() -> None:
    result = triage(rules(), facts(16000, 8000))  # 50%, per capita 8000
    assert (result.category, result.risk) == (SUDDEN, HIGH)
    assert any("50%" in r for r in result.reasons)


def test_a_severe_shock_to_a_household_well_above_the_edge_is_recorded_but_not_eligible() -> None:
    result = triage(rules(), facts(100000, 50000))
    assert (result.category, result.risk) == (NOT_ELIGIBLE, MEDIUM)


@pytest.mark.parametrize(("amount", "risk"), [(19999, LOW), (20000, MEDIUM)])
def test_the_notable_share_raises_the_risk_of_a_household_that_is_not_eligible(amount: int, risk: str) -> None:
    result = triage(rules(), facts(100000, amount))
    assert (result.category, result.risk) == (NOT_ELIGIBLE, risk)


# --- households the register knows as 建档立卡 (脱贫户) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("income", "amount", "size", "category", "risk"),
    [
        (20000, 0, 2, NOT_ELIGIBLE, LOW),  # 10000 per person, no shock
        (17998, 0, 2, UNSTABLE, MEDIUM),  # 8999 per person: below the edge
        (100000, 50000, 1, UNSTABLE, HIGH),  # well off, but half the income gone
        (100000, 49999, 1, NOT_ELIGIBLE, MEDIUM),
    ],
)
def test_registered_households_at_risk_are_unstable(
    income: int, amount: int, size: int, category: str, risk: str
) -> None:
    result = triage(rules(), facts(income, amount, size, registered_poor=True))
    assert (result.category, result.risk) == (category, risk)
    assert any("建档立卡" in r for r in result.reasons)


def test_a_household_the_register_does_not_know_is_triaged_on_its_figures_and_flagged_for_checking() -> None:
    result = triage(rules(), facts(8000, 0, registered_poor=None))
    assert result.category == EDGE
    assert any("待核实" in r for r in result.reasons)


# --- no income, unknown sums ------------------------------------------------------------------------------------


def test_no_income_and_an_expense_is_a_sudden_hardship() -> None:
    result = triage(rules(), facts(0, 5000, size=3))
    assert (result.category, result.risk, result.share) == (SUDDEN, HIGH, None)


def test_an_unknown_sum_counts_as_nothing_and_says_so() -> None:
    result = triage(rules(), facts(8000, None))
    assert result.category == EDGE
    assert any("没说清" in r for r in result.reasons)


def test_impossible_facts_are_refused() -> None:
    with pytest.raises(ValueError):
        triage(rules(), facts(8000, 0, size=0))
    with pytest.raises(ValueError):
        triage(rules(), facts(-1, 0))


# --- 即时帮扶 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "description"),
    [
        ("因病", "娃查出来白血病了 在济南住院"),
        ("因灾", "发大水 房子塌了 一家人没地方住"),
        ("因意外事故", "俺男人在工地出事 重伤还在抢救"),
        ("其他", "家里揭不开锅了"),
    ],
)
def test_an_emergency_in_a_household_at_risk_is_flagged_for_immediate_help(cause: str, description: str) -> None:
    result = triage(rules(), facts(20000, 15000, size=3, cause=cause, description=description))
    assert result.urgent
    assert result.risk == HIGH
    assert any("即时帮扶" in r for r in result.reasons)


def test_an_emergency_word_in_a_household_above_the_edge_is_noted_but_not_flagged() -> None:
    result = triage(rules(), facts(500000, 30000, size=2, description="老伴查出来肿瘤了"))
    assert result.category == NOT_ELIGIBLE
    assert not result.urgent
    assert any("肿瘤" in r and "没有标即时帮扶" in r for r in result.reasons)


def test_the_emergency_words_are_those_of_the_cause() -> None:
    """Dialysis words mark an illness, not a school-fees declaration; the cadre still reads the description."""
    result = triage(rules(), facts(20000, 15000, size=3, cause="因学", description="俺娘透析 娃上大学交不起学费"))
    assert not result.urgent


def test_the_thresholds_come_from_the_configuration() -> None:
    stricter = rules(monitoring_line=7000)
    assert triage(rules(), facts(6500, 0)).risk == MEDIUM
    assert triage(stricter, facts(6500, 0)).risk == HIGH


# --- configuration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"monitoring_line": 0},
        {"monitoring_line_source": ""},
        {"edge_factor": 0.9},
        {"notable_share": 0.6},
        {"urgent_words": {"因穷": ["穷"]}},
        {"verification_working_days": 0},
        {"holidays": ["2026-13-01"]},
    ],
)
def test_an_impossible_configuration_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        rules(**overrides)


def test_a_configuration_without_a_threshold_is_refused() -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    del raw["severe_share"]
    with pytest.raises(ConfigError):
        MonitoringRules.from_mapping(raw)


# --- the verification deadline ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submitted", "due"),
    [
        ("2026-11-23", "2026-11-30"),  # Monday → next Monday
        ("2026-11-27", "2026-12-04"),  # Friday → next Friday
        ("2026-11-28", "2026-12-04"),  # Saturday: the count starts on Monday
    ],
)
def test_the_deadline_is_five_working_days_later(submitted: str, due: str) -> None:
    assert rules().due_date(dt.date.fromisoformat(submitted)) == dt.date.fromisoformat(due)


def test_holidays_and_make_up_working_days_move_the_deadline() -> None:
    monday = dt.date(2026, 11, 23)
    assert rules(holidays=["2026-11-30"]).due_date(monday) == dt.date(2026, 12, 1)
    assert rules(extra_working_days=["2026-11-28"]).due_date(monday) == dt.date(2026, 11, 28)
