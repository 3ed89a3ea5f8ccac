"""The one Jinja2 environment; every dynamic reply is rendered from a template in actions/templates."""

from __future__ import annotations

from decimal import Decimal
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
    env.filters["yuan"] = yuan
    env.filters["wan"] = wan
    env.filters["percent"] = percent
    return env


def place(path: str | None) -> str:
    """淄博市/临淄区 → 淄博市临淄区, as people write a place."""
    return (path or "").replace("/", "")


def yuan(value: Decimal | int) -> str:
    """24000 and 24000.5 as people write sums of money: no trailing .00, no thousands separator."""
    amount = Decimal(value)
    if amount == amount.to_integral_value():
        return str(amount.quantize(Decimal(1)))
    return f"{amount.quantize(Decimal('0.01')):f}".rstrip("0").rstrip(".")


def wan(value: Decimal | int) -> str:
    """20000 → 2万, 1000000 → 100万; sums that are not whole 万 stay in 元 figures."""
    amount = Decimal(value)
    if amount >= 10000 and amount % 10000 == 0:
        return f"{amount // 10000}万"
    return yuan(amount)


def percent(value: Decimal | float) -> str:
    """0.8 → 80%."""
    return f"{(Decimal(str(value)) * 100).normalize():f}%"


def render(env: Environment, name: str, /, **context: Any) -> str:
    return env.get_template(name).render(**context).strip()
