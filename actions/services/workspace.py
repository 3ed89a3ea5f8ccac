"""The cadre workspace: what a registered cadre sees and does, always inside their jurisdiction, always audited.

A chat user is a cadre only through a registration (`helpline cadre add`, or an administrator in the chat); what a
message claims changes nothing. Every function here takes the `Officer` found from that registration and never
returns a record outside the officer's jurisdiction: a case or household elsewhere is "not found", exactly like one
that does not exist, so a lookup cannot even confirm that it exists. Each lookup of personal data and each change
writes an audit entry (who, what, when, which record; never the personal data itself).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql.elements import ColumnElement

from actions.db.models import (
    ABCD_CLASSES,
    CASE_CATEGORIES,
    CASE_STATUSES,
    HELP_MEASURES,
    AuditEntry,
    Cadre,
    CaseAssignment,
    CaseEvent,
    ChatIdentity,
    HardshipCase,
    HelpMeasure,
    Household,
    HouseholdChange,
    Person,
    Region,
    utcnow,
)
from actions.db.types import id_number_digest
from actions.services.cases import (
    MAX_NOTE,
    MONITORED,
    SUBMITTED,
    URGENT_HELP,
    VERIFYING,
    CaseView,
    TransitionError,
    transition,
)
from actions.services.idcard import validate_id_number

PAGE_SIZE = 5
OPEN_STATUSES = (SUBMITTED, VERIFYING)  # 待核实: no decision yet
MONITORING_STATUSES = (MONITORED, URGENT_HELP)
MAX_AMOUNT = Decimal("10000000")
T = TypeVar("T")


class NotACadre(PermissionError):
    """The chat user is not a registered cadre."""


class WorkspaceError(ValueError):
    """A request the workspace refuses, with the reason in Chinese for the cadre."""


@dataclass(frozen=True)
class Officer:
    """A registered cadre as the workspace knows them."""

    cadre_id: int | None  # None: an operator at the command line, scoped to a region
    name: str
    jurisdiction: str  # region path: 淄博市/淄川区/太河镇
    is_admin: bool

    def covers(self, path: str | None) -> bool:
        return path is not None and (path == self.jurisdiction or path.startswith(self.jurisdiction + "/"))

    @property
    def actor(self) -> str:
        return f"干部 {self.name} (#{self.cadre_id})" if self.cadre_id is not None else self.name

    @classmethod
    def operator(cls, session: Session, region: str, who: str = "命令行") -> Officer:
        """The command line's scope: one region of the tree (WorkspaceError when it is not in the database)."""
        path = "/".join(p for p in region.replace("\\", "/").split("/") if p.strip())
        found = session.execute(select(Region).where(Region.path == path)).scalar_one_or_none()
        if found is None:
            raise WorkspaceError(f"地区 {path or region} 不在数据库中(写全路径,如 淄博市/淄川区)")
        return cls(None, who, found.path, False)

    @classmethod
    def of(cls, cadre: Cadre) -> Officer:
        return cls(cadre.id, cadre.name, cadre.region.path, bool(cadre.is_admin))


def officer_of_chat(session: Session, channel: str, channel_user_id: str) -> Officer:
    """The registered cadre behind a chat user; NotACadre for everyone else."""
    cadre = session.execute(
        select(Cadre)
        .join(ChatIdentity, ChatIdentity.cadre_id == Cadre.id)
        .where(ChatIdentity.channel == channel, ChatIdentity.channel_user_id == str(channel_user_id))
        .options(joinedload(Cadre.region))
    ).scalar_one_or_none()
    if cadre is None:
        raise NotACadre(channel_user_id)
    return Officer.of(cadre)


def acting_cadre(officer: Officer) -> int:
    """Changes are made by a registered cadre, never anonymously."""
    if officer.cadre_id is None:
        raise WorkspaceError("只有登记过的干部可以改动案件和农户")
    return officer.cadre_id


def audit(
    session: Session,
    actor: Officer | str,
    action: str,
    record_type: str | None = None,
    record_ref: str | None = None,
    detail: str | None = None,
) -> None:
    """One audit entry. `record_ref` names the record (a case number, a 户编号, a region), never an ID number."""
    officer = actor if isinstance(actor, Officer) else None
    session.add(
        AuditEntry(
            cadre_id=officer.cadre_id if officer else None,
            actor=officer.actor if officer else str(actor)[:100],
            action=action,
            record_type=record_type,
            record_ref=(record_ref or "")[:100] or None,
            detail=(detail or "")[:300] or None,
            created_at=utcnow(),
        )
    )


