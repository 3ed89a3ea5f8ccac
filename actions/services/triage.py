"""Triage of a hardship declaration: explainable rules whose thresholds live in data/monitoring.yml.

The result is a suggestion for the cadre who verifies the case: a category (脱贫不稳定户, 边缘易致贫户, 突发严重困难户
or 暂不符合), a risk level (高/中/低), an 即时帮扶 flag, and the reasons, in words a cadre can check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import yaml

from actions.settings import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "data" / "monitoring.yml"
CAUSES = ("因病", "因残", "因学", "因灾", "因意外事故", "务工收入减少/失业", "产业经营失败", "其他")
UNSTABLE, EDGE, SUDDEN, NOT_ELIGIBLE = "脱贫不稳定户", "边缘易致贫户", "突发严重困难户", "暂不符合"
HIGH, MEDIUM, LOW = "高", "中", "低"
ANY_CAUSE = "any"
YUAN = Decimal(1)


class ConfigError(ValueError):
    """The monitoring configuration is missing a value or has an impossible one."""


def _yuan(value: Decimal) -> str:
    return f"{value.quantize(YUAN, ROUND_HALF_UP):,}"


def _percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(YUAN, ROUND_HALF_UP)}%"


def _dates(values: Iterable[Any], key: str) -> frozenset[dt.date]:
    try:
        return frozenset(v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)) for v in values or ())
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from exc


@dataclass(frozen=True)
class MonitoringRules:
    """The thresholds of data/monitoring.yml."""

    monitoring_line: Decimal
    monitoring_line_source: str
    edge_factor: Decimal
    severe_share: Decimal
    notable_share: Decimal
    urgent_words: dict[str, tuple[str, ...]]
    verification_working_days: int
    holidays: frozenset[dt.date]
    extra_working_days: frozenset[dt.date]
    duplicate_window: dt.timedelta

    @property
    def edge_line(self) -> Decimal:
        return (self.monitoring_line * self.edge_factor).quantize(YUAN, ROUND_HALF_UP)

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> MonitoringRules:
        try:
            rules = cls(
                monitoring_line=Decimal(str(raw["monitoring_line"])),
                monitoring_line_source=str(raw["monitoring_line_source"]).strip(),
                edge_factor=Decimal(str(raw["edge_factor"])),
                severe_share=Decimal(str(raw["severe_share"])),
                notable_share=Decimal(str(raw["notable_share"])),
                urgent_words={str(k): tuple(str(w) for w in v or ()) for k, v in raw["urgent_words"].items()},
                verification_working_days=int(raw["verification_working_days"]),
                holidays=_dates(raw.get("holidays") or (), "holidays"),
                extra_working_days=_dates(raw.get("extra_working_days") or (), "extra_working_days"),
                duplicate_window=dt.timedelta(minutes=int(raw["duplicate_window_minutes"])),
            )
        except (KeyError, TypeError, AttributeError, ArithmeticError) as exc:
            raise ConfigError(f"monitoring configuration incomplete or malformed ({exc!r})") from exc
        problems = [
            text
            for bad, text in (
                (rules.monitoring_line <= 0, "monitoring_line must be positive"),
                (not rules.monitoring_line_source, "monitoring_line_source must say where the line comes from"),
                (rules.edge_factor < 1, "edge_factor must be at least 1"),
                (not 0 < rules.notable_share <= rules.severe_share, "need 0 < notable_share <= severe_share"),
                (not 1 <= rules.verification_working_days <= 60, "verification_working_days must be 1..60"),
                (set(rules.urgent_words) - {*CAUSES, ANY_CAUSE}, "urgent_words: unknown cause"),
                (any(not w for ws in rules.urgent_words.values() for w in ws), "urgent_words: empty word"),
                (rules.duplicate_window < dt.timedelta(0), "duplicate_window_minutes must not be negative"),
            )
            if bad
        ]
        if problems:
            raise ConfigError("; ".join(problems))
        return rules

    @classmethod
    def load(cls, path: Path = DEFAULT_CONFIG) -> MonitoringRules:
        return cls.from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")))

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.extra_working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def due_date(self, submitted: dt.date) -> dt.date:
        """The last day of verification: the n-th working day after the day of submission."""
        day, left = submitted, self.verification_working_days
        while left:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day


@dataclass(frozen=True)
class Facts:
    """What the triage needs of a declaration. `amount` is None when the person could not say it."""

    cause: str
    amount: Decimal | None
    income: Decimal
    size: int
    description: str = ""
    registered_poor: bool | None = None  # from the register: 建档立卡; None when the household is not found


@dataclass(frozen=True)
class Triage:
    category: str
    risk: str
    urgent: bool
    reasons: tuple[str, ...]
    per_capita_after: Decimal
    share: Decimal | None  # the expense or loss over a normal year's income; None when the income is 0


def urgent_word(rules: MonitoringRules, cause: str, text: str) -> str | None:
    """The first emergency word of the cause (or of any cause) found in the text."""
    for key in (cause, ANY_CAUSE):
        found = next((w for w in rules.urgent_words.get(key, ()) if w in text), None)
        if found:
            return found
    return None


def triage(rules: MonitoringRules, facts: Facts) -> Triage:
    """Apply the rules; every comparison that decided something is written into the reasons."""
    if facts.size < 1:
        raise ValueError("household size must be at least 1")
    if facts.income < 0 or (facts.amount is not None and facts.amount < 0):
        raise ValueError("amounts must not be negative")
    loss = facts.amount if facts.amount is not None else Decimal(0)
    after = facts.income - loss
    per_capita = (after / facts.size).quantize(Decimal("0.01"), ROUND_HALF_UP)
    line, edge = rules.monitoring_line, rules.edge_line
    reasons = [
        f"出事后全家一年收入约 {_yuan(max(after, Decimal(0)))} 元(正常年景 {_yuan(facts.income)} 元,"
        f"这次多花或少收 {_yuan(loss)} 元),{facts.size} 口人,人均约 {_yuan(max(per_capita, Decimal(0)))} 元"
    ]
    if facts.amount is None:
        reasons.append("申报人没说清这次多花或少收了多少钱,按 0 元算的,请核实")

    below_line = per_capita < line
    below_edge = per_capita < edge
    if below_line:
        reasons.append(f"人均低于监测线 {_yuan(line)} 元")
    elif below_edge:
        reasons.append(
            f"人均不低于监测线 {_yuan(line)} 元,但低于边缘线 {_yuan(edge)} 元(监测线的 {rules.edge_factor} 倍)"
        )
    else:
        reasons.append(f"人均不低于边缘线 {_yuan(edge)} 元(监测线 {_yuan(line)} 元的 {rules.edge_factor} 倍)")

    share: Decimal | None = None
    if facts.income > 0:
        share = loss / facts.income
        severe = share >= rules.severe_share
        if severe:
            reasons.append(
                f"这次多花或少收占正常年收入的 {_percent(share)},达到骤减骤增线 {_percent(rules.severe_share)}"
            )
        else:
            reasons.append(
                f"这次多花或少收占正常年收入的 {_percent(share)},低于骤减骤增线 {_percent(rules.severe_share)}"
            )
    else:
        severe = loss > 0
        reasons.append("正常年景全家没有收入" + (",这次的支出或损失全靠借债或积蓄" if severe else ""))

    if facts.registered_poor:
        reasons.append("户籍库:建档立卡户(已脱贫户)")
    elif facts.registered_poor is None:
        reasons.append("户籍库里没有找到这户,是不是脱贫户待核实")

    if facts.registered_poor and (below_edge or severe):
        category = UNSTABLE
    elif not facts.registered_poor and severe and below_edge:
        category = SUDDEN
    elif not facts.registered_poor and below_edge:
        category = EDGE
    else:
        category = NOT_ELIGIBLE

    word = urgent_word(rules, facts.cause, facts.description)
    urgent = word is not None and category != NOT_ELIGIBLE
    if word is not None:
        if urgent:
            reasons.append(f"描述里有“{word}”,属于紧急情形,建议即时帮扶")
        else:
            reasons.append(f"描述里有“{word}”,但收入在边缘线以上,没有标即时帮扶,请核实")

    if urgent or below_line or (severe and category != NOT_ELIGIBLE):
        risk = HIGH
    elif category != NOT_ELIGIBLE or (share is not None and share >= rules.notable_share):
        risk = MEDIUM
    else:
        risk = LOW
    return Triage(category, risk, urgent, tuple(reasons), per_capita, share)
