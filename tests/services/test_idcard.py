from __future__ import annotations

import datetime as dt

import pytest

from actions.services.idcard import (
    IdProblem,
    check_digit,
    mask_id_number,
    mask_phone,
    normalize_phone,
    validate_id_number,
)

GB_EXAMPLE = "11010519491231002X"


def with_check_digit(first17: str) -> str:
    return first17 + check_digit(first17)


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        ("11010519491231002", "X"),
        ("44052418800101001", "4"),
        ("37039919800101001", "5"),
    ],
)
def test_check_digit_follows_gb_11643(first17: str, expected: str) -> None:
    assert check_digit(first17) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002X",
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５１９４９１２３１００２ｘ",
        "110105 1949 1231 002X",
        "110105-19491231-002X",
        "110105_19491231_002x",
        "  11010519491231002X\t",
        "110105\u300019491231002X",
    ],
    ids=[
        "plain",
        "lowercase-x",
        "full-width",
        "full-width-lowercase-x",
        "spaces",
        "hyphens",
        "underscores",
        "surrounding-blanks",
        "ideographic-space",
    ],
)
def test_valid_18_digit_number_is_normalised(raw: str) -> None:
    check = validate_id_number(raw)

    assert check.ok
    assert check.problem is None
    assert check.normalized == GB_EXAMPLE
    assert check.birth_date == dt.date(1949, 12, 31)


def test_valid_number_with_digit_check_character() -> None:
    check = validate_id_number("370399198001010015")

    assert check.normalized == "370399198001010015"
    assert check.birth_date == dt.date(1980, 1, 1)


@pytest.mark.parametrize(
    ("raw", "normalized", "born"),
    [
        ("110105491231002", "11010519491231002X", dt.date(1949, 12, 31)),
        ("370399800101001", "370399198001010015", dt.date(1980, 1, 1)),
        ("３７０３９９ ８００１０１ ００１", "370399198001010015", dt.date(1980, 1, 1)),
    ],
)
def test_15_digit_number_becomes_18_digits_born_in_the_1900s(raw: str, normalized: str, born: dt.date) -> None:
    check = validate_id_number(raw)

    assert check.ok
    assert check.normalized == normalized
    assert check.birth_date == born


def test_future_birth_date_is_refused() -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    raw = with_check_digit(f"110105{tomorrow:%Y%m%d}002")

    assert validate_id_number(raw).problem is IdProblem.BIRTH_DATE


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (with_check_digit("11010519490230002"), IdProblem.BIRTH_DATE),
        (with_check_digit("11010519491301002"), IdProblem.BIRTH_DATE),
        (with_check_digit("11010519490000002"), IdProblem.BIRTH_DATE),
        (with_check_digit("11010518991231002"), IdProblem.BIRTH_DATE),
        (with_check_digit("11010520991231002"), IdProblem.BIRTH_DATE),
        ("110105490230002", IdProblem.BIRTH_DATE),
        ("110105194912310021", IdProblem.CHECK_DIGIT),
        ("11010519491231002Y", IdProblem.CHARACTERS),
        ("1101051949123100", IdProblem.LENGTH),
        ("11010519491231002", IdProblem.LENGTH),
        ("11010519491231002X0", IdProblem.LENGTH),
        ("1101054912310", IdProblem.LENGTH),
        ("11010519491231002A", IdProblem.CHARACTERS),
        ("1101051949123100X2", IdProblem.CHARACTERS),
        ("11010549123100X", IdProblem.CHARACTERS),
        ("ABCDEFGHIJKLMNOPQR", IdProblem.CHARACTERS),
        ("", IdProblem.EMPTY),
        (None, IdProblem.EMPTY),
        ("   ", IdProblem.EMPTY),
        (" - ", IdProblem.EMPTY),
        (with_check_digit("01010519491231002"), IdProblem.REGION),
        ("010105491231002", IdProblem.REGION),
    ],
    ids=[
        "february-30",
        "month-13",
        "month-00",
        "before-1900",
        "year-2099",
        "15-digit-february-30",
        "check-digit",
        "last-character-y",
        "16-digits",
        "17-digits",
        "19-characters",
        "13-digits",
        "letter-at-the-end",
        "x-not-last",
        "x-in-15-digits",
        "all-letters",
        "empty",
        "none",
        "blank",
        "separators-only",
        "region-starts-with-0",
        "15-digit-region-starts-with-0",
    ],
)
def test_invalid_number_is_refused_with_its_problem(raw: str | None, problem: IdProblem) -> None:
    check = validate_id_number(raw)

    assert not check.ok
    assert check.problem is problem
    assert check.normalized is None
    assert check.birth_date is None


@pytest.mark.parametrize(
    "raw",
    ["11010519491231①002", "110105194912310²2X", "110105491231①02"],
    ids=["circled-digit-18", "superscript-digit-18", "circled-digit-15"],
)
def test_digit_like_symbols_are_refused_as_characters(raw: str) -> None:
    check = validate_id_number(raw)

    assert check.problem is IdProblem.CHARACTERS
    assert check.normalized is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("0086-138-0013-8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        (" 199 1234 5678 ", "19912345678"),
        ("１３８００１３８０００", "13800138000"),
    ],
)
def test_mobile_number_is_normalised_to_11_digits(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "138001380001",
        "1380013800",
        "0533-1234567",
        "053312345678",
        "12800138000",
        "10086123456",
        "+86 0533 1234567",
        "1380013800a",
        "",
        None,
    ],
    ids=[
        "12-digits",
        "10-digits",
        "landline-with-area-code",
        "landline-without-hyphen",
        "starts-with-12",
        "starts-with-10",
        "plus-86-landline",
        "letter",
        "empty",
        "none",
    ],
)
def test_non_mobile_number_is_refused(raw: str | None) -> None:
    assert normalize_phone(raw) is None


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [
        ("370403198001011234", "3704**********1234"),
        ("11010519491231002X", "1101**********002X"),
        ("12345678", "********"),
        ("", ""),
    ],
)
def test_mask_id_number_keeps_first_and_last_four(id_number: str, masked: str) -> None:
    assert mask_id_number(id_number) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("123456", "******"),
    ],
)
def test_mask_phone_keeps_first_three_and_last_four(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
