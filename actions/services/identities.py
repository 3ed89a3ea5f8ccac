"""Who is writing: chat identities, cadres and the people a chat user is linked to."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from actions.db.models import Cadre, ChatIdentity, Person, Region
from actions.services.regions import get_or_create_region, split_path


class CadreError(ValueError):
    """A cadre registration that cannot be carried out."""


@dataclass(frozen=True)
class Caller:
    """What the bot knows of a chat user."""

    cadre_name: str | None = None
    jurisdiction: str | None = None
    person_name: str | None = None
    village: str | None = None

    @property
    def is_cadre(self) -> bool:
        return self.cadre_name is not None


def find_caller(session: Session, channel: str, channel_user_id: str) -> Caller:
    identity = session.execute(
        select(ChatIdentity)
        .where(ChatIdentity.channel == channel, ChatIdentity.channel_user_id == channel_user_id)
        .options(joinedload(ChatIdentity.cadre).joinedload(Cadre.region), joinedload(ChatIdentity.person))
    ).scalar_one_or_none()
    if identity is None:
        return Caller()
    if identity.cadre is not None:
        return Caller(cadre_name=identity.cadre.name, jurisdiction=identity.cadre.region.path)
    person: Person = identity.person
    return Caller(person_name=person.name, village=person.household.region.path)


def cadres_covering(session: Session, region_path: str) -> list[Cadre]:
    """Cadres whose jurisdiction contains the region, the most local first."""
    prefixes = ["/".join(split_path(region_path)[: n + 1]) for n in range(len(split_path(region_path)))]
    return list(
        session.execute(
            select(Cadre)
            .join(Region, Cadre.region_id == Region.id)
            .where(Region.path.in_(prefixes))
            .order_by(func.length(Region.path).desc(), Cadre.id)
            .options(joinedload(Cadre.region))
        ).scalars()
    )


def add_cadre(
    session: Session,
    *,
    name: str,
    region_path: str,
    chat_id: str,
    channel: str = "telegram",
    admin: bool = False,
    create_region: bool = False,
) -> tuple[Cadre, bool]:
    """Register a cadre and bind the chat user to it; returns (cadre, created)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise CadreError("姓名不能为空,且不超过 64 个字")
    chat_id = chat_id.strip()
    if not chat_id or len(chat_id) > 64:
        raise CadreError("chat id 不能为空,且不超过 64 个字符")
    parts = split_path(region_path)
    path = "/".join(parts)
    region = session.execute(select(Region).where(Region.path == path)).scalar_one_or_none()
    if region is None:
        if not create_region:
            raise CadreError(f"地区 {path} 不在数据库中;检查拼写,或加 --create-region 新建")
        region = get_or_create_region(session, parts)
    existing = session.execute(
        select(ChatIdentity)
        .where(ChatIdentity.channel == channel, ChatIdentity.channel_user_id == chat_id)
        .options(joinedload(ChatIdentity.cadre).joinedload(Cadre.region))
    ).scalar_one_or_none()
    if existing is not None:
        cadre = existing.cadre
        if cadre is not None and cadre.name == name and cadre.region_id == region.id and cadre.is_admin == admin:
            return cadre, False
        raise CadreError(f"chat id {chat_id} 已经绑定了别的用户(或同一干部的姓名、辖区、管理员身份不同),不能重复绑定")
    cadre = Cadre(name=name, region=region, is_admin=admin)
    session.add(cadre)
    session.add(ChatIdentity(channel=channel, channel_user_id=chat_id, cadre=cadre))
    session.flush()
    return cadre, True
