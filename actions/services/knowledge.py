"""The policy knowledge base (data/kb/*.yml), built from the two seed reports."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KB_DIR = Path(__file__).resolve().parents[2] / "data" / "kb"
ASPECTS = ("amount", "eligibility", "apply", "contact", "what")
_SPACE = re.compile(r"\s+")


class KnowledgeBaseError(ValueError):
    """The knowledge base files contradict the schema (duplicate id or alias, unknown reference)."""


@dataclass(frozen=True)
class Report:
    id: str
    title: str
    publisher: str
    date: str | None
    region: str


@dataclass(frozen=True)
class Benefit:
    text: str
    effective: str | None = None


@dataclass(frozen=True)
class Source:
    report: str
    quote: str


@dataclass(frozen=True)
class Policy:
    id: str
    name: str
    aliases: tuple[str, ...]
    region: str
    summary: str
    eligibility: str | None
    benefits: tuple[Benefit, ...]
    apply: str | None
    contact: str | None
    related: tuple[str, ...]
    sources: tuple[Source, ...]
    cadre: tuple[str, ...]
    # Numbers a service computes with (premiums, deductible, cover); each must appear in a source quote.
    terms: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def city(self) -> str:
        return self.region.split("/")[0]


def normalize(text: str) -> str:
    return _SPACE.sub("", text).lower()


@dataclass
class KnowledgeBase:
    policies: dict[str, Policy]
    reports: dict[str, Report]
    regions: dict[str, tuple[str, ...]]
    aspects: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)
    _region_aliases: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for policy in self.policies.values():
            for alias in {normalize(a) for a in (policy.name, *policy.aliases)}:
                owner = self._aliases.setdefault(alias, policy.id)
                if owner != policy.id:
                    raise KnowledgeBaseError(f"alias {alias!r} belongs to both {owner} and {policy.id}")
            for related in policy.related:
                if related not in self.policies:
                    raise KnowledgeBaseError(f"{policy.id}: related entry {related!r} does not exist")
            for source in policy.sources:
                if source.report not in self.reports:
                    raise KnowledgeBaseError(f"{policy.id}: unknown report {source.report!r}")
            if not policy.sources:
                raise KnowledgeBaseError(f"{policy.id}: no source")
        for path, names in self.regions.items():
            for name in names:
                self._region_aliases[normalize(name)] = path

    @property
    def aliases(self) -> dict[str, str]:
        """Normalised alias → policy id."""
        return dict(self._aliases)

    @property
    def region_aliases(self) -> dict[str, str]:
        return dict(self._region_aliases)

    @property
    def aspect_words(self) -> dict[str, str]:
        return {normalize(word): aspect for aspect, words in self.aspects.items() for word in words}

    def report_of(self, policy: Policy) -> Report:
        return self.reports[policy.sources[0].report]


def find_terms(text: str, terms: dict[str, str]) -> list[tuple[int, int, str]]:
    """Longest non-overlapping occurrences of the terms in the text: (start, end, value), in text order.

    Offsets refer to the text with its white space removed and lower-cased, as `normalize` makes it.
    """
    flat = normalize(text)
    found: list[tuple[int, int, str]] = []
    taken = [False] * len(flat)
    for term in sorted(terms, key=len, reverse=True):
        start = flat.find(term)
        while start != -1:
            end = start + len(term)
            if not any(taken[start:end]):
                found.append((start, end, terms[term]))
                for i in range(start, end):
                    taken[i] = True
            start = flat.find(term, start + 1)
    return sorted(found)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, cut short once it exceeds `limit`."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


SUGGEST_SCAN = 200  # characters of a message searched for near misses


def suggest(text: str, kb: KnowledgeBase, limit: int = 3) -> list[str]:
    """Policies whose alias the text contains with one typo (two for long names), best first.

    These are candidates to ask about with buttons, never answers: 齐回保 → 淄博齐惠保?
    """
    flat = normalize(text)[:SUGGEST_SCAN]
    chars = set(flat)
    best: dict[str, int] = {}
    for alias, policy_id in kb.aliases.items():
        allowed = 1 if len(alias) < 6 else 2
        if len(alias) < 3 or sum(ch in chars for ch in alias) < len(alias) - allowed:
            continue
        for size in range(len(alias) - 1, len(alias) + 2):
            for start in range(0, max(0, len(flat) - size) + 1):
                distance = edit_distance(alias, flat[start : start + size], allowed)
                if distance <= allowed and distance < best.get(policy_id, allowed + 1):
                    best[policy_id] = distance
    return [p for p, _ in sorted(best.items(), key=lambda item: (item[1], item[0]))][:limit]


def region_relation(policy: Policy, region: str | None) -> str:
    """How a person's region stands to a policy's: 'unknown', 'inside' (it applies there), 'other'."""
    if not region:
        return "unknown"
    if region == policy.region or region.startswith(policy.region + "/"):
        return "inside"
    if policy.region.startswith(region + "/"):
        return "part"  # the policy covers only a part of the person's (larger) region
    return "other"


def _policy(raw: dict[str, Any]) -> Policy:
    return Policy(
        id=str(raw["id"]),
        name=str(raw["name"]),
        aliases=tuple(str(a) for a in raw.get("aliases") or ()),
        region=str(raw["region"]),
        summary=str(raw["summary"]).strip(),
        eligibility=_text(raw.get("eligibility")),
        benefits=tuple(Benefit(str(b["text"]).strip(), _text(b.get("effective"))) for b in raw.get("benefits") or ()),
        apply=_text(raw.get("apply")),
        contact=_text(raw.get("contact")),
        related=tuple(str(r) for r in raw.get("related") or ()),
        sources=tuple(Source(str(s["report"]), str(s["quote"]).strip()) for s in raw.get("sources") or ()),
        cadre=tuple(str(c).strip() for c in raw.get("cadre") or ()),
        terms=dict(raw.get("terms") or {}),
    )


def _text(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def load_knowledge_base(directory: Path = KB_DIR) -> KnowledgeBase:
    """Read sources.yml, regions.yml and every other *.yml of the folder as policy entries."""
    reports_raw = yaml.safe_load((directory / "sources.yml").read_text(encoding="utf-8"))["sources"]
    reports = {
        key: Report(key, str(v["title"]), str(v["publisher"]), _text(v.get("date")), str(v["region"]))
        for key, v in reports_raw.items()
    }
    regions_raw = yaml.safe_load((directory / "regions.yml").read_text(encoding="utf-8"))["regions"]
    regions = {str(path): tuple(str(n) for n in names) for path, names in regions_raw.items()}
    aspects_raw = yaml.safe_load((directory / "aspects.yml").read_text(encoding="utf-8"))["aspects"]
    aspects = {str(a): tuple(str(w) for w in words) for a, words in aspects_raw.items() if a in ASPECTS}
    policies: dict[str, Policy] = {}
    for path in sorted(directory.glob("*.yml")):
        if path.name in ("sources.yml", "regions.yml", "aspects.yml"):
            continue
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")).get("policies") or ():
            policy = _policy(raw)
            if policy.id in policies:
                raise KnowledgeBaseError(f"duplicate id {policy.id!r} in {path.name}")
            policies[policy.id] = policy
    return KnowledgeBase(policies, reports, regions, aspects)
