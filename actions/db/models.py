"""SQLAlchemy models of the case database (SQLAlchemy 1.4, 2.0 style)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import registry, relationship
from sqlalchemy.orm.decl_api import DeclarativeMeta

from actions.db.types import EncryptedString, id_number_digest

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

mapper_registry = registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


class Base(metaclass=DeclarativeMeta):
    """Declarative base spelled out, so that type checkers see a class."""

    __abstract__ = True
    registry = mapper_registry
    metadata = mapper_registry.metadata
    __init__ = mapper_registry.constructor


REGION_LEVELS = ("市", "区县", "乡镇", "村")
HOUSEHOLD_STATUSES = (
    "一般农户",
    "脱贫户",
    "脱贫不稳定户",
    "边缘易致贫户",
    "突发严重困难户",
    "低保户",
    "特困供养户",
)
ABCD_CLASSES = ("A", "B", "C", "D")
CASE_STATUSES = ("已提交", "核实中", "纳入监测", "即时帮扶", "不予纳入", "风险消除")
CASE_CATEGORIES = ("脱贫不稳定户", "边缘易致贫户", "突发严重困难户", "暂不符合")
RISK_LEVELS = ("高", "中", "低")
ID_NUMBER_HASHED = "(id_number IS NULL) = (id_number_hash IS NULL)"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Region(Base):
    """A node of the administrative tree 市 → 区县 → 乡镇 → 村."""

    __tablename__ = "regions"
    __table_args__ = (
        UniqueConstraint("parent_id", "name"),
        CheckConstraint(_in("level", REGION_LEVELS), name="level"),
    )

    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False)
    level = Column(String(8), nullable=False)
    parent_id = Column(ForeignKey("regions.id"), nullable=True)
    # "淄博市/淄川区/太河镇": lets a jurisdiction select everything below it by prefix.
    path = Column(String(300), nullable=False, unique=True)

    parent = relationship("Region", remote_side=[id])


class Household(Base):
    """A registered household (户), located in a village."""

    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint(_in("status", HOUSEHOLD_STATUSES), name="status"),
        CheckConstraint(
            "abcd_class IS NULL OR " + _in("abcd_class", ABCD_CLASSES),
            name="abcd_class",
        ),
        CheckConstraint("size IS NULL OR size BETWEEN 1 AND 30", name="size"),
    )

    id = Column(Integer, primary_key=True)
    code = Column(String(32), nullable=False, unique=True)  # 户编号
    region_id = Column(ForeignKey("regions.id"), nullable=False, index=True)
    status = Column(String(16), nullable=False)  # 类别
    is_registered_poor = Column(Boolean, nullable=False, default=False)  # 建档立卡
    abcd_class = Column(String(1), nullable=True)
    size = Column(Integer, nullable=True)  # 家庭人口
    is_synthetic = Column(Boolean, nullable=False, default=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    region = relationship(Region)
    members = relationship("Person", back_populates="household", order_by="Person.id")


class Person(Base):
    """A member of a household."""

    __tablename__ = "persons"

    id = Column(Integer, primary_key=True)
    household_id = Column(ForeignKey("households.id"), nullable=False, index=True)
    name = Column(String(64), nullable=False)
    id_number = Column(EncryptedString(200), nullable=False)  # 身份证号, normalised to 18 characters; encrypted
    id_number_hash = Column(String(64), nullable=False, unique=True)  # its keyed hash: lookups, one row per number
    phone = Column(String(11), nullable=True)
    birth_date = Column(Date, nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    household = relationship(Household, back_populates="members")


class Cadre(Base):
    """A registered cadre; sees and works the cases of one jurisdiction."""

    __tablename__ = "cadres"

    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False)
    region_id = Column(ForeignKey("regions.id"), nullable=False, index=True)
    is_admin = Column(Boolean, nullable=False, default=False)
    is_synthetic = Column(Boolean, nullable=False, default=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    region = relationship(Region)


class ChatIdentity(Base):
    """Which channel user is which person or cadre."""

    __tablename__ = "chat_identities"
    __table_args__ = (
        UniqueConstraint("channel", "channel_user_id"),
        CheckConstraint("person_id IS NOT NULL OR cadre_id IS NOT NULL", name="who"),
    )

    id = Column(Integer, primary_key=True)
    channel = Column(String(32), nullable=False)
    channel_user_id = Column(String(64), nullable=False)
    person_id = Column(ForeignKey("persons.id"), nullable=True, index=True)
    cadre_id = Column(ForeignKey("cadres.id"), nullable=True, index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    person = relationship(Person)
    cadre = relationship(Cadre)


class HardshipCase(Base):
    """A self-declared hardship (自主申报) case in the monitoring workflow.

    What the declarant said is kept as said (name, 身份证号, phone, address text, figures); `person_id`,
    `household_id` and `region_id` link it to the register where the 身份证号 or the address is known. The triage
    (`category`, `risk`, `urgent`, `reasons`) is a suggestion for the cadre, who decides through the workflow.
    """

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(_in("status", CASE_STATUSES), name="status"),
        CheckConstraint("category IS NULL OR " + _in("category", CASE_CATEGORIES), name="category"),
        CheckConstraint("risk IS NULL OR " + _in("risk", RISK_LEVELS), name="risk"),
        CheckConstraint("household_size IS NULL OR household_size BETWEEN 1 AND 30", name="household_size"),
        CheckConstraint(ID_NUMBER_HASHED, name="id_number_hash"),
        Index("ix_cases_chat", "channel", "channel_user_id"),
    )

    id = Column(Integer, primary_key=True)
    case_no = Column(String(20), nullable=False, unique=True)  # SB-2026-000123
    household_id = Column(ForeignKey("households.id"), nullable=True, index=True)
    person_id = Column(ForeignKey("persons.id"), nullable=True, index=True)
    region_id = Column(ForeignKey("regions.id"), nullable=True, index=True)
    name = Column(String(64), nullable=True)
    id_number = Column(EncryptedString(200), nullable=True)
    id_number_hash = Column(String(64), nullable=True)
    phone = Column(String(11), nullable=True)
    address = Column(String(200), nullable=True)  # as typed: 太河镇东峪村
    cause = Column(String(16), nullable=True)
    amount = Column(Numeric(12, 2), nullable=True)  # the extra expense or the lost income; NULL: not known
    household_income = Column(Numeric(12, 2), nullable=True)  # a normal year's, before the trouble
    household_size = Column(Integer, nullable=True)
    description = Column(Text, nullable=True)
    category = Column(String(8), nullable=True)
    risk = Column(String(1), nullable=True)
    urgent = Column(Boolean, nullable=False, default=False)
    reasons = Column(Text, nullable=True)  # the triage's reasons, one per line
    status = Column(String(8), nullable=False, default="已提交")
    due_on = Column(Date, nullable=True)  # verification deadline, until a cadre acts
    channel = Column(String(32), nullable=True)
    channel_user_id = Column(String(64), nullable=True)
    # The conversation's submission token: a second 提交 of the same form finds the first case.
    submission_key = Column(String(64), nullable=True, unique=True)
    # The declaration's content (person, cause, figures, text), keyed like the 身份证号's hash: the same declaration
    # again within minutes is one case.
    fingerprint = Column(String(64), nullable=True, index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    events = relationship("CaseEvent", back_populates="case", order_by="CaseEvent.id")
    assignments = relationship("CaseAssignment", back_populates="case", order_by="CaseAssignment.id")
    region = relationship(Region)


class CaseNumber(Base):
    """The last case number given out in a year. A submission takes the next one by updating this row first, so
    concurrent submissions (several action-server workers) wait for each other instead of colliding."""

    __tablename__ = "case_numbers"

    year = Column(Integer, primary_key=True, autoincrement=False)
    last = Column(Integer, nullable=False)


class CaseEvent(Base):
    """One step of a case's status history: who, when, from which status to which, and why."""

    __tablename__ = "case_events"

    id = Column(Integer, primary_key=True)
    case_id = Column(ForeignKey("cases.id"), nullable=False, index=True)
    from_status = Column(String(8), nullable=True)
    to_status = Column(String(8), nullable=False)
    note = Column(Text, nullable=True)
    cadre_id = Column(ForeignKey("cadres.id"), nullable=True)
    actor = Column(String(64), nullable=True)  # 申报人 / a cadre's name / 系统
    created_at = Column(DateTime, nullable=False, default=utcnow)

    case = relationship(HardshipCase, back_populates="events")
    cadre = relationship(Cadre)


