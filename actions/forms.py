"""What the chat forms (齐惠保 enrollment, hardship declaration) share: reading answers, and their buttons."""

from __future__ import annotations

import re

from rasa_sdk import Tracker

EDIT_WORDS = re.compile(r"修改|改|写错|错了|不对|有误|重填|重新填|重输|重新输")
YES_WORDS = re.compile(
    r"^(?:确认|确定|对|对的|是|是的|没错|正确|好|好的|中|行|可以|提交|办吧|对着嘞|没问题)[!！。.~ ]*$"
)
NAME_PREFIX = re.compile(
    r"^(?:我叫|俺叫|我是|俺是|姓名是?|名字是?|名字叫|叫|参保人是?|参保人叫|申报人是?|申报人叫|户主是?|户主叫)[::\s]*"
)
NAME_PATTERN = re.compile(r"[\u4e00-\u9fff]{2,5}|[\u4e00-\u9fff]{1,10}(?:[·•][\u4e00-\u9fff]{1,10})+")
NOT_NAME_CHARS = re.compile(r"[吗呢啥咋么怎谁哪吧啊呀嘛呗的了]")
QUESTION_INTENTS = frozenset(
    {
        "ask_policy",
        "help",
        "bot_identity",
        "insurance_status",
        "enroll_insurance",
        "declare_hardship",
        "declaration_status",
        "greet",
        "out_of_scope",
    }
)
ID_IN_TEXT = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9Xx])")
PHONE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def latest_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "").strip()


def latest_intent(tracker: Tracker) -> tuple[str | None, float]:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def cancel_button() -> dict[str, str]:
    return {"title": "取消", "payload": "取消"}


def handoff_button() -> dict[str, str]:
    return {"title": "找工作人员", "payload": "/human_handoff"}


def split_details(text: str) -> tuple[str, str | None, str | None]:
    """ "王志强 370399195007140044 13300002486" → ("王志强", the 身份证号, the phone): people send all at once."""
    ids = ID_IN_TEXT.findall(text)
    phones = PHONE_IN_TEXT.findall(text)
    id_number = ids[0] if len(ids) == 1 else None
    phone = phones[0] if len(phones) == 1 else None
    rest = text
    for found in (id_number, phone):
        if found:
            rest = rest.replace(found, " ")
    rest = re.sub(r"(?:身份证号码?|身份证|证号|手机号码?|手机|电话)[::\s]*", " ", rest)
    return rest.strip(), id_number, phone


def clean_name(text: str) -> str | None:
    """The name in "我叫王志强。" or "王志强", or None when the text does not read as a person's name."""
    name = re.sub(r"[\s。.,,!!~]+", "", NAME_PREFIX.sub("", text.strip()))
    if not NAME_PATTERN.fullmatch(name):
        return None
    if "·" not in name and "•" not in name and NOT_NAME_CHARS.search(name[1:]):
        return None
    return name.replace("•", "·")
