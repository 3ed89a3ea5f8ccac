"""Registering cadres with one-time invitation codes.

An administrator cadre asks the chat for a code for a named person and a place of their own jurisdiction (or an
operator runs `helpline cadre invite`); the new cadre sends the code from their own chat account, and that account
becomes a cadre of the place. Nobody has to know anybody's chat id, and a message that merely claims a role gets
nothing: the code is the proof.

- A code is 8 characters from an alphabet without look-alikes (no 0/O, 1/I), shown as K7Q2-M9XD; lower case,
  spaces and dashes are forgiven when it is typed back.
- Only its SHA-256 is stored. It expires after INVITE_HOURS and works once.
- A chat administrator invites ordinary cadres of their own jurisdiction only; administrator invitations come from
  the command line.
- A chat user who sends too many wrong codes is made to wait (MAX_FAILED_PER_HOUR, counted in the audit log).
- Creation, use and failed attempts are audited; the code itself never is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from actions.db.models import AuditEntry, Cadre, CadreInvite, ChatIdentity, Region, utcnow
from actions.services.workspace import Officer, WorkspaceError, acting_cadre, audit

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
INVITE_HOURS = 72
MAX_FAILED_PER_HOUR = 5
CODE_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9])([A-HJ-NP-Za-hj-np-z2-9]{4})[\s-]?([A-HJ-NP-Za-hj-np-z2-9]{4})(?![A-Za-z0-9])"
)
NAME = re.compile(r"[\u4e00-\u9fff·•A-Za-z]{2,20}")


class InviteError(ValueError):
    """A code that cannot be used, with the reason in Chinese for the person who typed it."""


@dataclass(frozen=True)
class Invitation:
    code: str  # shown once, to whoever created it
    name: str
    place: str  # region path
    expires_at: dt.datetime  # naive UTC


@dataclass(frozen=True)
class Registered:
    name: str
    jurisdiction: str
    is_admin: bool


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def normalise_code(text: str) -> str | None:
    """The code in a message (K7Q2-M9XD, k7q2 m9xd, K7Q2M9XD), upper case without the dash; None when there is none.

    Words of Latin letters such as "SB" or "xlsx" are not codes: a code has at least one digit and one letter.
    """
    for found in CODE_IN_TEXT.finditer(text):
        code = (found.group(1) + found.group(2)).upper()
        if any(c.isdigit() for c in code) and any(c.isalpha() for c in code):
            return code
    return None


def shown(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def clean_name(name: str) -> str:
    name = "".join(str(name).split())
    if not NAME.fullmatch(name):
        raise WorkspaceError("姓名请写 2 到 20 个字,不带数字和符号,比如“张丽”。")
    return name


def new_code() -> str:
    """A random code with a letter and a digit in it, which is how normalise_code tells codes from words."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if any(c.isdigit() for c in code) and any(c.isalpha() for c in code):
            return code


def create_invite(
    session: Session, officer: Officer, name: str, region: Region, admin: bool = False, now: dt.datetime | None = None
) -> Invitation:
    """A code for `name` as a cadre of `region`, which must lie in the creator's jurisdiction."""
    if officer.cadre_id is not None:
        acting_cadre(officer)
        if not officer.is_admin:
            raise WorkspaceError("只有管理员可以登记新干部。请找乡镇或区县的管理员。")
        if admin:
            raise WorkspaceError("管理员账号只能在服务器上用 helpline cadre invite --admin 登记。")
    if not officer.covers(region.path):
        raise WorkspaceError(f"{region.path} 不在您的辖区({officer.jurisdiction})里。")
    name = clean_name(name)
    now = now or utcnow()
    code = new_code()
    invite = CadreInvite(
        code_hash=code_hash(code),
        name=name,
        region_id=region.id,
        is_admin=admin,
        created_by_cadre_id=officer.cadre_id,
        created_at=now,
        expires_at=now + dt.timedelta(hours=INVITE_HOURS),
    )
    session.add(invite)
    session.flush()
    audit(session, officer, "cadre.invite", "region", region.path, f"邀请 {name}{'(管理员)' if admin else ''}")
    return Invitation(code=shown(code), name=name, place=region.path, expires_at=invite.expires_at)


def _failed_recently(session: Session, actor: str, now: dt.datetime) -> int:
    return int(
        session.execute(
            select(func.count(AuditEntry.id)).where(
                AuditEntry.actor == actor,
                AuditEntry.action == "cadre.invite_failed",
                AuditEntry.created_at >= now - dt.timedelta(hours=1),
            )
        ).scalar_one()
    )


def redeem_invite(
    session: Session, channel: str, channel_user_id: str, text: str, now: dt.datetime | None = None
) -> Registered:
    """Bind the chat account to a new cadre with the code found in `text`; InviteError says why not.

    A failed attempt is written to the audit log even though the caller rolls nothing back: the error is raised
    after the entry is flushed, and the caller commits it (the chat action catches InviteError inside the
    transaction).
    """
    now = now or utcnow()
    actor = f"{channel}:{channel_user_id}"[:100]
    if _failed_recently(session, actor, now) >= MAX_FAILED_PER_HOUR:
        raise InviteError("错误的邀请码试得太多了,请一小时后再试,或找管理员确认邀请码。")
    code = normalise_code(text)

    def fail(reason: str, detail: str) -> InviteError:
        audit(session, actor, "cadre.invite_failed", detail=detail)
        session.flush()
        return InviteError(reason)

    if code is None:
        raise InviteError("没看到邀请码。邀请码是 8 位字母和数字,像 K7Q2-M9XD,请照着管理员给的发过来。")
    invite = session.execute(
        select(CadreInvite).where(CadreInvite.code_hash == code_hash(code)).options(joinedload(CadreInvite.region))
    ).scalar_one_or_none()
    if invite is None:
        raise fail("这个邀请码不对。请核对后再发一次,或找管理员重新生成。", "邀请码不存在")
    if invite.used_at is not None:
        raise fail("这个邀请码已经用过了,每个码只能用一次。请找管理员重新生成。", "邀请码已用过")
    if invite.expires_at <= now:
        raise fail(f"这个邀请码已经过期({INVITE_HOURS} 小时内有效)。请找管理员重新生成。", "邀请码已过期")
    identity = session.execute(
        select(ChatIdentity)
        .where(ChatIdentity.channel == channel, ChatIdentity.channel_user_id == str(channel_user_id))
        .with_for_update()
    ).scalar_one_or_none()
    if identity is not None and identity.cadre_id is not None:
        raise InviteError("这个聊天账号已经登记为干部了。要换辖区,请找管理员。")
    cadre = Cadre(name=invite.name, region_id=invite.region_id, is_admin=invite.is_admin, created_at=now)
    session.add(cadre)
    session.flush()
    if identity is None:
        session.add(ChatIdentity(channel=channel, channel_user_id=str(channel_user_id), cadre_id=cadre.id))
    else:  # a villager's account (linked to their household) now also acts as a cadre
        identity.cadre_id = cadre.id
    invite.used_at = now
    invite.cadre_id = cadre.id
    session.flush()
    audit(session, Officer.of(cadre), "cadre.register", "region", invite.region.path, f"用邀请码登记 ({actor})")
    return Registered(name=cadre.name, jurisdiction=invite.region.path, is_admin=bool(cadre.is_admin))