class CaseAssignment(Base):
    """A cadre whose jurisdiction covers the case's place, and so works the case."""

    __tablename__ = "case_assignments"
    __table_args__ = (UniqueConstraint("case_id", "cadre_id"),)

    id = Column(Integer, primary_key=True)
    case_id = Column(ForeignKey("cases.id"), nullable=False, index=True)
    cadre_id = Column(ForeignKey("cadres.id"), nullable=False, index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    case = relationship(HardshipCase, back_populates="assignments")
    cadre = relationship(Cadre)


class Notification(Base):
    """A message for a chat, kept until a front end delivers it (an outbox): to a cadre about a new case
    (`cadre_id` set), or to the declarant about the outcome of their case (`cadre_id` empty)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "channel", "sent_at"),)

    id = Column(Integer, primary_key=True)
    cadre_id = Column(ForeignKey("cadres.id"), nullable=True, index=True)
    case_id = Column(ForeignKey("cases.id"), nullable=True, index=True)
    channel = Column(String(32), nullable=False)
    channel_user_id = Column(String(64), nullable=False)
    text = Column(Text, nullable=False)  # masked: no full 身份证号 or phone number
    buttons = Column(Text, nullable=True)  # JSON [{"title", "payload"}], offered with the text
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime, nullable=True)
    # Delivery: a failed attempt is counted and retried later; one that can never succeed (the user blocked the
    # bot) or has failed too often is marked failed, with the reason. Nothing is dropped without a record.
    attempts = Column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at = Column(DateTime, nullable=True)
    failed_at = Column(DateTime, nullable=True)
    last_error = Column(String(200), nullable=True)


class Enrollment(Base):
    """An insurance enrollment (淄博齐惠保) for one person and one policy year.

    `person_id` is set when the 身份证号 and the name match a person of the case database (then `verified`);
    otherwise the enrollment waits for a cadre to check it. `channel`/`channel_user_id` say which chat made it,
    so that chat can ask about it later.
    """

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("id_number_hash", "product", "policy_year"),
        Index("ix_enrollments_chat", "channel", "channel_user_id"),
    )

    id = Column(Integer, primary_key=True)
    reference = Column(String(20), nullable=False, unique=True)  # QH2026-7K3M9P
    product = Column(String(32), nullable=False)
    policy_year = Column(Integer, nullable=False)
    person_id = Column(ForeignKey("persons.id"), nullable=True, index=True)
    name = Column(String(64), nullable=False)
    id_number = Column(EncryptedString(200), nullable=False)
    id_number_hash = Column(String(64), nullable=False)
    phone = Column(String(11), nullable=False)
    premium = Column(Numeric(8, 2), nullable=False)
    verified = Column(Boolean, nullable=False, default=False)
    channel = Column(String(32), nullable=True)
    channel_user_id = Column(String(64), nullable=True)
    paid_at = Column(DateTime, nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    person = relationship(Person)


HELP_MEASURES = (
    "临时救助",
    "公益性岗位",
    "医疗救助",
    "产业帮扶",
    "教育资助",
    "就业帮扶",
    "危房改造",
    "兜底保障",
    "其他",
)


class HelpMeasure(Base):
    """A help measure (帮扶措施) a cadre recorded for a case: what, how much where there is an amount, who, when."""

    __tablename__ = "help_measures"
    __table_args__ = (
        CheckConstraint(_in("kind", HELP_MEASURES), name="kind"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount"),
    )

    id = Column(Integer, primary_key=True)
    case_id = Column(ForeignKey("cases.id"), nullable=False, index=True)
    kind = Column(String(8), nullable=False)
    amount = Column(Numeric(12, 2), nullable=True)
    note = Column(Text, nullable=True)
    cadre_id = Column(ForeignKey("cadres.id"), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    case = relationship(HardshipCase)
    cadre = relationship(Cadre)


class HouseholdChange(Base):
    """A change a cadre made to a household (its ABCD class): the old and the new value, who, when and why."""

    __tablename__ = "household_changes"

    id = Column(Integer, primary_key=True)
    household_id = Column(ForeignKey("households.id"), nullable=False, index=True)
    field = Column(String(32), nullable=False)
    old_value = Column(String(32), nullable=True)
    new_value = Column(String(32), nullable=True)
    note = Column(Text, nullable=True)
    cadre_id = Column(ForeignKey("cadres.id"), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    household = relationship(Household)
    cadre = relationship(Cadre)


class AuditEntry(Base):
    """Who looked up personal data or changed a record, what, when and which record. Never the data itself."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "created_at"),)

    id = Column(Integer, primary_key=True)
    cadre_id = Column(ForeignKey("cadres.id"), nullable=True, index=True)
    actor = Column(String(100), nullable=False)  # "干部 张敏 (#3)", "cli", "telegram:12345"
    action = Column(String(32), nullable=False)  # case.view, case.move, household.search, export, ...
    record_type = Column(String(32), nullable=True)  # case / household / region
    record_ref = Column(String(100), nullable=True)  # SB-2026-000123, a 户编号, a region path (never an ID number)
    detail = Column(String(300), nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class CadreInvite(Base):
    """A one-time code with which a new cadre binds their chat account to a jurisdiction.

    An administrator cadre (in the chat) or an operator (`helpline cadre invite`) creates it; only the SHA-256 of
    the code is stored, so the table alone does not let anyone register. It expires and can be used once.
    """

    __tablename__ = "cadre_invites"

    id = Column(Integer, primary_key=True)
    code_hash = Column(String(64), nullable=False, unique=True)
    name = Column(String(64), nullable=False)
    region_id = Column(ForeignKey("regions.id"), nullable=False)
    is_admin = Column(Boolean, nullable=False, default=False)
    created_by_cadre_id = Column(ForeignKey("cadres.id"), nullable=True)  # None: created at the command line
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    used_at = Column(DateTime, nullable=True)
    cadre_id = Column(ForeignKey("cadres.id"), nullable=True)  # the cadre registered with it

    region = relationship(Region)


class TelegramUpdate(Base):
    """An update the Telegram front end received: the inbox that makes delivery at-least-once and handling once.

    The row is written before the update is handled and marked when its reply has gone out; a repeated
    `update_id` is then ignored, and rows left unhandled (Rasa was down, the bot stopped) are replayed at start-up.
    `body` (the update's JSON, so the user's words) is cleared once handled.
    """

    __tablename__ = "telegram_updates"

    update_id = Column(BigInteger, primary_key=True, autoincrement=False)
    chat_id = Column(BigInteger, nullable=True)
    body = Column(Text, nullable=True)
    received_at = Column(DateTime, nullable=False, default=utcnow)
    handled_at = Column(DateTime, nullable=True, index=True)


class TelegramButton(Base):
    """A button payload too long for Telegram's 64-byte callback_data, kept under a short key."""

    __tablename__ = "telegram_buttons"

    key = Column(String(32), primary_key=True)
    payload = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


def _hash_id_number(target: Any, value: str | None, _old: Any, _initiator: Any) -> None:
    """Whenever a 身份证号 is set (in the constructor or later), its keyed hash is set with it."""
    target.id_number_hash = None if value is None else id_number_digest(value)


# Every table holding a 身份证号: the hash column is what lookups and unique constraints use.
ID_NUMBER_MODELS: tuple[type[Base], ...] = (Person, HardshipCase, Enrollment)
for _model in ID_NUMBER_MODELS:
    event.listen(_model.id_number, "set", _hash_id_number)
