"""Sums of money as villagers write them, and numbers that are not sums of money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nlu.amounts import find_amounts, parse_amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5万", 50000),
        ("五万", 50000),
        ("1万5", 15000),
        ("一万五千", 15000),
        ("一万五", 15000),
        ("15000", 15000),
        ("1.5万", 15000),
        ("两万", 20000),
        ("3千", 3000),
        ("两千五", 2500),
        ("3万2", 32000),
        ("一万零五百", 10500),
        ("十二万", 120000),
        ("一点五万", 15000),
        ("6w", 60000),
        ("5k", 5000),
        ("15,000元", 15000),
        ("３万", 30000),  # full-width digits
        ("伍仟", 5000),
        ("兩萬", 20000),  # traditional characters
        ("三十块", 30),
        ("20000.50元", Decimal("20000.5")),
    ],
)
def test_every_written_form_reads_as_its_value(text: str, expected: int | Decimal) -> None:
    assert parse_amount(text) == Decimal(expected)
    assert parse_amount(f"医保报完自己还要出{text},齐惠保能报多少?") == Decimal(expected)


@pytest.mark.parametrize(
    "text",
    [
        "俺家两个娃上学",
        "住了3天院",
        "2026年的齐惠保",
        "百分之八十",
        "报80%",
        "千万别弄错",
        "万一住院了能报多少",
        "我手机13912345678",
        "身份证370399198001010011",
        "编号QH2026-7K3M9P",
        "三十多岁",
        "一下",
        "第2次",
    ],
)
def test_numbers_that_are_not_money_are_not_amounts(text: str) -> None:
    assert find_amounts(text) == []
    assert parse_amount(text) is None


@pytest.mark.parametrize("text", ["花了好几万", "五六万吧", "几千块"])
def test_a_sum_that_cannot_be_read_is_found_without_a_value(text: str) -> None:
    (amount,) = find_amounts(text)
    assert amount.value is None
    assert parse_amount(text) is None


def test_approximate_sums_are_marked() -> None:
    (amount,) = find_amounts("自己还掏了四万多块钱")
    assert amount.value == Decimal(40000)
    assert amount.approximate
    assert not find_amounts("自己掏了四万块钱")[0].approximate


def test_positions_refer_to_the_original_text() -> None:
    text = "住院花了１０万,医保报了五万"
    assert [(a.text, a.value) for a in find_amounts(text)] == [("１０万", 100000), ("五万", 50000)]
    for a in find_amounts(text):
        assert text[a.start : a.end] == a.text


def test_several_sums_have_no_single_value() -> None:
    assert parse_amount("花了10万,医保报了5万") is None


def test_hostile_input_does_not_raise() -> None:
    for text in ["", "💰💰💰", "9" * 10_000, "万" * 5000, "一" * 3000 + "万", "' OR 1=1 --", "1.2.3.4万"]:
        find_amounts(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("赔了十来万", 100000), ("花了十多万块", 100000), ("二十来万", 200000), ("20多万", 200000), ("两百多块", 200)],
)
def test_a_number_before_an_approximation_and_a_scale_counts_in_that_scale(text: str, expected: int) -> None:
    """十多万 is about 十万, not 十 元."""
    (amount,) = find_amounts(text)
    assert amount.approximate
    assert amount.value == Decimal(expected)


def test_a_word_after_a_space_does_not_make_a_sum_a_count() -> None:
    (amount,) = find_amounts("住院花了六万多 家里没进项了")
    assert amount.value == Decimal(60000)
    assert not find_amounts("俺家 3 口人")
