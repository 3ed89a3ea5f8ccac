"""Hardship cases (自主申报): submission with triage, assignment and notification; the status workflow; follow-up.

Workflow: 已提交 → 核实中 → 纳入监测 / 即时帮扶 / 不予纳入 → 风险消除, and back in (可进可出): a household whose risk
was cleared, or whose case was refused, can be verified and taken into monitoring again. Every step is a CaseEvent
with who made it, when, and a note.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker

from actions import crypto
from actions.db.models import (
    Cadre,
    CaseAssignment,
    CaseEvent,
    CaseNumber,
    ChatIdentity,
    HardshipCase,
    Household,
    Notification,
    Person,
    Region,
    utcnow,
)
from actions.db.types import id_number_digest
from actions.services.identities import cadres_covering
from actions.services.insurance import ChatPerson, person_of_chat, same_name
from actions.services.triage import Facts, MonitoringRules, triage

logger = logging.getLogger(__name__)

SUBMITTED, VERIFYING, MONITORED, URGENT_HELP, REFUSED, CLEARED = (
    "已提交",
    "核实中",
    "纳入监测",
    "即时帮扶",
    "不予纳入",
    "风险消除",
)
TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({VERIFYING}),
    VERIFYING: frozenset({MONITORED, URGENT_HELP, REFUSED}),
    MONITORED: frozenset({URGENT_HELP, CLEARED}),
    URGENT_HELP: frozenset({MONITORED, CLEARED}),
    REFUSED: frozenset({VERIFYING}),  # new facts: verify again
    CLEARED: frozenset({VERIFYING, MONITORED, URGENT_HELP}),  # 可进可出: back into monitoring
}
MAX_NOTE = 300
DECLARANT = "申报人"
CHINA = dt.timezone(dt.timedelta(hours=8))  # no daylight saving time
CASE_NO = re.compile(r"SB-(\d{4})-(\d{6})")


class TransitionError(ValueError):
    """A status change the workflow does not allow, or that lacks what it needs."""


def local_date(moment: dt.datetime) -> dt.date:
    """The date in China of a naive UTC timestamp as the database stores them."""
    return moment.replace(tzinfo=dt.timezone.utc).astimezone(CHINA).date()


@dataclass(frozen=True)
class Declaration:
    """What the declarant said, checked by the form."""

    name: str
    id_number: str
    phone: str
    address: str
    cause: str
    amount: Decimal | None
    income: Decimal
    size: int
    description: str
    channel: str
    channel_user_id: str
    region_path: str | None = None  # the address resolved against the administrative tree, where known
    submission_key: str | None = None  # one per filled-in form: a second 提交 finds the first case

    @property
    def fingerprint(self) -> str:
        """Same person, cause, figures and words: the same declaration.

        Keyed (HMAC), as the 身份证号 is part of it: an unkeyed hash could be searched for the number offline.
        """
        words = re.sub(r"[\s\W_]+", "", self.description)
        amount = "" if self.amount is None else str(self.amount.normalize())
        parts = ("declaration", self.id_number, self.cause, amount, str(self.income.normalize()), str(self.size), words)
        return crypto.cipher().digest("|".join(parts))


@dataclass(frozen=True)
class EventView:
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    at: dt.datetime


@dataclass(frozen=True)
class CaseView:
    """A case as replies show it (the templates mask the 身份证号 and phone)."""

    case_no: str
    status: str
    name: str | None
    id_number: str | None
    phone: str | None
    address: str | None
    region_path: str | None
    cause: str | None
    amount: Decimal | None
    income: Decimal | None
    size: int | None
    description: str | None
    category: str | None
    risk: str | None
    urgent: bool
    reasons: tuple[str, ...]
    due_on: dt.date | None
    cadre_acted: bool
    submitted_on: dt.date
    history: tuple[EventView, ...]
    assigned: tuple[str, ...]

    @property
    def awaiting_verification(self) -> bool:
        """No cadre has acted yet: the verification deadline applies."""
        return not self.cadre_acted

    def overdue(self, today: dt.date) -> bool:
        return self.awaiting_verification and self.due_on is not None and today > self.due_on

    @classmethod
    def of(cls, case: HardshipCase) -> CaseView:
        history = tuple(
            EventView(
                e.from_status,
                e.to_status,
                e.actor or (e.cadre.name if e.cadre is not None else DECLARANT),
                e.note,
                e.created_at,
            )
            for e in case.events
        )
        return cls(
            case_no=case.case_no,
            status=case.status,
            name=case.name,
            id_number=case.id_number,
            phone=case.phone,
            address=case.address,
            region_path=case.region.path if case.region is not None else None,
            cause=case.cause,
            amount=Decimal(case.amount) if case.amount is not None else None,
            income=Decimal(case.household_income) if case.household_income is not None else None,
            size=case.household_size,
            description=case.description,
            category=case.category,
            risk=case.risk,
            urgent=bool(case.urgent),
            reasons=tuple(line for line in (case.reasons or "").splitlines() if line),
            due_on=case.due_on,
            cadre_acted=any(e.cadre_id is not None for e in case.events),
            submitted_on=local_date(case.created_at),
            history=history,
            assigned=tuple(a.cadre.name for a in case.assignments),
        )


@dataclass(frozen=True)
class SubmitResult:
    case: CaseView
    created: bool  # False: this declaration had been submitted already


Declarant = ChatPerson  # what the register knows of a chat user who declares: none of it is asked again


def _case_query():  # type: ignore[no-untyped-def]
    return select(HardshipCase).options(
        selectinload(HardshipCase.events).joinedload(CaseEvent.cadre),
        selectinload(HardshipCase.assignments).joinedload(CaseAssignment.cadre),
        joinedload(HardshipCase.region),
    )


def declarant_of_chat(session: Session, channel: str, channel_user_id: str) -> Declarant | None:
    return person_of_chat(session, channel, channel_user_id)


class AlreadySubmitted(Exception):
    """The declaration is already a case (internal to `submit`)."""

    def __init__(self, case: CaseView) -> None:
        super().__init__(case.case_no)
        self.case = case


def _take_case_no(session: Session, year: int) -> str:
    """The year's next case number. The counter row stays locked until the transaction ends (a row lock in
    PostgreSQL, the write lock in SQLite): a concurrent submission waits here, then sees this one's case."""
    bumped = session.execute(update(CaseNumber).where(CaseNumber.year == year).values(last=CaseNumber.last + 1))
    if bumped.rowcount == 0:  # the year's first case; a concurrent first one makes this fail, and submit retries
        prefix = f"SB-{year}-"
        highest = session.execute(
            select(func.max(HardshipCase.case_no)).where(HardshipCase.case_no.like(prefix + "%"))
        ).scalar_one_or_none()
        session.add(CaseNumber(year=year, last=int(highest[len(prefix) :]) + 1 if highest else 1))
        session.flush()
    number = session.execute(select(CaseNumber.last).where(CaseNumber.year == year)).scalar_one()
    return f"SB-{year}-{number:06d}"


