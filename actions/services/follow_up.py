"""Is a policy question without a programme name a follow-up to the programme just discussed?

"那咋申请呢" after an answer about 雨露计划 asks about 雨露计划. "城乡居民养老保险咋交" does not: it names
another programme, one the knowledge base does not cover, and must get the honest "not covered" reply,
never the last programme's answer. The test: once the entities (aspect and place words) are cut out,
what is left names nothing, i.e. it holds no noun beyond a few generic ones (钱, 人, 标准).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import jieba.posseg

GENERIC_NOUNS = frozenset({"钱", "人", "标准", "条件", "材料", "手续", "部门", "电话", "情况", "事", "政策"})
_NOT_CONTENT = re.compile(r"[^0-9A-Za-z\u3400-\u9fff]+")


def warm_up() -> None:
    """Load jieba's dictionary now rather than on the first question."""
    jieba.posseg.lcut("预热")


def remainder(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """The text without the given character spans, punctuation and white space."""
    cut = list(spans)
    kept = "".join(ch for i, ch in enumerate(text) if not any(start <= i < end for start, end in cut))
    return _NOT_CONTENT.sub("", kept)


def names_something(text: str) -> bool:
    """Whether the text holds a noun other than the generic ones (a programme, a thing, a person)."""
    return any(
        (pair.flag.startswith("n") or pair.flag == "vn") and pair.word not in GENERIC_NOUNS
        for pair in jieba.posseg.lcut(text)
    )


def is_follow_up(text: str, entity_spans: Iterable[tuple[int, int]]) -> bool:
    """True when the question, without its aspect and place words, names nothing of its own."""
    return not names_something(remainder(text, entity_spans))
