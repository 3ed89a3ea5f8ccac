"""The cadre workspace in the chat: lists, lookups, moves, ABCD classes, help measures, statistics and exports.

Every action first finds the registered cadre behind the chat user (actions/services/workspace.py); anyone else is
refused politely, whatever their message claims. What the message asks is read from its words: a case number
(SB-2026-000123), a status or a help measure next to it, a 身份证号 or a name of the jurisdiction, a place or a
category. Buttons carry the same as entities. A move needs a short reason; when the message has none, the
cadre_move_form asks for it.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions import runtime
from actions.common import sender_channel, utter_template
from actions.db.models import CASE_CATEGORIES, CASE_STATUSES, HELP_MEASURES, Household, Person, Region
from actions.forms import cancel_button
from actions.rendering import render
from actions.services.cases import CHINA, allowed_next
from actions.services.charts import ChartUnavailable, statistics_png
from actions.services.exports import export
from actions.services.idcard import validate_id_number
from actions.services.insurance import is_cancel
from actions.services.workspace import (
    MAX_NOTE,
    PAGE_SIZE,
    NotACadre,
    Officer,
    WorkspaceError,
    case_for,
    find_households,
    measures_of,
    monitored,
    move_case,
    officer_of_chat,
    parse_amount,
    pending,
    record_measure,
    resolve_place,
    set_abcd,
    statistics,
    within,
)

logger = logging.getLogger(__name__)

CASE_NO = re.compile(r"SB[-\s_]?(\d{4})[-\s_]?(\d{6})(?![0-9])", re.IGNORECASE)
ID_LIKE = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")
ABCD = re.compile(r"(?i)(?<![A-Za-z])([ABCD])\s*类")
AMOUNT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(?:元|块)")
MONITOR_WORDS = re.compile(r"监测户|监侧户|纳入监测的|在监测|监测对象|帮扶对象|即时帮扶的")
FILLER = re.compile(
    r"把|将|给|这件|这个|这户|申报|改成|改为|转成|转为|设为|设成|定为|定成|状态|登记|一下|吧|了|的|[,,。.;;::!!\s]+"
)
# A count rather than a list: 统计/汇总/图/比例/…率 always; 多少/几户/一共 unless the message also asks for names.
STATS_WORDS = re.compile(
    r"统计|统记|汇总|汇个总|图|比例|占比|百分|[^效]率|趋势|对比|排名|排个名|出个数|数据|tongji|shuju|huizong", re.I
)
COUNT_WORDS = re.compile(r"多少|(?<!哪)几[户件个家人类]|各几|一共|总共|总数|合计|数一下|数数")
LIST_WORDS = re.compile(r"列|清单|名单|哪些|谁|哪几|调出来|拉出来|明细|是啥情况")
STATUS_WORDS = {status: re.compile(status) for status in CASE_STATUSES[1:]}
CASE_SLOT, TARGET_SLOT, NOTE_SLOT = "cadre_case", "cadre_target", "cadre_note"


def today() -> dt.date:
    return dt.datetime.now(CHINA).date()


def case_number(text: str) -> str | None:
    found = CASE_NO.search(text)
    if not found:
        return None
    return f"SB-{found.group(1)}-{found.group(2)}"


def asks_for_counts(text: str) -> bool:
    """统计一下 / 各类户占多少 / A类几户 B类几户 are counts; 还有多少没核 给我看下清单 is a list."""
    return bool(STATS_WORDS.search(text) or (COUNT_WORDS.search(text) and not LIST_WORDS.search(text)))


def entity(tracker: Tracker, name: str) -> str | None:
    value = next(tracker.get_latest_entity_values(name), None)
    return str(value) if value is not None else None


def reason_in(text: str, *said: str) -> str | None:
    """What is left of a command once the case number, the status or measure and filler words are taken out."""
    rest = CASE_NO.sub(" ", text)
    for word in said:
        rest = rest.replace(word, " ")
    rest = AMOUNT.sub(" ", rest)
    rest = FILLER.sub(" ", rest)
    rest = " ".join(rest.split())
    return rest or None


class WorkspaceAction(Action, ABC):
    """Finds the cadre, runs `work` in one transaction (lookups are audited, so it writes), refuses everyone else.

    Abstract, so that rasa_sdk does not register it as an action of its own.
    """

    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def work(
        self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]: ...

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        try:
            with runtime.get().sessions.begin() as session:
                officer = officer_of_chat(session, sender_channel(tracker), tracker.sender_id)
                return self.work(session, officer, dispatcher, tracker)
        except NotACadre:
            utter_template(dispatcher, "cadre_refused.j2")
        except WorkspaceError as exc:
            utter_template(dispatcher, "cadre_problem.j2", problem=str(exc))
        except SQLAlchemyError:
            logger.exception("%s failed", self.name())
            dispatcher.utter_message(response="utter_decl_lookup_failed")
        return []


def case_buttons(case_no: str, status: str) -> list[dict[str, str]]:
    return [
        {"title": f"改为{target}", "payload": f'/cadre_cases{{"case_no":"{case_no}","target_status":"{target}"}}'}
        for target in CASE_STATUSES
        if target in allowed_next(status)
    ]


def page_buttons(kind: str, next_offset: int | None, previous: int | None, **extra: str) -> list[dict[str, str]]:
    import json

    def payload(offset: int) -> str:
        data = {"list": kind, "page": str(offset), **extra}
        return "/cadre_cases" + json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    buttons = []
    if previous is not None:
        buttons.append({"title": "上一页", "payload": payload(previous)})
    if next_offset is not None:
        buttons.append({"title": "下一页", "payload": payload(next_offset)})
    return buttons


class ActionCadreCases(WorkspaceAction):
    """Pending declarations, a case, a household, monitored households, moves, ABCD classes and help measures."""

    def name(self) -> str:
        return "action_cadre_cases"

    def work(
        self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        text = str(tracker.latest_message.get("text") or "")
        if text.startswith("/"):
            text = ""
        number = entity(tracker, "case_no") or case_number(text)
        target = entity(tracker, "target_status") or next((s for s, w in STATUS_WORDS.items() if w.search(text)), None)
        listing = entity(tracker, "list")
        offset = int(entity(tracker, "page") or 0) if (entity(tracker, "page") or "0").isdigit() else 0
        if number and target:
            return self.move(session, officer, dispatcher, number, target, reason_in(text, target))
        if number:
            measure = next((m for m in HELP_MEASURES if m in text), None)
            if measure:
                return self.measure(session, officer, dispatcher, number, measure, text)
            return self.show_case(session, officer, dispatcher, number)
        if not listing and not ID_LIKE.search(text) and asks_for_counts(text):
            return send_statistics(session, officer, dispatcher)
        abcd = ABCD.search(text)
        if abcd and not listing:
            return self.abcd(session, officer, dispatcher, text, abcd.group(1).upper())
        if (
            listing == "monitored"
            or (not listing and MONITOR_WORDS.search(text))
            or any(c in text for c in CASE_CATEGORIES)
        ):
            category = entity(tracker, "category") or next((c for c in CASE_CATEGORIES if c in text), None)
            place_name = entity(tracker, "place") or self.place_in(session, officer, text)
            place = resolve_place(session, officer, place_name) if place_name else None
            page = monitored(session, officer, category, place, offset)
            extra = {k: v for k, v in (("category", category), ("place", place_name)) if v}
            utter_template(
                dispatcher,
                "cadre_monitored.j2",
                page=page,
                category=category,
                place=place,
                officer=officer,
                page_size=PAGE_SIZE,
                buttons=page_buttons("monitored", page.next_offset, page.previous_offset, **extra),
            )
            return []
        if not listing:
            id_found = ID_LIKE.search(text)
            if id_found:
                return self.households(session, officer, dispatcher, id_found.group())
            name = self.name_in(session, officer, text)
            if name:
                return self.households(session, officer, dispatcher, name)
        page = pending(session, officer, offset)
        utter_template(
            dispatcher,
            "cadre_pending.j2",
            page=page,
            today=today(),
            officer=officer,
            page_size=PAGE_SIZE,
            buttons=[{"title": p.case_no, "payload": f'/cadre_cases{{"case_no":"{p.case_no}"}}'} for p in page.items]
            + page_buttons("pending", page.next_offset, page.previous_offset)
            + [{"title": "辖区统计", "payload": "/cadre_stats"}],
        )
        return []

    @staticmethod
    def place_in(session: Session, officer: Officer, text: str) -> str | None:
        """The longest name of a region of the jurisdiction that the message contains."""
        names: list[str] = list(
            session.execute(
                select(Region.name).where(
                    within(Region.path, officer.jurisdiction), literal(text).contains(Region.name)
                )
            ).scalars()
        )
        return max(names, key=lambda n: len(n)) if names else None

    @staticmethod
    def name_in(session: Session, officer: Officer, text: str) -> str | None:
        """The longest name of a person of the jurisdiction that the message contains (two characters or more)."""
        names = session.execute(
            select(Person.name)
            .join(Household, Person.household_id == Household.id)
            .join(Region, Household.region_id == Region.id)
            .where(within(Region.path, officer.jurisdiction), literal(text[:200]).contains(Person.name))
        ).scalars()
        found: list[str] = [n for n in names if len(n) >= 2]
        return max(found, key=lambda n: len(n)) if found else None

    def show_case(self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, number: str) -> list:
        case = case_for(session, officer, number)
        if case is None:
            utter_template(dispatcher, "cadre_problem.j2", problem=f"在您的辖区里没有编号为 {number} 的申报。")
            return []
        measures = measures_of(session, officer, number)
        utter_template(
            dispatcher,
            "cadre_case.j2",
            case=case,
            measures=measures,
            today=today(),
            buttons=case_buttons(case.case_no, case.status),
        )
        return []

    def households(self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, query: str) -> list:
        if ID_LIKE.fullmatch(query) and not validate_id_number(query).ok:
            utter_template(dispatcher, "cadre_problem.j2", problem="这个身份证号校验不对,请核对后再查。")
            return []
        found = find_households(session, officer, query)
        utter_template(dispatcher, "cadre_households.j2", households=found, by_id=ID_LIKE.fullmatch(query) is not None)
        return []

    def move(
        self,
        session: Session,
        officer: Officer,
        dispatcher: CollectingDispatcher,
        number: str,
        target: str,
        note: str | None,
    ) -> list:
        if case_for(session, officer, number) is None:
            raise WorkspaceError(f"在您的辖区里没有编号为 {number} 的申报。")
        if not note:
            return [
                SlotSet(CASE_SLOT, number),
                SlotSet(TARGET_SLOT, target),
                SlotSet(NOTE_SLOT, None),
                FollowupAction("cadre_move_form"),
            ]
        return do_move(session, officer, dispatcher, number, target, note)

    def measure(
        self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, number: str, kind: str, text: str
    ) -> list:
        amount_found = AMOUNT.search(text)
        amount = parse_amount(amount_found.group(1)) if amount_found else None
        note = reason_in(text, kind, "帮扶措施", "措施")
        recorded = record_measure(session, officer, number, kind, amount, note)
        utter_template(dispatcher, "cadre_measure.j2", measure=recorded)
        return []

    def abcd(self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, text: str, abcd: str) -> list:
        name = self.name_in(session, officer, text)
        households = find_households(session, officer, name) if name else []
        if len(households) != 1:
            problem = (
                "没找到是哪一户:请写上户主或家庭成员的姓名,比如“王志强家 定为B类 原因:主要劳动力住院”。"
                if not households
                else f"辖区里叫{name}的有 {len(households)} 户,请用身份证号查到那一户再改。"
            )
            utter_template(dispatcher, "cadre_problem.j2", problem=problem)
            return []
        note = reason_in(text, name or "", abcd + "类", abcd.lower() + "类", "家", "原因")
        if not note:
            raise WorkspaceError("改 ABCD 分类要写一句原因,比如“王志强家 定为B类 原因:主要劳动力住院”。")
        view = set_abcd(session, officer, households[0].code, abcd, note)
        utter_template(dispatcher, "cadre_abcd.j2", household=view)
        return []


def tell_declarant() -> Any:
    templates = runtime.get().templates
    return lambda case: render(templates, "case_outcome.j2", case=case)


def do_move(
    session: Session, officer: Officer, dispatcher: CollectingDispatcher, number: str, target: str, note: str
) -> list[dict[str, Any]]:
    view = move_case(session, officer, number, target, note, tell_declarant())
    utter_template(dispatcher, "cadre_moved.j2", case=view, buttons=case_buttons(view.case_no, view.status))
    return [SlotSet(CASE_SLOT, None), SlotSet(TARGET_SLOT, None), SlotSet(NOTE_SLOT, None)]


class ValidateCadreMoveForm(FormValidationAction):
    """The reason for a move: one short sentence; 取消 stops."""

    def name(self) -> str:
        return "validate_cadre_move_form"

    def validate_cadre_note(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # cleared as the form starts: not an answer yet
            return {NOTE_SLOT: None}
        text = " ".join(str(value).split())
        if is_cancel(text) and len(text) <= 10:
            dispatcher.utter_message(response="utter_cadre_move_cancelled")
            # An empty reason (not None) ends the form; action_cadre_move then moves nothing.
            return {NOTE_SLOT: "", CASE_SLOT: None, TARGET_SLOT: None, "requested_slot": None}
        if not text or text.startswith("/"):
            dispatcher.utter_message(response="utter_cadre_reason_needed")
            return {NOTE_SLOT: None}
        if len(text) > MAX_NOTE:
            utter_template(dispatcher, "cadre_note_too_long.j2", max_note=MAX_NOTE, buttons=[cancel_button()])
            return {NOTE_SLOT: None}
        return {NOTE_SLOT: text}


class ActionAskCadreNote(Action):
    def name(self) -> str:
        return "action_ask_cadre_note"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        utter_template(
            dispatcher,
            "cadre_ask_note.j2",
            case_no=tracker.get_slot(CASE_SLOT),
            target=tracker.get_slot(TARGET_SLOT),
            buttons=[cancel_button()],
        )
        return []


class ActionCadreMove(WorkspaceAction):
    """After the reason is given: the move itself."""

    def name(self) -> str:
        return "action_cadre_move"

    def work(
        self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        number, target, note = (tracker.get_slot(s) for s in (CASE_SLOT, TARGET_SLOT, NOTE_SLOT))
        if not (number and target and note):
            return [SlotSet(CASE_SLOT, None), SlotSet(TARGET_SLOT, None), SlotSet(NOTE_SLOT, None)]
        return do_move(session, officer, dispatcher, str(number), str(target), str(note))


class ActionCadreStats(WorkspaceAction):
    """Counts for the jurisdiction as text, and the same as a chart (a PNG image)."""

    def name(self) -> str:
        return "action_cadre_stats"

    def work(
        self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        return send_statistics(session, officer, dispatcher)


def send_statistics(session: Session, officer: Officer, dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    """The jurisdiction's counts as text, then the chart; a button leads to the list of pending declarations."""
    stats = statistics(session, officer, today())
    utter_template(
        dispatcher,
        "cadre_stats.j2",
        stats=stats,
        buttons=[{"title": "待核实清单", "payload": '/cadre_cases{"list":"pending"}'}],
    )
    try:
        png = statistics_png(stats)
    except ChartUnavailable:
        dispatcher.utter_message(response="utter_cadre_chart_unavailable")
        return []
    dispatcher.utter_message(image="data:image/png;base64," + base64.b64encode(png).decode("ascii"))
    return []


class ActionCadreExport(WorkspaceAction):
    """The jurisdiction's monitoring list as a file (XLSX, or CSV when asked)."""

    def name(self) -> str:
        return "action_cadre_export"

    def work(
        self, session: Session, officer: Officer, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        text = str(tracker.latest_message.get("text") or "").lower()
        fmt = "csv" if "csv" in text else "xlsx"
        data = export(session, officer, fmt)
        name = f"监测名单-{officer.jurisdiction.split('/')[-1]}-{today().isoformat()}.{fmt}"
        mime = "text/csv" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        utter_template(dispatcher, "cadre_export.j2", officer=officer, filename=name, fmt=fmt)
        dispatcher.utter_message(
            json_message={"document": {"filename": name, "mime_type": mime, "data": base64.b64encode(data).decode()}}
        )
        return []