def audit_since(session: Session, since: dt.datetime) -> list[AuditEntry]:
    return list(
        session.execute(
            select(AuditEntry).where(AuditEntry.created_at >= since).order_by(AuditEntry.created_at, AuditEntry.id)
        ).scalars()
    )


def within(column: Any, jurisdiction: str) -> ColumnElement[bool]:
    """SQL: the region path is the jurisdiction or below it (no LIKE, so no wildcard in a name can widen it)."""
    prefix = jurisdiction + "/"
    return or_(column == jurisdiction, func.substr(column, 1, len(prefix)) == prefix)


def case_scope(officer: Officer) -> ColumnElement[bool]:
    in_region = HardshipCase.region_id.in_(select(Region.id).where(within(Region.path, officer.jurisdiction)))
    if officer.cadre_id is None:
        return in_region
    assigned = select(CaseAssignment.case_id).where(CaseAssignment.cadre_id == officer.cadre_id)
    return or_(in_region, HardshipCase.id.in_(assigned))


def _cases() -> Any:
    return select(HardshipCase).options(
        selectinload(HardshipCase.events).joinedload(CaseEvent.cadre),
        selectinload(HardshipCase.assignments).joinedload(CaseAssignment.cadre),
        joinedload(HardshipCase.region),
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    offset: int
    total: int

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.items)
        return following if following < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - PAGE_SIZE) if self.offset > 0 else None


def _page(session: Session, query: Any, where: ColumnElement[bool], order: list[Any], offset: int) -> Page[CaseView]:
    total = session.execute(select(func.count()).select_from(HardshipCase).where(where)).scalar_one()
    offset = max(0, min(offset, max(0, total - 1)))
    rows = session.execute(query.where(where).order_by(*order).offset(offset).limit(PAGE_SIZE)).scalars().all()
    return Page(tuple(CaseView.of(c) for c in rows), offset, int(total))


def pending(session: Session, officer: Officer, offset: int = 0) -> Page[CaseView]:
    """Declarations awaiting verification (已提交, 核实中), oldest first."""
    where = and_(case_scope(officer), HardshipCase.status.in_(OPEN_STATUSES))
    page = _page(session, _cases(), where, [HardshipCase.created_at, HardshipCase.id], offset)
    audit(session, officer, "case.list", "case", None, f"待核实 第 {page.offset // PAGE_SIZE + 1} 页")
    return page


def case_for(session: Session, officer: Officer, case_no: str) -> CaseView | None:
    """One case by its number; None when it does not exist or lies outside the jurisdiction."""
    number = case_no.strip().upper()
    case = session.execute(_cases().where(HardshipCase.case_no == number, case_scope(officer))).scalar_one_or_none()
    audit(session, officer, "case.view", "case", number, None if case else "未找到或不在辖区")
    return CaseView.of(case) if case is not None else None


@dataclass(frozen=True)
class MemberView:
    name: str
    id_number: str  # masked by the templates
    phone: str | None


@dataclass(frozen=True)
class ChangeView:
    field: str
    old_value: str | None
    new_value: str | None
    note: str | None
    actor: str
    at: dt.datetime


@dataclass(frozen=True)
class HouseholdView:
    code: str
    region_path: str
    status: str
    abcd_class: str | None
    size: int | None
    registered_poor: bool
    members: tuple[MemberView, ...]
    cases: tuple[CaseView, ...]
    changes: tuple[ChangeView, ...]


def _household_view(session: Session, household: Household, officer: Officer) -> HouseholdView:
    cases = session.execute(
        _cases()
        .where(HardshipCase.household_id == household.id, case_scope(officer))
        .order_by(HardshipCase.created_at.desc())
    ).scalars()
    changes = session.execute(
        select(HouseholdChange)
        .where(HouseholdChange.household_id == household.id)
        .order_by(HouseholdChange.id)
        .options(joinedload(HouseholdChange.cadre))
    ).scalars()
    return HouseholdView(
        code=household.code,
        region_path=household.region.path,
        status=household.status,
        abcd_class=household.abcd_class,
        size=household.size,
        registered_poor=bool(household.is_registered_poor),
        members=tuple(MemberView(p.name, p.id_number, p.phone) for p in household.members),
        cases=tuple(CaseView.of(c) for c in cases),
        changes=tuple(
            ChangeView(c.field, c.old_value, c.new_value, c.note, c.cadre.name, c.created_at) for c in changes
        ),
    )


def _households() -> Any:
    return (
        select(Household)
        .join(Region, Household.region_id == Region.id)
        .options(joinedload(Household.region), selectinload(Household.members))
    )


MAX_MATCHES = 5


