"""身份证号 (GB 11643-1999) and mobile number validation and masking."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import Enum

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_FULLWIDTH = str.maketrans("０１２３４５６７８９ＸｘＸ", "0123456789XXX")
_SEPARATORS = re.compile(r"[\s\-_]")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_DIGITS15 = re.compile(r"[0-9]{15}")
_DIGITS18 = re.compile(r"[0-9]{17}[0-9X]")


class IdProblem(str, Enum):
    """Why a 身份证号 was refused; the text for each lives in the id_problem template."""

    EMPTY = "empty"
    LENGTH = "length"
    CHARACTERS = "characters"
    REGION = "region"
    BIRTH_DATE = "birth_date"
    CHECK_DIGIT = "check_digit"


@dataclass(frozen=True)
class IdCheck:
    """The outcome of validating one 身份证号."""

    normalized: str | None
    problem: IdProblem | None = None
    birth_date: dt.date | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_digit(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=False))
    return CHECK_CHARS[total % 11]


def _birth_date(text: str) -> dt.date | None:
    try:
        born = dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None
    if born.year < 1900 or born > dt.date.today():
        return None
    return born


def validate_id_number(raw: str | None) -> IdCheck:
    """Validate an 18- or 15-digit 身份证号; a valid one is returned as 18 upper-case characters."""
    text = _SEPARATORS.sub("", (raw or "").translate(_FULLWIDTH)).upper()
    if not text:
        return IdCheck(None, IdProblem.EMPTY)
    if len(text) not in (15, 18):
        return IdCheck(None, IdProblem.LENGTH)
    if len(text) == 15:
        if not _DIGITS15.fullmatch(text):
            return IdCheck(None, IdProblem.CHARACTERS)
        text17 = text[:6] + "19" + text[6:]
        text = text17 + check_digit(text17)
        from_old = True
    else:
        if not _DIGITS18.fullmatch(text):
            return IdCheck(None, IdProblem.CHARACTERS)
        from_old = False
    if text[0] in "09" or text[:2] == "00":
        return IdCheck(None, IdProblem.REGION)
    born = _birth_date(text[6:14])
    if born is None:
        return IdCheck(None, IdProblem.BIRTH_DATE)
    if not from_old and check_digit(text[:17]) != text[17]:
        return IdCheck(None, IdProblem.CHECK_DIGIT)
    return IdCheck(text, None, born)


def normalize_phone(raw: str | None) -> str | None:
    """An 11-digit mainland mobile number, or None when the text is not one."""
    text = _SEPARATORS.sub("", (raw or "").translate(_FULLWIDTH))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    return text if _MOBILE.fullmatch(text) else None


def mask_id_number(id_number: str) -> str:
    """3704**********1234: the region's first four and the last four characters stay."""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """138****5678."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
