"""齐惠保 price and reimbursement replies, used by the policy answer when a question is about what it costs or pays."""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.common import intent_payload, read_db, sender_channel
from actions.rendering import render
from actions.services.insurance import (
    HOME_CITY,
    PRODUCT,
    AmountChoice,
    ChatPerson,
    Terms,
    category_of,
    estimate,
    person_of_chat,
    self_paid_amount,
)
from nlu.amounts import find_amounts

logger = logging.getLogger(__name__)

# Asking what it pays back, as opposed to what it costs.
_REIMBURSE_WORDS = re.compile(r"报|赔|返|给多少|能拿|能领|能得|退|理赔|报销")
ENROLL_PAYLOAD = "/enroll_insurance"


def enroll_button() -> dict[str, str]:
    return {"title": "现在参保", "payload": ENROLL_PAYLOAD}


def payload_amount(tracker: Tracker) -> Decimal | None:
    """An amount a button sent as an entity: /ask_policy{"policy":"qihuibao","amount":"50000"}."""
    for e in tracker.latest_message.get("entities") or []:
        if e.get("entity") == "amount":
            try:
                value = Decimal(str(e.get("value")))
            except InvalidOperation:
                return None
            return value if value >= 0 else None
    return None


def estimate_button(value: Decimal, text: str) -> dict[str, str]:
    return {"title": text, "payload": intent_payload({"policy": PRODUCT, "amount": str(value)})}


def caller_person(tracker: Tracker) -> ChatPerson | None:
    return read_db(
        "person lookup", lambda session: person_of_chat(session, sender_channel(tracker), tracker.sender_id), None
    )


def wants_estimate(text: str) -> bool:
    return bool(_REIMBURSE_WORDS.search(text))


def answer_cost(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """Answer a 齐惠保 question about price or reimbursement: an estimate, a request for the sum, or the price."""
    rt = runtime.get()
    terms = rt.insurance_terms
    text = str(tracker.latest_message.get("text") or "")
    category = category_of(text)

    sent = payload_amount(tracker)
    if sent is not None:
        # A button the person picked when asked which sum is theirs after basic insurance.
        _estimate_reply(dispatcher, terms, sent, category, stated=True, approximate=False)
        return
    choice, amounts = self_paid_amount(text, find_amounts(text))
    if choice is AmountChoice.ONE and amounts[0].value is not None:
        stated = bool(re.search(r"医保|报销?完|报了|自付|自费|自己|个人|剩", text))
        _estimate_reply(dispatcher, terms, amounts[0].value, category, stated, amounts[0].approximate)
        return
    if choice is AmountChoice.UNREADABLE:
        dispatcher.utter_message(
            text=render(rt.templates, "insurance_amount_unclear.j2", said=amounts[0].text, example=Decimal(50000))
        )
        return
    if choice is AmountChoice.SEVERAL:
        values = list(dict.fromkeys(a.value for a in amounts if a.value is not None))[:4]
        dispatcher.utter_message(
            text=render(rt.templates, "insurance_amount_which.j2", values=values),
            buttons=[estimate_button(v, f"{v:,} 元") for v in values],
        )
        return
    person = caller_person(tracker)
    dispatcher.utter_message(
        text=render(
            rt.templates,
            "insurance_quote.j2",
            terms=terms,
            person=person,
            home=HOME_CITY,
            premium=terms.premium(person.registered_poor) if person else None,
            offer_estimate=wants_estimate(text),
        ),
        buttons=[enroll_button()],
    )


def _estimate_reply(
    dispatcher: CollectingDispatcher,
    terms: Terms,
    amount: Decimal,
    category: str | None,
    stated: bool,
    approximate: bool,
) -> None:
    result = estimate(terms, amount, category)
    dispatcher.utter_message(
        text=render(
            runtime.get().templates,
            "insurance_estimate.j2",
            e=result,
            terms=terms,
            stated=stated,
            approximate=approximate,
        ),
        buttons=[enroll_button()],
    )


def is_cost_question(tracker: Tracker, aspect: str | None) -> bool:
    """A 齐惠保 question answered by computation: it asks an amount, or names a sum of money."""
    text = str(tracker.latest_message.get("text") or "")
    return aspect == "amount" or payload_amount(tracker) is not None or bool(find_amounts(text))