def find_households(session: Session, officer: Officer, query: str) -> list[HouseholdView]:
    """Households in the jurisdiction by a member's 身份证号 (exact) or name (exact), at most MAX_MATCHES."""
    text = query.strip()
    checked = validate_id_number(text)
    member = (
        Person.id_number_hash == id_number_digest(checked.normalized)
        if checked.ok and checked.normalized
        else Person.name == text[:64]
    )
    households = (
        session.execute(
            _households()
            .where(
                within(Region.path, officer.jurisdiction), Household.id.in_(select(Person.household_id).where(member))
            )
            .order_by(Household.code)
            .limit(MAX_MATCHES)
        )
        .unique()
        .scalars()
        .all()
    )
    how = "身份证号" if checked.ok else "姓名"
    audit(session, officer, "household.search", "household", ",".join(h.code for h in households) or None,
          f"按{how}查,{len(households)} 户")  # fmt: skip
    return [_household_view(session, h, officer) for h in households]


def resolve_place(session: Session, officer: Officer, name: str) -> Region | None:
    """A region named inside the jurisdiction: 太河镇, 东峪村, 淄川区 (the jurisdiction itself counts)."""
    name = name.strip()
    if not name:
        return None
    return session.execute(
        select(Region)
        .where(within(Region.path, officer.jurisdiction), or_(Region.name == name, Region.path == name))
        .order_by(func.length(Region.path))
        .limit(1)
    ).scalar_one_or_none()


def monitored(
    session: Session, officer: Officer, category: str | None = None, place: Region | None = None, offset: int = 0
) -> Page[CaseView]:
    """Cases in monitoring (纳入监测, 即时帮扶) in the jurisdiction, or in one place of it, by category."""
    if category is not None and category not in CASE_CATEGORIES:
        raise WorkspaceError(f"没有“{category}”这个类别(可选:{'、'.join(CASE_CATEGORIES)})")
    where = and_(case_scope(officer), HardshipCase.status.in_(MONITORING_STATUSES))
    if category is not None:
        where = and_(where, HardshipCase.category == category)
    if place is not None:
        if not officer.covers(place.path):
            raise WorkspaceError("这个地方不在您的辖区内")
        where = and_(where, HardshipCase.region_id.in_(select(Region.id).where(within(Region.path, place.path))))
    page = _page(session, _cases(), where, [HardshipCase.category, HardshipCase.created_at, HardshipCase.id], offset)
    audit(session, officer, "case.list", "region", place.path if place else officer.jurisdiction,
          f"监测户{'·' + category if category else ''} 第 {page.offset // PAGE_SIZE + 1} 页")  # fmt: skip
    return page


def move_case(
    session: Session,
    officer: Officer,
    case_no: str,
    to_status: str,
    note: str | None,
    tell_declarant: Callable[[CaseView], str],
) -> CaseView:
    """Move a case along the workflow with a note; the declarant's chat is told the outcome."""
    if to_status not in CASE_STATUSES[1:]:
        raise WorkspaceError(f"没有“{to_status}”这个状态")
    number = case_no.strip().upper()
    if case_for(session, officer, number) is None:
        raise WorkspaceError(f"在您的辖区里没有编号为 {number} 的申报")
    try:
        view = transition(session, number, to_status, cadre_id=acting_cadre(officer), note=note,
                          tell_declarant=tell_declarant)  # fmt: skip
    except TransitionError as exc:
        raise WorkspaceError(str(exc)) from exc
    audit(session, officer, "case.move", "case", number, f"改为 {to_status}")
    return view


def _household_in_scope(session: Session, officer: Officer, code: str) -> Household:
    household = session.execute(
        _households().where(Household.code == code.strip(), within(Region.path, officer.jurisdiction))
    ).scalar_one_or_none()
    if household is None:
        raise WorkspaceError(f"在您的辖区里没有户编号为 {code.strip()} 的农户")
    return household


def _clean_note(note: str | None, required: bool) -> str | None:
    text = " ".join((note or "").split()) or None
    if required and text is None:
        raise WorkspaceError("请写一句原因")
    if text is not None and len(text) > MAX_NOTE:
        raise WorkspaceError(f"说明太长了,请写在 {MAX_NOTE} 个字以内")
    return text


