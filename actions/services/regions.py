"""The administrative tree 市/区县/乡镇/村 and jurisdictions over it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.db.models import REGION_LEVELS, Region

SEPARATOR = "/"


class RegionError(ValueError):
    """A region path that is malformed or names no known region."""


def split_path(path: str) -> list[str]:
    """'淄博市/淄川区/太河镇' → ['淄博市', '淄川区', '太河镇'] (1 to 4 levels)."""
    parts = [p.strip() for p in path.replace("／", SEPARATOR).split(SEPARATOR) if p.strip()]
    if not 1 <= len(parts) <= len(REGION_LEVELS):
        raise RegionError(f"地区路径应为 1 到 4 级(市/区县/乡镇/村),收到 {len(parts)} 级")
    if any(len(p) > 64 for p in parts):
        raise RegionError("地区名称过长")
    return parts


def join_path(parts: list[str]) -> str:
    return SEPARATOR.join(parts)


def find_region(session: Session, path: str) -> Region | None:
    return session.execute(select(Region).where(Region.path == join_path(split_path(path)))).scalar_one_or_none()


def get_or_create_region(session: Session, parts: list[str]) -> Region:
    """The region at the end of the path, creating the missing levels on the way."""
    parent: Region | None = None
    for depth, name in enumerate(parts):
        path = join_path(parts[: depth + 1])
        region = session.execute(select(Region).where(Region.path == path)).scalar_one_or_none()
        if region is None:
            region = Region(name=name, level=REGION_LEVELS[depth], parent=parent, path=path)
            session.add(region)
            session.flush()
        parent = region
    assert parent is not None
    return parent


def covers(jurisdiction: Region, region: Region) -> bool:
    """Whether a jurisdiction contains a region (itself included)."""
    return region.path == jurisdiction.path or region.path.startswith(jurisdiction.path + SEPARATOR)


_SUFFIXES = ("街道办事处", "街道", "社区", "市", "区", "县", "镇", "乡", "村")


def _stem(name: str) -> str:
    """'太河镇' → '太河': people often leave the level word out."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def resolve_address(session: Session, text: str) -> str | None:
    """The deepest known region a free-text address names: '太河镇东峪村' → '淄博市/淄川区/太河镇/东峪村'.

    A region counts when its name (or its name without 镇/村…) is in the text. Among the regions found, those with
    the most of their own ancestors also named win; a tie between different places resolves to what they share
    (their common ancestor), or to nothing.
    """
    compact = "".join(text.split())
    if not compact:
        return None
    named = [
        region
        for region in session.execute(select(Region)).scalars()
        if region.name in compact or _stem(region.name) in compact
    ]
    if not named:
        return None
    named_paths = {r.path for r in named}

    def support(region: Region) -> tuple[int, int]:
        parts = split_path(region.path)
        ancestors = sum(join_path(parts[: n + 1]) in named_paths for n in range(len(parts)))
        return ancestors, len(parts)

    best = max(support(r) for r in named)
    winners = [r.path for r in named if support(r) == best]
    if len(winners) == 1:
        return winners[0]
    common: list[str] = []
    for level in zip(*(split_path(p) for p in winners), strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return join_path(common) if common else None
