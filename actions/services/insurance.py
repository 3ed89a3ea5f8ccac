"""淄博齐惠保: premium by status, reimbursement estimate, enrollment and its status.

The numbers come from the knowledge base entry `qihuibao` (its `terms`), which quotes the 淄博 report.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from actions.db.models import ChatIdentity, Enrollment, Household, Person, utcnow
from actions.db.types import id_number_digest
from actions.services.knowledge import KnowledgeBase, Policy
from nlu.amounts import Amount

logger = logging.getLogger(__name__)

PRODUCT = "qihuibao"
HOME_CITY = "淄博市"
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read out over the phone
CENT = Decimal("0.01")
INPATIENT = "住院医疗费用"
SPECIAL_DRUGS = "门诊特定高额药品医疗费用"
_DRUG_WORDS = re.compile(r"门诊|特药|药|靶向|化疗")
_INPATIENT_WORDS = re.compile(r"住院|手术|开刀")
# Words right before a sum that make it what the person pays themselves after basic medical insurance.
_SELF_PAID_BEFORE = re.compile(r"(?:自己|自个|个人|自付|自费|自掏|剩下|剩|还得|还要|还需)[^,，。;；]{0,6}$")
# Words around a sum that make it something else: the premium (99块的保险), the 2万 line (超过2万的部分).
_PREMIUM_AFTER = re.compile(
    r"^\s*(?:块钱|块|元)?\s*(?:的|那个|一年)\s*(?:保险|保费|齐惠保|齐慧保)|^\s*(?:块钱|块|元)\s*(?:保险|保费)"
)
PREMIUM_MENTION_BELOW = Decimal(1000)  # "99块的保险" names the premium; no premium is 1000 元 or more
_LINE_BEFORE = re.compile(r"(?:超过|超出|超|过了|起付|门槛|线)\s*$")
_CANCEL = re.compile(
    r"取消|算了|不办了|不办啦|不办|不弄了|不要了|不参保|不想办|不想参|退出|不保了|不填了|别办|别弄|不交了|撤了|别填|不报了|不申报|不报啦|"
    r"quxiao|suanle"
)
_LINE_AFTER = re.compile(r"^\s*(?:块钱|块|元)?\s*(?:以上|的部分|以下|起)")


@dataclass(frozen=True)
class Terms:
    """The figures 齐惠保 is computed with."""

    premium_ordinary: Decimal
    premium_registered_poor: Decimal
    deductible: Decimal
    rate: Decimal
    cover: dict[str, Decimal]
    total_cover: Decimal

    @classmethod
    def from_policy(cls, policy: Policy) -> Terms:
        t = policy.terms
        try:
            return cls(
                premium_ordinary=Decimal(str(t["premium"]["ordinary"])),
                premium_registered_poor=Decimal(str(t["premium"]["registered_poor"])),
                deductible=Decimal(str(t["deductible"])),
                rate=Decimal(str(t["rate"])),
                cover={str(k): Decimal(str(v)) for k, v in t["cover"].items()},
                total_cover=Decimal(str(t["total_cover"])),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{policy.id}: terms incomplete ({exc})") from exc

    @classmethod
    def from_knowledge_base(cls, kb: KnowledgeBase) -> Terms:
        return cls.from_policy(kb.policies[PRODUCT])

    def premium(self, registered_poor: bool) -> Decimal:
        return self.premium_registered_poor if registered_poor else self.premium_ordinary


# --- reimbursement estimate -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """What 齐惠保 pays on a sum the insured still pays after basic medical insurance."""

    self_paid: Decimal
    category: str | None  # None: not said; both categories have the same cover
    deductible: Decimal
    rate: Decimal
    excess: Decimal
    cap: Decimal
    reimbursed: Decimal
    capped: bool

    @property
    def below_line(self) -> bool:
        return self.excess <= 0

    @property
    def uncapped(self) -> Decimal:
        return (self.excess * self.rate).quantize(CENT, ROUND_HALF_UP)


def estimate(terms: Terms, self_paid: Decimal, category: str | None = None) -> Estimate:
    """(self_paid − deductible) × rate, never below 0, never above the category's cover."""
    if self_paid < 0:
        raise ValueError("self_paid must not be negative")
    cap = terms.cover[category] if category else max(terms.cover.values())
    excess = max(self_paid - terms.deductible, Decimal(0))
    uncapped = (excess * terms.rate).quantize(CENT, ROUND_HALF_UP)
    return Estimate(
        self_paid=self_paid,
        category=category,
        deductible=terms.deductible,
        rate=terms.rate,
        excess=excess,
        cap=cap,
        reimbursed=min(uncapped, cap),
        capped=uncapped > cap,
    )


def category_of(text: str) -> str | None:
    """住院 or 门诊特定高额药品, when the message says which (and not both)."""
    drugs, inpatient = bool(_DRUG_WORDS.search(text)), bool(_INPATIENT_WORDS.search(text))
    if drugs == inpatient:
        return None
    return SPECIAL_DRUGS if drugs else INPATIENT