def set_abcd(session: Session, officer: Officer, household_code: str, abcd: str, note: str | None) -> HouseholdView:
    """Set or change a household's ABCD class (by development ability), with the reason, kept in its history."""
    abcd = abcd.strip().upper()
    if abcd not in ABCD_CLASSES:
        raise WorkspaceError("ABCD 分类只能是 A、B、C、D 之一")
    household = _household_in_scope(session, officer, household_code)
    text = _clean_note(note, required=True)
    if household.abcd_class == abcd:
        raise WorkspaceError(f"{household.code} 已经是 {abcd} 类")
    session.add(
        HouseholdChange(household=household, field="abcd_class", old_value=household.abcd_class, new_value=abcd,
                        note=text, cadre_id=acting_cadre(officer), created_at=utcnow())
    )  # fmt: skip
    household.abcd_class = abcd
    session.flush()
    audit(session, officer, "household.abcd", "household", household.code, f"改为 {abcd} 类")
    return _household_view(session, household, officer)


def parse_amount(text: str | None) -> Decimal | None:
    if text is None or not str(text).strip():
        return None
    try:
        amount = Decimal(str(text).strip().removesuffix("元").removesuffix("块").strip())
    except InvalidOperation as exc:
        raise WorkspaceError("金额要写数字,比如 2000") from exc
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise WorkspaceError("金额不对:要在 0 到 1000 万元之间")
    return amount.quantize(Decimal("0.01"))


@dataclass(frozen=True)
class MeasureView:
    case_no: str
    kind: str
    amount: Decimal | None
    note: str | None
    actor: str
    at: dt.datetime


def record_measure(
    session: Session, officer: Officer, case_no: str, kind: str, amount: Decimal | None, note: str | None
) -> MeasureView:
    """Record a help measure (帮扶措施) given to a case's household."""
    if kind not in HELP_MEASURES:
        raise WorkspaceError(f"没有“{kind}”这种帮扶措施(可选:{'、'.join(HELP_MEASURES)})")
    number = case_no.strip().upper()
    case = session.execute(
        select(HardshipCase).where(HardshipCase.case_no == number, case_scope(officer))
    ).scalar_one_or_none()
    if case is None:
        raise WorkspaceError(f"在您的辖区里没有编号为 {number} 的申报")
    text = _clean_note(note, required=False)
    now = utcnow()
    session.add(
        HelpMeasure(case=case, kind=kind, amount=amount, note=text, cadre_id=acting_cadre(officer), created_at=now)
    )
    session.flush()
    audit(session, officer, "case.measure", "case", number, kind)
    return MeasureView(number, kind, amount, text, officer.name, now)


def measures_of(session: Session, officer: Officer, case_no: str) -> list[MeasureView]:
    rows = session.execute(
        select(HelpMeasure)
        .join(HardshipCase, HelpMeasure.case_id == HardshipCase.id)
        .where(HardshipCase.case_no == case_no.strip().upper(), case_scope(officer))
        .order_by(HelpMeasure.id)
        .options(joinedload(HelpMeasure.cadre), joinedload(HelpMeasure.case))
    ).scalars()
    return [
        MeasureView(
            m.case.case_no,
            m.kind,
            Decimal(m.amount) if m.amount is not None else None,
            m.note,
            m.cadre.name,
            m.created_at,
        )
        for m in rows
    ]


@dataclass(frozen=True)
class Statistics:
    jurisdiction: str
    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_abcd: dict[str, int]  # households of the jurisdiction by ABCD class ("未分类" for none)
    by_village: dict[str, int]  # cases by the place below the jurisdiction ("地址不详" where unresolved)
    overdue: int


def statistics(session: Session, officer: Officer, today: dt.date) -> Statistics:
    """Counts for the jurisdiction: cases by status, category and place; households by ABCD class; overdue cases."""
    cases = [CaseView.of(c) for c in session.execute(_cases().where(case_scope(officer))).scalars()]
    depth = len(officer.jurisdiction.split("/"))

    def place(view: CaseView) -> str:
        if view.region_path is None or not officer.covers(view.region_path):
            return "地址不详"
        parts = view.region_path.split("/")
        return parts[-1] if len(parts) == depth else "/".join(parts[depth:])

    abcd = session.execute(
        select(Household.abcd_class, func.count())
        .join(Region, Household.region_id == Region.id)
        .where(within(Region.path, officer.jurisdiction))
        .group_by(Household.abcd_class)
    ).all()
    stats = Statistics(
        jurisdiction=officer.jurisdiction,
        total=len(cases),
        by_status={s: n for s in CASE_STATUSES if (n := sum(c.status == s for c in cases))},
        by_category={k: n for k, n in Counter(c.category or "未分诊" for c in cases).most_common()},
        by_abcd={(k or "未分类"): int(n) for k, n in sorted(abcd, key=lambda row: row[0] or "Z")},
        by_village=dict(Counter(place(c) for c in cases).most_common()),
        overdue=sum(c.overdue(today) for c in cases),
    )
    audit(session, officer, "stats", "region", officer.jurisdiction)
    return stats
