"""Sums of money as villagers type them: 5万, 五万, 1万5, 一万五千, 15000, 1.5万, 两万, 3千, 6w, 15,000元.

Chinese numerals are read by cn2an; this module decides which numbers in a message are sums of money and which
are not (两个娃, 住了3天, 2026年, 80%, a phone number), and marks sums it cannot read (好几万, 五六万) so that a
caller asks for the amount instead of guessing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import cn2an

# One character for one character, so that positions in the folded text are positions in the original.
_FOLD = str.maketrans(
    "０１２３４５６７８９．，萬億兩貳ｗＷｋＫ",
    "0123456789.,万亿两贰wWkK",
)
_CN_DIGITS = "零〇一二两三四五六七八九壹贰叁肆伍陆柒捌玖"
_CN_UNITS = "十百千万亿拾佰仟"
_ARABIC = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
# A number, possibly mixed (1万5, 3千2, 一万零500); 6w and 5k are 6万 and 5千.
_CANDIDATE = re.compile(
    rf"(?:{_ARABIC}|[{_CN_DIGITS}{_CN_UNITS}几])"
    rf"(?:{_ARABIC}|[{_CN_DIGITS}{_CN_UNITS}几]|(?<=[0-9])[wWkK](?![a-zA-Z])|点(?=[{_CN_DIGITS}0-9]))*"
)
_CURRENCY = re.compile(r"\s*(?:块钱|块|元|圆|rmb|RMB|人民币)")
_APPROXIMATE = re.compile(r"(?:多|来|余|左右|出头|上下)")
# A number followed by one of these counts something other than money: 两个娃, 住了3天, 2026年, 80%.
_NOT_MONEY_AFTER = re.compile(
    r"\s*(?:%|％|成|个|岁|次|回|趟|遍|天|日|号|月|年|周|星期|小时|钟|分|秒|口|人|户|家|亩|斤|公斤|里|公里|米|倍|级|床|"
    r"间|层|楼|组|队|项|条|种|张|本|页|位|名|辈|代|胎|颗|片|盒|瓶|针|床|期)"
)
_NOT_MONEY_BEFORE = re.compile(r"(?:百分之|第|周|星期|礼拜)\s*$")
_LEADING_UNITS = "百千万亿佰仟"
_DIGIT = re.compile(rf"[0-9{_CN_DIGITS}十拾几]")
_SCALE = {"万": Decimal(10000), "千": Decimal(1000), "亿": Decimal(100000000)}
# 十多万, 二十来万, 3千多 is read as 十万+: a number, an approximation word, then the scale it counts in.
_APPROXIMATE_SCALE = re.compile(r"(?:多|来|余)([万千百亿wWkK])")
_SCALE_OF = {"万": 10000, "w": 10000, "W": 10000, "千": 1000, "k": 1000, "K": 1000, "百": 100, "亿": 100000000}
_MAX_DIGIT_RUN = 8
_LARGEST = Decimal(10) ** 10
# Two Chinese digits in a row are a range (五六万, 两三千), not a number.
_RANGE = re.compile(
    r"[一二两三四五六七八九壹贰叁肆伍陆柒捌玖]{2}"
)  # longer digit runs are phone or ID numbers, not sums of money


@dataclass(frozen=True)
class Amount:
    """A sum of money found in a text; `value` is None when it reads as money but not as a number (好几万)."""

    value: Decimal | None
    start: int
    end: int
    text: str
    approximate: bool = False


def _read(span: str) -> Decimal | None:
    folded = span.replace(",", "").replace("w", "万").replace("W", "万").replace("k", "千").replace("K", "千")
    if "几" in folded or _RANGE.search(folded):
        return None
    result = _cn2an(folded)
    if result is None and folded[-1:] in _SCALE and "点" in folded:
        head = _cn2an(folded[:-1])  # 一点五万: cn2an reads 一点五 but not 一点五万
        result = None if head is None else head * _SCALE[folded[-1]]
    if result is None:
        return None
    if result < 0 or result > _LARGEST:
        return None
    return result.quantize(Decimal(1)) if result == result.to_integral_value() else result.normalize()


def _cn2an(text: str) -> Decimal | None:
    try:
        return Decimal(str(cn2an.cn2an(text, "smart")))
    except (ValueError, KeyError, IndexError, TypeError, InvalidOperation):
        return None


def _has_unit(span: str) -> bool:
    return any(ch in _CN_UNITS or ch in "wWkK" for ch in span)


def find_amounts(text: str) -> list[Amount]:
    """Every sum of money in the text, in order; sums that cannot be read have value None."""
    folded = text.translate(_FOLD)
    found: list[Amount] = []
    for match in _CANDIDATE.finditer(folded):
        start, end = match.span()
        # A leading 万/千/百 is not a number (千万别, 万一): the number starts after it.
        start += len(match.group()) - len(match.group().lstrip(_LEADING_UNITS))
        span = folded[start:end]
        if not span or not _DIGIT.search(span):
            continue
        scaled = _APPROXIMATE_SCALE.match(folded, end)
        if scaled and not re.search(r"[万亿千百佰仟wWkK]", span):
            # 十多万: the number counts 万 (read as 十万, approximately).
            head = _read(span)
            value = None if head is None else head * _SCALE_OF[scaled.group(1)]
            found.append(Amount(value, start, scaled.end(), text[start : scaled.end()], True))
            continue
        before, after = folded[:start], folded[end:]
        if start and (folded[start - 1].isascii() and (folded[start - 1].isalnum() or folded[start - 1] in "-_.")):
            continue
        if after[:1] and after[:1].isascii() and (after[:1].isalnum() or after[:1] in "-_"):
            continue
        if re.search(rf"[0-9]{{{_MAX_DIGIT_RUN + 1},}}", span.replace(",", "")):
            continue
        currency = _CURRENCY.match(after)
        counted = _NOT_MONEY_AFTER.match(_APPROXIMATE.sub("", after, count=1) if _APPROXIMATE.match(after) else after)
        if counted and counted.group()[:1].isspace() and _has_unit(span):
            counted = None  # "花了六万多 家里…": after a space, a sum with 万/千 is followed by a new phrase
        if _NOT_MONEY_BEFORE.search(before) or (not currency and counted):
            continue
        arabic_only = re.fullmatch(_ARABIC, span) is not None
        if not (currency or _has_unit(span) or (arabic_only and Decimal(span.replace(",", "")) >= 100)):
            continue
        tail = after[currency.end() :] if currency else after
        approximate = _APPROXIMATE.match(tail) is not None or _APPROXIMATE.match(after) is not None
        found.append(Amount(_read(span), start, end, text[start:end], approximate))
    return found


def parse_amount(text: str) -> Decimal | None:
    """The one sum of money in the text, in 元; None when there is none, more than one, or one that cannot be read."""
    amounts = find_amounts(text)
    if len(amounts) != 1 or amounts[0].value is None:
        return None
    return amounts[0].value