class AmountChoice(Enum):
    """How the self-paid sum was found among the sums a message names."""

    NONE = "none"  # the message names no sum of money
    ONE = "one"
    UNREADABLE = "unreadable"  # 好几万, 五六万: ask for the sum in 元
    SEVERAL = "several"  # several candidates: ask which one


def self_paid_amount(text: str, amounts: Sequence[Amount]) -> tuple[AmountChoice, list[Amount]]:
    """The sum in a message that the person pays themselves; the premium (99块的保险) and the 2万 line are skipped."""
    candidates = []
    for amount in amounts:
        before, after = text[: amount.start], text[amount.end :]
        premium = amount.value is not None and amount.value < PREMIUM_MENTION_BELOW and _PREMIUM_AFTER.match(after)
        if premium or _LINE_BEFORE.search(before) or _LINE_AFTER.match(after):
            continue
        candidates.append(amount)
    if not candidates:
        return AmountChoice.NONE, []
    if any(a.value is None for a in candidates):
        return AmountChoice.UNREADABLE, [a for a in candidates if a.value is None]
    marked = [a for a in candidates if _SELF_PAID_BEFORE.search(text[max(0, a.start - 12) : a.start])]
    if len(marked) == 1:
        return AmountChoice.ONE, marked
    distinct = {a.value for a in candidates}
    if len(distinct) == 1:
        return AmountChoice.ONE, candidates[:1]
    return AmountChoice.SEVERAL, candidates


def is_cancel(text: str) -> bool:
    """Whether a message during enrollment means "stop": 取消, 算了, 不办了, 先不弄了."""
    return bool(_CANCEL.search(text.lower()))


# --- people and enrollments ---------------------------------------------------------------------------------------


class Standing(str, Enum):
    """What the case database says of a 身份证号 and name."""

    REGISTERED_POOR = "registered_poor"  # 建档立卡: 10 元
    ORDINARY = "ordinary"  # in the database, not 建档立卡: 99 元
    NOT_FOUND = "not_found"  # 99 元, unverified until a cadre checks
    NAME_MISMATCH = "name_mismatch"  # the number is in the database under another name
    OUTSIDE = "outside"  # the household is outside 淄博


@dataclass(frozen=True)
class Lookup:
    standing: Standing
    person_id: int | None = None
    region_path: str | None = None
    household_status: str | None = None


def same_name(a: str, b: str) -> bool:
    return re.sub(r"[\s·•.]", "", a) == re.sub(r"[\s·•.]", "", b)


def look_up(session: Session, id_number: str, name: str | None) -> Lookup:
    """Find the person by 身份证号; the name must match before their status is used."""
    person = session.execute(
        select(Person)
        .where(Person.id_number_hash == id_number_digest(id_number))
        .options(joinedload(Person.household).joinedload(Household.region))
    ).scalar_one_or_none()
    if person is None:
        return Lookup(Standing.NOT_FOUND)
    if name is not None and not same_name(person.name, name):
        return Lookup(Standing.NAME_MISMATCH)
    household: Household = person.household
    path = household.region.path
    if path.split("/")[0] != HOME_CITY:
        return Lookup(Standing.OUTSIDE, person.id, path, household.status)
    standing = Standing.REGISTERED_POOR if household.is_registered_poor else Standing.ORDINARY
    return Lookup(standing, person.id, path, household.status)


@dataclass(frozen=True)
class EnrollmentView:
    """An enrollment as replies show it (the 身份证号 and phone are masked by the templates)."""

    reference: str
    policy_year: int
    name: str
    id_number: str
    phone: str
    premium: Decimal
    verified: bool
    paid: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, e: Enrollment) -> EnrollmentView:
        return cls(
            reference=e.reference,
            policy_year=e.policy_year,
            name=e.name,
            id_number=e.id_number,
            phone=e.phone,
            premium=Decimal(e.premium),
            verified=bool(e.verified),
            paid=e.paid_at is not None,
            created_at=e.created_at,
        )


@dataclass(frozen=True)
class EnrollmentResult:
    enrollment: EnrollmentView
    created: bool
    standing: Standing
    bound: bool  # the chat is now linked to the person


class OutsideRegionError(ValueError):
    """The person's household is not in 淄博; 齐惠保 is not theirs to enroll in."""


def new_reference(year: int) -> str:
    return f"QH{year}-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))


def policy_year(today: dt.date | None = None, configured: int | None = None) -> int:
    """The year enrollments are for: the configured one (INSURANCE_YEAR), else the current calendar year."""
    return configured or (today or dt.date.today()).year


def _existing(session: Session, id_number: str, year: int) -> Enrollment | None:
    return session.execute(
        select(Enrollment).where(
            Enrollment.id_number_hash == id_number_digest(id_number),
            Enrollment.product == PRODUCT,
            Enrollment.policy_year == year,
        )
    ).scalar_one_or_none()


def enrollment_of(session: Session, id_number: str, year: int) -> EnrollmentView | None:
    existing = _existing(session, id_number, year)
    return EnrollmentView.of(existing) if existing is not None else None


def _bind(session: Session, channel: str, channel_user_id: str, person_id: int) -> bool:
    """Link the chat to the person unless the chat is already linked to someone (a cadre helping an elder)."""
    identity = session.execute(
        select(ChatIdentity).where(ChatIdentity.channel == channel, ChatIdentity.channel_user_id == channel_user_id)
    ).scalar_one_or_none()
    if identity is not None:
        return identity.person_id == person_id
    session.add(ChatIdentity(channel=channel, channel_user_id=channel_user_id, person_id=person_id))
    return True


def enroll(
    sessions: sessionmaker,
    terms: Terms,
    *,
    name: str,
    id_number: str,
    phone: str,
    year: int,
    channel: str,
    channel_user_id: str,
) -> EnrollmentResult:
    """Enroll once per 身份证号 and year; a second call, even a concurrent one, returns the first enrollment.

    The unique constraint on (id_number_hash, product, policy_year) decides between concurrent sessions: the loser's
    commit fails and it returns the winner's row.
    """
    for _attempt in range(3):
        try:
            with sessions.begin() as session:
                lookup = look_up(session, id_number, name)
                if lookup.standing is Standing.OUTSIDE:
                    raise OutsideRegionError(lookup.region_path)
                existing = _existing(session, id_number, year)
                if existing is not None:
                    return EnrollmentResult(EnrollmentView.of(existing), False, lookup.standing, False)
                verified = lookup.standing in (Standing.REGISTERED_POOR, Standing.ORDINARY)
                enrollment = Enrollment(
                    reference=new_reference(year),
                    product=PRODUCT,
                    policy_year=year,
                    person_id=lookup.person_id if verified else None,
                    name=name,
                    id_number=id_number,
                    phone=phone,
                    premium=terms.premium(lookup.standing is Standing.REGISTERED_POOR),
                    verified=verified,
                    channel=channel,
                    channel_user_id=channel_user_id,
                )
                session.add(enrollment)
                bound = (
                    verified
                    and lookup.person_id is not None
                    and _bind(session, channel, channel_user_id, lookup.person_id)
                )
                session.flush()
                view = EnrollmentView.of(enrollment)
            return EnrollmentResult(view, True, lookup.standing, bound)
        except IntegrityError:
            # Another session enrolled the same person (or took the chat binding or the reference) first.
            with sessions.begin() as session:
                existing = _existing(session, id_number, year)
                if existing is not None:
                    return EnrollmentResult(
                        EnrollmentView.of(existing), False, look_up(session, id_number, name).standing, False
                    )
            logger.warning("enrollment insert conflicted without a duplicate; retrying")
    raise RuntimeError("enrollment could not be written after 3 attempts")


def enrollments_of_chat(session: Session, channel: str, channel_user_id: str) -> list[EnrollmentView]:
    """The chat user's own enrollments: those made from this chat, and those of the person the chat is linked to."""
    person_id = session.execute(
        select(ChatIdentity.person_id).where(
            ChatIdentity.channel == channel, ChatIdentity.channel_user_id == channel_user_id
        )
    ).scalar_one_or_none()
    mine = (Enrollment.channel == channel) & (Enrollment.channel_user_id == channel_user_id)
    condition = or_(mine, Enrollment.person_id == person_id) if person_id is not None else mine
    rows = session.execute(
        select(Enrollment)
        .where(Enrollment.product == PRODUCT, condition)
        .order_by(Enrollment.policy_year.desc(), Enrollment.id.desc())
    ).scalars()
    return [EnrollmentView.of(e) for e in rows]


@dataclass(frozen=True)
class ChatPerson:
    """The person a chat is linked to, with what enrollment needs to know of them."""

    person_id: int
    name: str
    id_number: str
    phone: str | None
    region_path: str
    registered_poor: bool
    household_size: int | None = None


def person_of_chat(session: Session, channel: str, channel_user_id: str) -> ChatPerson | None:
    identity = session.execute(
        select(ChatIdentity)
        .where(ChatIdentity.channel == channel, ChatIdentity.channel_user_id == channel_user_id)
        .options(joinedload(ChatIdentity.person).joinedload(Person.household).joinedload(Household.region))
    ).scalar_one_or_none()
    if identity is None or identity.person is None:
        return None
    person: Person = identity.person
    return ChatPerson(
        person_id=person.id,
        name=person.name,
        id_number=person.id_number,
        phone=person.phone,
        region_path=person.household.region.path,
        registered_poor=bool(person.household.is_registered_poor),
        household_size=person.household.size,
    )


def mark_paid(session: Session, reference: str, when: dt.datetime | None = None) -> EnrollmentView | None:
    """Record the premium as paid (a cadre or the insurer confirms it); None when no such reference."""
    enrollment = session.execute(
        select(Enrollment).where(Enrollment.reference == reference.strip().upper())
    ).scalar_one_or_none()
    if enrollment is None:
        return None
    if enrollment.paid_at is None:
        enrollment.paid_at = when or utcnow()
    return EnrollmentView.of(enrollment)