def _already_submitted(session: Session, declaration: Declaration, since: dt.datetime) -> HardshipCase | None:
    conditions = [(HardshipCase.fingerprint == declaration.fingerprint) & (HardshipCase.created_at >= since)]
    if declaration.submission_key:
        conditions.append(HardshipCase.submission_key == declaration.submission_key)
    return session.execute(_case_query().where(or_(*conditions)).order_by(HardshipCase.id).limit(1)).scalars().first()


def _region(session: Session, path: str | None) -> Region | None:
    if not path:
        return None
    return session.execute(select(Region).where(Region.path == path)).scalar_one_or_none()


def _assign(session: Session, case: HardshipCase, region: Region | None) -> tuple[list[Cadre], list[Cadre]]:
    """Every cadre whose jurisdiction covers the place works the case; (assigned, to notify).

    The most local of them are notified, and all of them for an urgent case; with no cadre for the place, the
    administrators get it.
    """
    covering = cadres_covering(session, region.path) if region is not None else []
    if not covering:
        admins = list(session.execute(select(Cadre).where(Cadre.is_admin.is_(True)).order_by(Cadre.id)).scalars())
        assigned, notify = admins, admins
    else:
        assigned = covering
        closest = len(covering[0].region.path)
        notify = covering if case.urgent else [c for c in covering if len(c.region.path) == closest]
    for cadre in assigned:
        session.add(CaseAssignment(case=case, cadre=cadre))
    return assigned, notify


def buttons_json(buttons: list[dict[str, str]]) -> str:
    """A notification's buttons as stored: readable JSON, each payload short enough for Telegram's callback_data."""
    return json.dumps(buttons, ensure_ascii=False)


def _notify(session: Session, case: HardshipCase, cadres: list[Cadre], describe: Callable[[CaseView], str]) -> None:
    """One outbox row per chat account of each cadre; a front end delivers them (Telegram: the Telegram issue)."""
    if not cadres:
        return
    text = describe(CaseView.of(case))
    identities = session.execute(
        select(ChatIdentity).where(ChatIdentity.cadre_id.in_([c.id for c in cadres])).order_by(ChatIdentity.id)
    ).scalars()
    for identity in identities:
        session.add(
            Notification(
                cadre_id=identity.cadre_id,
                case_id=case.id,
                channel=identity.channel,
                channel_user_id=identity.channel_user_id,
                text=text,
                buttons=buttons_json([{"title": "打开这件", "payload": f'/cadre_cases{{"case_no":"{case.case_no}"}}'}]),
            )
        )


def submit(
    sessions: sessionmaker,
    rules: MonitoringRules,
    declaration: Declaration,
    *,
    describe: Callable[[CaseView], str],
    now: dt.datetime | None = None,
) -> SubmitResult:
    """Triage and store the declaration, assign it, and queue the cadres' notifications, in one transaction.

    A second submission of the same form (its submission key) or the same declaration within the duplicate window
    returns the first case. The unique case number and submission key decide between concurrent sessions.
    """
    now = now or utcnow()
    for _attempt in range(3):
        try:
            with sessions.begin() as session:
                submitted_on = local_date(now)
                case_no = _take_case_no(session, submitted_on.year)  # first: it orders concurrent submissions
                existing = _already_submitted(session, declaration, now - rules.duplicate_window)
                if existing is not None:
                    raise AlreadySubmitted(CaseView.of(existing))  # rolls back: the number is not used up
                person = session.execute(
                    select(Person)
                    .where(Person.id_number_hash == id_number_digest(declaration.id_number))
                    .options(joinedload(Person.household).joinedload(Household.region))
                ).scalar_one_or_none()
                if person is not None and not same_name(person.name, declaration.name):
                    person = None  # the number is registered under another name: a cadre checks
                household = person.household if person is not None else None
                region = _region(session, declaration.region_path) or (household.region if household else None)
                result = triage(
                    rules,
                    Facts(
                        cause=declaration.cause,
                        amount=declaration.amount,
                        income=declaration.income,
                        size=declaration.size,
                        description=declaration.description,
                        registered_poor=bool(household.is_registered_poor) if household is not None else None,
                    ),
                )
                case = HardshipCase(
                    case_no=case_no,
                    person_id=person.id if person is not None else None,
                    household_id=household.id if household is not None else None,
                    region=region,
                    name=declaration.name,
                    id_number=declaration.id_number,
                    phone=declaration.phone,
                    address=declaration.address[:200],
                    cause=declaration.cause,
                    amount=declaration.amount,
                    household_income=declaration.income,
                    household_size=declaration.size,
                    description=declaration.description,
                    category=result.category,
                    risk=result.risk,
                    urgent=result.urgent,
                    reasons="\n".join(result.reasons),
                    status=SUBMITTED,
                    due_on=rules.due_date(submitted_on),
                    channel=declaration.channel,
                    channel_user_id=declaration.channel_user_id,
                    submission_key=declaration.submission_key,
                    fingerprint=declaration.fingerprint,
                    created_at=now,
                    updated_at=now,
                )
                session.add(case)
                session.add(
                    CaseEvent(case=case, from_status=None, to_status=SUBMITTED, actor=DECLARANT, created_at=now,
                              note=f"通过聊天({declaration.channel})自主申报")
                )  # fmt: skip
                _assigned, notify = _assign(session, case, region)
                session.flush()
                _notify(session, case, notify, describe)
                session.flush()
                view = CaseView.of(case)
            return SubmitResult(view, True)
        except AlreadySubmitted as found:
            return SubmitResult(found.case, False)
        except IntegrityError:
            # A concurrent submission started the year's counter, or submitted this very form first.
            with sessions.begin() as session:
                existing = _already_submitted(session, declaration, now - rules.duplicate_window)
                if existing is not None:
                    return SubmitResult(CaseView.of(existing), False)
            logger.warning("case insert conflicted without a duplicate; retrying")
    raise RuntimeError("case could not be written after 3 attempts")


