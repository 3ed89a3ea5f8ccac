"""Policy answers from the knowledge base: aspect- and region-aware, cited, honest about gaps."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.common import current_caller, intent_payload
from actions.insurance import answer_cost, enroll_button, is_cost_question
from actions.rendering import render
from actions.services.answers import build_answer, split_message
from actions.services.follow_up import is_follow_up
from actions.services.knowledge import KnowledgeBase, Policy, suggest
from nlu.amounts import find_amounts

POPULAR = ("dibao", "tekun", "qihuibao", "yulu")
MENU = ("dibao", "tekun", "linshi_jiuzhu", "canji_butie", "yulu", "qihuibao", "menzhen_manxing", "gongyi_gangwei")
MAX_ANSWERS = 2
COST_POLICY = "qihuibao"  # the one programme whose price and reimbursement the bot computes
MEDICAL_WORDS = re.compile(
    r"医保|住院|医院|看病|门诊|特药|药费|药|手术|病|报销|医药费|费用|花费|花了|花|自费|自付|自己|报了|出了|掏了|剩下|"
    r"还得|还要|能报|报多少"
)
CALLBACK_DATA_LIMIT = 64  # bytes of a Telegram button's callback_data

# Programmes whose answer offers to declare hardship right here: the chat does what their 自主申报 does.
DECLARABLE = frozenset({"zizhu_shenbao", "fangfanpin_jiance", "linshi_jiuzhu"})


def declare_button() -> dict[str, str]:
    """Starts a hardship self-declaration (困难自主申报) in the chat."""
    return {"title": "在这里申报困难", "payload": "/declare_hardship"}


def policy_button(policy: Policy, aspect: str | None = None, region: str | None = None) -> dict[str, str]:
    """A button that asks about the policy; the region goes along when it fits Telegram's 64-byte limit."""
    entities = {"policy": policy.id} | ({"aspect": aspect} if aspect else {})
    payload = intent_payload(entities)
    if region and len(intent_payload(entities | {"region": region}).encode()) <= CALLBACK_DATA_LIMIT:
        payload = intent_payload(entities | {"region": region})
    return {"title": policy.name, "payload": payload}


def entity_values(tracker: Tracker, entity: str) -> list[str]:
    values: list[str] = []
    for e in tracker.latest_message.get("entities") or []:
        if e.get("entity") == entity and isinstance(e.get("value"), str) and e["value"] not in values:
            values.append(e["value"])
    return values


def entity_spans(tracker: Tracker) -> list[tuple[int, int]]:
    return [
        (e["start"], e["end"])
        for e in tracker.latest_message.get("entities") or []
        if isinstance(e.get("start"), int) and isinstance(e.get("end"), int)
    ]


def follow_up_policy(tracker: Tracker, kb: KnowledgeBase) -> str | None:
    """The policy in the slot when the message asks more about it: "那咋申请呢", "淄博有没有", not "宅基地咋申请";
    for 齐惠保 also a sum of money ("那自己出八万呢")."""
    policy = tracker.get_slot("policy")
    text = str(tracker.latest_message.get("text") or "")
    spans = entity_spans(tracker)
    asks_more = bool(entity_values(tracker, "aspect") or entity_values(tracker, "region"))
    if policy == COST_POLICY:
        # Sums of money and words about medical bills are part of a 齐惠保 follow-up, not another topic.
        amounts = find_amounts(text)
        asks_more = asks_more or bool(amounts)
        spans = spans + [(a.start, a.end) for a in amounts] + [m.span() for m in MEDICAL_WORDS.finditer(text)]
    if policy in kb.policies and asks_more and is_follow_up(text, spans):
        return str(policy)
    return None


def candidates(kb: KnowledgeBase, text: str) -> list[Policy]:
    return [kb.policies[p] for p in suggest(text, kb)]


