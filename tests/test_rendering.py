from __future__ import annotations

from decimal import Decimal

import pytest
from jinja2 import UndefinedError

from actions.rendering import make_environment, render
from actions.services.identities import Caller


@pytest.fixture(scope="module")
def env():  # type: ignore[no-untyped-def]
    return make_environment()


def test_missing_variable_is_an_error_not_a_blank(env) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UndefinedError):
        render(env, "greet.j2")


def test_user_content_is_escaped_for_telegram_html(env) -> None:  # type: ignore[no-untyped-def]
    text = render(env, "greet.j2", caller=Caller(person_name="<i>张</i>&", village="淄博市/淄川区/太河镇/东峪村"))
    assert text.startswith("&lt;i&gt;张&lt;/i&gt;&amp;您好")


def test_masks_are_available_as_filters(env) -> None:  # type: ignore[no-untyped-def]
    template = env.from_string("{{ id | mask_id }} {{ phone | mask_phone }}")
    assert template.render(id="37039919580721001X", phone="13812345678") == "3703**********001X 138****5678"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("check_digit", "校验码"), ("birth_date", "出生日期"), ("length", "18 位"), ("unknown-code", "不正确")],
)
def test_id_problem_descriptions(env, code: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    template = env.from_string('{% import "id_problem.j2" as p %}{{ p.describe(code) }}')
    assert expected in template.render(code=code)


def test_every_template_compiles(env) -> None:  # type: ignore[no-untyped-def]
    for name in env.list_templates():
        env.get_template(name)


@pytest.mark.parametrize(
    ("value", "yuan", "wan"),
    [
        (Decimal("24000.00"), "24000", "24000"),
        (Decimal("20000"), "20000", "2万"),
        (Decimal("1000000"), "1000000", "100万"),
        (Decimal("0.80"), "0.8", "0.8"),
        (Decimal("15000.5"), "15000.5", "15000.5"),
        (99, "99", "99"),
    ],
)
def test_money_filters(env, value: Decimal | int, yuan: str, wan: str) -> None:  # type: ignore[no-untyped-def]
    assert env.from_string("{{ v | yuan }}|{{ v | wan }}").render(v=value) == f"{yuan}|{wan}"


def test_percent_filter(env) -> None:  # type: ignore[no-untyped-def]
    assert env.from_string("{{ 0.8 | percent }} {{ r | percent }}").render(r=Decimal("0.85")) == "80% 85%"


def test_names_in_enrollment_replies_are_escaped(env) -> None:  # type: ignore[no-untyped-def]
    text = render(env, "enroll_confirm.j2", person="<b>王</b>", id_number="370399195007140044",
                  phone="13300002486", year=2026, standing="ordinary", premium=Decimal(99))  # fmt: skip
    assert "&lt;b&gt;王&lt;/b&gt;" in text and "<b>99 元</b>" in text