def cases_of_chat(session: Session, channel: str, channel_user_id: str) -> list[CaseView]:
    """The cases declared from this chat, newest first, and nobody else's."""
    rows = session.execute(
        _case_query()
        .where(HardshipCase.channel == channel, HardshipCase.channel_user_id == channel_user_id)
        .order_by(HardshipCase.created_at.desc(), HardshipCase.id.desc())
    ).scalars()
    return [CaseView.of(c) for c in rows]


def case_by_number(session: Session, case_no: str) -> CaseView | None:
    case = session.execute(_case_query().where(HardshipCase.case_no == case_no.strip().upper())).scalar_one_or_none()
    return CaseView.of(case) if case is not None else None


def allowed_next(status: str) -> frozenset[str]:
    return TRANSITIONS.get(status, frozenset())


def may_work(cadre: Cadre, case: HardshipCase) -> bool:
    """A cadre works the cases in their jurisdiction, and those assigned to them (a place no cadre covers goes to
    the administrators). Being an administrator does not widen the jurisdiction."""
    if any(a.cadre_id == cadre.id for a in case.assignments):
        return True
    if case.region is None:
        return False
    jurisdiction = cadre.region.path
    return case.region.path == jurisdiction or case.region.path.startswith(jurisdiction + "/")


def transition(
    session: Session,
    case_no: str,
    to_status: str,
    *,
    cadre_id: int,
    note: str | None = None,
    now: dt.datetime | None = None,
    tell_declarant: Callable[[CaseView], str] | None = None,
) -> CaseView:
    """Move a case to another status, as a cadre, with a short note saying why; refused unless the workflow allows
    it and the cadre may work it. `tell_declarant` words the outcome for the chat that declared (an outbox row)."""
    case = session.execute(_case_query().where(HardshipCase.case_no == case_no.strip().upper())).scalar_one_or_none()
    if case is None:
        raise TransitionError(f"没有编号为 {case_no} 的申报")
    cadre = session.execute(
        select(Cadre).where(Cadre.id == cadre_id).options(joinedload(Cadre.region))
    ).scalar_one_or_none()
    if cadre is None:
        raise TransitionError("没有这个干部")
    if not may_work(cadre, case):
        raise TransitionError(f"{case.case_no} 不在 {cadre.name} 的辖区内")
    if to_status not in allowed_next(case.status):
        allowed = "、".join(sorted(allowed_next(case.status))) or "无"
        raise TransitionError(f"{case.case_no} 现在是“{case.status}”,不能改为“{to_status}”(可以改为:{allowed})")
    note = " ".join((note or "").split()) or None
    if note is None:
        raise TransitionError(f"改为“{to_status}”要写明原因(一句话就行)")
    if len(note) > MAX_NOTE:
        raise TransitionError(f"原因太长了,请写在 {MAX_NOTE} 个字以内")
    now = now or utcnow()
    session.add(
        CaseEvent(case=case, from_status=case.status, to_status=to_status, note=note, cadre=cadre, actor=cadre.name,
                  created_at=now)
    )  # fmt: skip
    case.status = to_status
    case.updated_at = now
    session.flush()
    view = CaseView.of(case)
    if tell_declarant is not None and case.channel and case.channel_user_id:
        session.add(
            Notification(case_id=case.id, channel=case.channel, channel_user_id=case.channel_user_id,
                         text=tell_declarant(view), created_at=now,
                         buttons=buttons_json([{"title": "看申报进度", "payload": "/declaration_status"}]))
        )  # fmt: skip
    return view
