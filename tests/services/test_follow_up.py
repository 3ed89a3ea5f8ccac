from __future__ import annotations

import pytest

from actions.services.follow_up import is_follow_up, remainder


def test_remainder_cuts_spans_punctuation_and_space() -> None:
    assert remainder("那 咋申请呢?", [(2, 4)]) == "那请呢"


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("那咋申请呢", [(1, 3)]),
        ("那一年给多少钱", [(1, 4), (4, 7)]),
        ("俺家够条件不", [(3, 5)]),
        ("那归哪个部门管", [(2, 6)]),
        ("淄博有没有", [(0, 2)]),
        ("那钱啥时候发", []),
    ],
)
def test_questions_that_name_nothing_are_follow_ups(text: str, spans: list[tuple[int, int]]) -> None:
    assert is_follow_up(text, spans)


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("城乡居民养老保险咋交", [(8, 10)]),
        ("宅基地咋申请", [(3, 6)]),
        ("高龄补贴多少岁能领", [(4, 6), (7, 9)]),
        ("新农合异地报销咋弄", [(7, 9)]),
        ("大病保险能报多少", [(4, 6), (6, 8)]),
    ],
)
def test_questions_that_name_another_programme_are_not(text: str, spans: list[tuple[int, int]]) -> None:
    assert not is_follow_up(text, spans)
