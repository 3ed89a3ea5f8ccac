"""Reading a hardship declaration from a villager's own words: the cause, the sum, the household's size and income.

Each reader returns what it is sure of and nothing else, so that the form asks for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from nlu.amounts import Amount, find_amounts, parse_amount
from nlu.hardship import CAUSE_WORDS, DOMINATES, OTHER, REQUEST_WORDS

MIN_DESCRIPTION = 6  # Chinese characters a message needs to tell what happened without naming a cause
# Words right before a sum that make it the household's income rather than the expense or loss.
_INCOME_BEFORE = re.compile(
    r"(?:一年|年|平常|平时|往年|正常|全家|家里|俺家|一家)?.{0,3}(?:挣|收入|赚|进账|能收|收个)[^,，。;；]{0,4}$"
)
_UNKNOWN = re.compile(r"不知道|说不准|说不好|不清楚|不好说|不确定|记不清|算不清|没算|不晓得|不知|拿不准|没数")
_NONE = re.compile(r"^(?:没有|没|无|零|0|没收入|没有收入|一分没有|一分钱没有|啥也没有|没进项)(?:收入)?[。.!！]*$")
CJK = re.compile(r"[\u4e00-\u9fff]")
MAX_DESCRIPTION = 1000
MAX_SUM = Decimal(10_000_000)
MAX_INCOME = Decimal(2_000_000)
MAX_SIZE = 30
_SIZE_WORDS = dict(zip("一二两俩仨三四五六七八九十", (1, 2, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10), strict=True))
_SIZE = re.compile(r"([0-9]{1,3}|[一二两俩仨三四五六七八九十]{1,3})\s*(?:口人|口|个人|人|位)")
_ALONE = re.compile(r"就?(?:俺|我)一个|就(?:俺|我)自己|一个人|光棍|独自|单身")
_COUPLE = re.compile(r"(?:俺|我)?(?:老两口|两口子|俺俩|我俩|老俩)")


def causes_in(text: str) -> list[str]:
    """The causes the text names, in the order of CAUSE_WORDS, without the consequences of another; may be empty."""
    named = [cause for cause, words in CAUSE_WORDS if words.search(text)]
    consequences = {c for cause in named for c in DOMINATES.get(cause, ())}
    return [c for c in named if c not in consequences]


def cause_from_answer(text: str, causes: tuple[str, ...]) -> str | None:
    """The cause picked by a button or typed: "因病", "病", "其他", or words naming one cause."""
    cleaned = re.sub(r"[\s。.!！]+", "", text)
    for cause in causes:
        if cleaned and (cleaned == cause or cleaned in cause.split("/") or cause.startswith(cleaned)):
            return cause
    if cleaned in ("其他", "其它", "别的", "都不是"):
        return OTHER
    found = causes_in(text)
    return found[0] if len(found) == 1 else None


def describes_trouble(text: str) -> bool:
    """Whether a message says what happened (a cause or a sum), rather than only asking to declare."""
    if description_problem(text) is not None or is_request_only(text):
        return False
    if causes_in(text) or sums_in(text).loss is not SumFound.NONE:
        return True
    return len(CJK.findall(text)) >= MIN_DESCRIPTION


def is_request_only(text: str) -> bool:
    """A request to declare (我要申报困难) that says nothing of what happened."""
    return bool(REQUEST_WORDS.search(text)) and not causes_in(text) and not find_amounts(text)


class SumFound(str, Enum):
    NONE = "none"
    ONE = "one"
    UNREADABLE = "unreadable"  # 好几万, 五六万
    SEVERAL = "several"


@dataclass(frozen=True)
class Sums:
    """The sums a description names: the expense or loss, and the household's income where it says so."""

    loss: SumFound
    loss_value: Decimal | None = None
    loss_text: str | None = None  # as typed, for the question when it is unreadable
    income: Decimal | None = None


def sums_in(text: str) -> Sums:
    """'看病花了5万 一年就挣一万来块' → loss 50000 and income 10000 (approximate values are taken as said)."""
    income: list[Amount] = []
    loss: list[Amount] = []
    for amount in find_amounts(text):
        before = text[max(0, amount.start - 10) : amount.start]
        (income if _INCOME_BEFORE.search(before) else loss).append(amount)
    income_value = income[0].value if len(income) == 1 else None
    if not loss:
        return Sums(SumFound.NONE, income=income_value)
    if any(a.value is None for a in loss):
        unreadable = next(a for a in loss if a.value is None)
        return Sums(SumFound.UNREADABLE, loss_text=unreadable.text, income=income_value)
    if len({a.value for a in loss}) > 1:
        return Sums(SumFound.SEVERAL, income=income_value)
    return Sums(SumFound.ONE, loss_value=loss[0].value, loss_text=loss[0].text, income=income_value)


class Answer(str, Enum):
    OK = "ok"
    UNKNOWN = "unknown"  # 说不准: accepted for the sum, which the cadre then verifies
    UNREADABLE = "unreadable"
    TOO_LARGE = "too_large"


@dataclass(frozen=True)
class SumAnswer:
    outcome: Answer
    value: Decimal | None = None


def read_sum(text: str, *, maximum: Decimal = MAX_SUM, allow_none: bool = False) -> SumAnswer:
    """A sum typed as an answer: 5万, 三千, 15000元; 说不准 is UNKNOWN; 没有 is 0 where allowed (income)."""
    stripped = text.strip()
    if allow_none and _NONE.match(stripped):
        return SumAnswer(Answer.OK, Decimal(0))
    value = parse_amount(stripped)
    if value is None:
        bare = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*", stripped)
        value = Decimal(bare.group(1)) if bare else None
    if value is None:
        return SumAnswer(Answer.UNKNOWN if _UNKNOWN.search(stripped) else Answer.UNREADABLE)
    if value > maximum:
        return SumAnswer(Answer.TOO_LARGE, value)
    return SumAnswer(Answer.OK, value)


def read_size(text: str) -> int | None:
    """The household's size: '4', '四口人', '俺家5个人', '就俺一个', '老两口'; None when unreadable or impossible."""
    stripped = text.strip()
    if re.fullmatch(r"[0-9]{1,3}", stripped):
        number = int(stripped)
    elif _ALONE.search(stripped):
        number = 1
    elif _COUPLE.search(stripped):
        number = 2
    else:
        match = _SIZE.search(stripped) or re.fullmatch(r"([一二两俩仨三四五六七八九十]{1,3})", stripped)
        if match is None:
            return None
        digits = match.group(1)
        number = int(digits) if digits.isdigit() else _chinese_small(digits)
    return number if 1 <= number <= MAX_SIZE else None


def size_in(text: str) -> int | None:
    """The household's size when a description says it: 俺家四口人."""
    match = _SIZE.search(text)
    if match is None or not re.search(r"家|户|口", text[max(0, match.start() - 4) : match.end()]):
        return None
    return read_size(match.group(0))


def _chinese_small(digits: str) -> int:
    if digits in _SIZE_WORDS:
        return _SIZE_WORDS[digits]
    if digits.startswith("十"):
        return 10 + _SIZE_WORDS.get(digits[1:], 0)
    if len(digits) >= 2 and digits[1] == "十":
        return _SIZE_WORDS.get(digits[0], 0) * 10 + _SIZE_WORDS.get(digits[2:], 0)
    return 0


def description_problem(text: str) -> str | None:
    """Why a description cannot be taken: 'empty' (no Chinese words) or 'long'; None when it can."""
    if len(text) > MAX_DESCRIPTION:
        return "long"
    if len(CJK.findall(text)) < 2:
        return "empty"
    return None