class ActionAnswerPolicy(Action):
    """Answers a policy question, or asks which policy, or says honestly that the helpline does not know."""

    def name(self) -> str:
        return "action_answer_policy"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.get()
        kb = rt.knowledge
        text = str(tracker.latest_message.get("text") or "")
        policy_ids = [p for p in entity_values(tracker, "policy") if p in kb.policies]
        aspects = entity_values(tracker, "aspect")
        aspect = aspects[0] if aspects else None
        regions = entity_values(tracker, "region")
        if not policy_ids:
            followed = follow_up_policy(tracker, kb)
            policy_ids = [followed] if followed else []
        if not policy_ids and text.startswith("/"):
            menu = [kb.policies[p] for p in MENU if p in kb.policies]
            dispatcher.utter_message(
                text=render(rt.templates, "policy_menu.j2"), buttons=[policy_button(p, aspect) for p in menu]
            )
            return []
        if not policy_ids:
            return self._not_found(dispatcher, kb, text)
        if len(policy_ids) > MAX_ANSWERS:
            suggestions = [kb.policies[p] for p in policy_ids]
            text = render(rt.templates, "policy_which.j2", suggestions=suggestions)
            dispatcher.utter_message(text=text, buttons=[policy_button(p, aspect) for p in suggestions])
            return []

        outside = [r for r in regions if r.split("/")[0] != kb.policies[policy_ids[0]].city]
        if policy_ids == [COST_POLICY] and not outside and is_cost_question(tracker, aspect):
            answer_cost(dispatcher, tracker)
            return [SlotSet("policy", COST_POLICY)]

        caller = current_caller(tracker)
        region = regions[0] if regions else (caller.village or caller.jurisdiction if caller else None)
        for_cadre = bool(caller and caller.is_cadre)
        for policy_id in policy_ids:
            answer = build_answer(kb, policy_id, aspect, region, for_cadre)
            chunks = split_message(render(rt.templates, "policy_answer.j2", a=answer))
            buttons = [policy_button(r) for r in answer.related]
            if policy_id == COST_POLICY:
                buttons.insert(0, enroll_button())
            if policy_id in DECLARABLE:
                buttons.insert(0, declare_button())
            if not answer.detailed:
                buttons.insert(0, {"title": "更多", "payload": policy_button(answer.policy, "more")["payload"]})
            for chunk in chunks[:-1]:
                dispatcher.utter_message(text=chunk)
            dispatcher.utter_message(text=chunks[-1], buttons=buttons)
        return [SlotSet("policy", policy_ids[0])]

    @staticmethod
    def _not_found(dispatcher: CollectingDispatcher, kb: KnowledgeBase, text: str) -> list[dict[str, Any]]:
        templates = runtime.get().templates
        near = candidates(kb, text)
        if near:
            dispatcher.utter_message(
                text=render(templates, "policy_which.j2", suggestions=near),
                buttons=[policy_button(p) for p in near],
            )
            return []
        popular = [kb.policies[p] for p in POPULAR if p in kb.policies]
        dispatcher.utter_message(
            text=render(templates, "policy_not_covered.j2", suggestions=popular),
            buttons=[policy_button(p) for p in popular],
        )
        return [SlotSet("policy", None)]


class ActionClarify(Action):
    """Low NLU confidence: offer the policies the message nearly names or the one it follows up, else the
    general clarification."""

    def name(self) -> str:
        return "action_clarify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.get()
        text = str(tracker.latest_message.get("text") or "")
        kb = rt.knowledge
        named = [kb.policies[p] for p in entity_values(tracker, "policy") if p in kb.policies]
        near = named or candidates(kb, text)
        followed = None if near else follow_up_policy(tracker, kb)
        if followed == COST_POLICY and is_cost_question(tracker, None):
            answer_cost(dispatcher, tracker)
            return []
        if followed:
            aspects, regions = entity_values(tracker, "aspect"), entity_values(tracker, "region")
            policy = kb.policies[followed]
            dispatcher.utter_message(
                text=render(rt.templates, "policy_which.j2", suggestions=[policy]),
                buttons=[policy_button(policy, aspects[0] if aspects else None, regions[0] if regions else None)],
            )
        elif near:
            dispatcher.utter_message(
                text=render(rt.templates, "policy_which.j2", suggestions=near[:3]),
                buttons=[policy_button(p) for p in near[:3]],
            )
        else:
            dispatcher.utter_message(response="utter_default")
        return []
