"""How a policy answer is put together: which sections, in which order, and how it is cut for Telegram."""

from __future__ import annotations

from dataclasses import dataclass

from actions.services.knowledge import KnowledgeBase, Policy, Report, region_relation

TELEGRAM_LIMIT = 4096
# The section a question is about comes first; "more" is the whole entry.
SECTION_ORDER = {
    "amount": ("benefits", "summary"),
    "eligibility": ("eligibility", "summary"),
    "apply": ("apply", "contact", "summary"),
    "contact": ("contact", "apply"),
    "what": ("summary", "benefits"),
    None: ("summary", "benefits", "eligibility"),
    "more": ("summary", "eligibility", "benefits", "apply", "contact"),
}


@dataclass(frozen=True)
class PolicyAnswer:
    """Everything the answer template needs."""

    policy: Policy
    report: Report
    sections: tuple[str, ...]
    aspect: str | None
    region: str | None
    relation: str
    related: tuple[Policy, ...]
    for_cadre: bool
    detailed: bool


def build_answer(
    kb: KnowledgeBase, policy_id: str, aspect: str | None, region: str | None, for_cadre: bool
) -> PolicyAnswer:
    policy = kb.policies[policy_id]
    key = aspect if aspect in SECTION_ORDER else None
    return PolicyAnswer(
        policy=policy,
        report=kb.report_of(policy),
        sections=SECTION_ORDER[key],
        aspect=key,
        region=region,
        relation=region_relation(policy, region),
        related=tuple(kb.policies[r] for r in policy.related[:3]),
        for_cadre=for_cadre,
        detailed=key == "more",
    )


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Cut a long reply into messages of at most `limit` characters, at line breaks where possible."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks
