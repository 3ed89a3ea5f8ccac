"""The one Jinja2 environment; every dynamic reply is rendered from a template in actions/templates."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from actions.services.idcard import mask_id_number, mask_phone


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("actions", "templates"),
        undefined=StrictUndefined,
        autoescape=True,  # replies are Telegram HTML; user content must be escaped
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["mask_id"] = mask_id_number
    env.filters["mask_phone"] = mask_phone
    env.filters["place"] = place
    return env


def place(path: str | None) -> str:
    """淄博市/临淄区 → 淄博市临淄区, as people write a place."""
    return (path or "").replace("/", "")


def render(env: Environment, name: str, **context: Any) -> str:
    return env.get_template(name).render(**context).strip()
