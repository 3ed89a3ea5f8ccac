from __future__ import annotations

from actions.services.answers import SECTION_ORDER, split_message


def test_short_text_is_one_message() -> None:
    assert split_message("一行\n两行", limit=100) == ["一行\n两行"]


def test_long_text_is_cut_at_line_breaks_within_the_limit() -> None:
    text = "\n".join(f"第{i}行" + "字" * 30 for i in range(200))
    chunks = split_message(text, limit=500)
    assert all(len(c) <= 500 for c in chunks)
    assert "\n".join(chunks) == text
    assert all(c.startswith("第") for c in chunks)


def test_a_single_overlong_line_is_cut_hard() -> None:
    chunks = split_message("长" * 9000, limit=4096)
    assert [len(c) for c in chunks] == [4096, 4096, 808]


def test_the_asked_aspect_comes_first() -> None:
    assert SECTION_ORDER["amount"][0] == "benefits"
    assert SECTION_ORDER["eligibility"][0] == "eligibility"
    assert SECTION_ORDER["apply"][0] == "apply"
    assert SECTION_ORDER["contact"][0] == "contact"
    assert SECTION_ORDER["what"][0] == "summary"
