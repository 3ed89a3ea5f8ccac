"""Every cadre action, one by one, against those who may not use it (issue 9, item 5).

The cadre actions are taken from the action registry: whatever the `actions` package registers, minus the explicit
list of villager actions below. So a new cadre action cannot be forgotten: it fails
`test_every_cadre_action_is_probed` until it has a refusal check and a request here.

For each cadre action:
- (a) a sender with no chat identity (also: a cadre's chat id on another channel) is refused;
- (b) a villager (a person identity; the declarant of the case asked about) is refused;
- (c) a cadre of another jurisdiction asking for a case, a household or a place outside it learns nothing and
  changes nothing: 沂源县 is the next county, and 淄川区开发区 a sibling whose name starts with the jurisdiction's.

Each check asserts on the reply (a refusal, none of the other side's personal data) and on the database: every
table but the audit log is unchanged, and no audit entry names personal data.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from rasa_sdk import Tracker
from rasa_sdk.executor import ActionExecutor
from sqlalchemy import select

from actions import crypto, runtime
from actions.cadre import WorkspaceAction
from actions.db.migrate import upgrade
from actions.db.models import AuditEntry, Base, Cadre, ChatIdentity, Household, Person
from actions.services.cases import Declaration, submit
from actions.services.idcard import mask_id_number, mask_phone
from actions.services.regions import get_or_create_region
from actions.services.triage import MonitoringRules
from actions.services.workspace import Officer, move_case, record_measure
from actions.settings import Settings
from tests.actions.conftest import form_tracker, make_tracker, run, slots_of, text_of
from tests.conftest import TEST_DATA_KEY, make_id_number

# Every registered action that is not a cadre action, and why. Anything else registered is a cadre action.
NOT_CADRE = {
    "action_greet": "greeting and menu",
    "action_human_handoff": "handoff contact",
    "action_answer_policy": "policy knowledge base",
    "action_clarify": "asks what was meant",
    "action_cancel": "ends a villager's form",
    "action_declare_start": "a villager's own hardship declaration",
    "action_declare_submit": "a villager's own hardship declaration",
    "action_declaration_status": "a villager's own declaration, by their chat identity",
    "action_ask_decl_amount": "declaration form question",
    "action_ask_decl_cause": "declaration form question",
    "action_ask_decl_confirm": "declaration form question",
    "action_ask_decl_id_number": "declaration form question",
    "validate_declaration_form": "declaration form answers",
    "action_enroll_start": "a villager's own insurance enrollment",
    "action_enroll_submit": "a villager's own insurance enrollment",
    "action_insurance_status": "a villager's own enrollment, by their chat identity",
    "action_ask_enroll_confirm": "enrollment form question",
    "action_ask_enroll_id_number": "enrollment form question",
    "validate_enrollment_form": "enrollment form answers",
}

# Steps of a cadre form that read no data at all (proved below by running them with the database taken away): they
# only word a question or check the wording of an answer. The form is entered only through a cadre action that has
# found the cadre, and the form's own end (action_cadre_move, action_cadre_invite) refuses anyone else.
FORM_STEPS = {
    "action_ask_cadre_note": "asks the reason for a move, from the tracker's slots",
    "action_ask_invite_place": "asks the new cadre's place, from the tracker's slots",
    "validate_cadre_move_form": "checks the reason's wording; action_cadre_move then refuses a non-cadre",
}


def registry() -> dict[str, Any]:
    executor = ActionExecutor()
    executor.register_package("actions")
    return {name: run.__self__ for name, run in executor.actions.items()}


REGISTRY = registry()
CADRE_ACTIONS = sorted(set(REGISTRY) - set(NOT_CADRE))
WORKSPACE_ACTIONS = sorted(name for name, action in REGISTRY.items() if isinstance(action, WorkspaceAction))

ZICHUAN = ["淄博市", "淄川区", "太河镇", "下端村"]
YIYUAN = ["淄博市", "沂源县", "燕崖镇", "朱家户村"]
SIBLING = ["淄博市", "淄川区开发区", "双杨镇", "西河村"]  # its path starts with 淄博市/淄川区


@dataclass(frozen=True)
class Side:
    """One household with a declaration, its cadre and its villager's chat."""

    key: str
    place: list[str]
    code: str
    name: str
    id_number: str
    phone: str
    cadre_chat: str
    villager_chat: str
    case: str = ""

    def personal(self) -> list[str]:
        """What must never reach anyone outside the jurisdiction, in clear or masked."""
        masked = [mask_id_number(self.id_number), mask_phone(self.phone)]
        return [self.name, self.id_number, self.phone, self.code, self.place[-1], *masked]

    def fields(self) -> dict[str, str]:
        return {
            "case": self.case,
            "name": self.name,
            "id_number": self.id_number,
            "code": self.code,
            "village": self.place[-1],
            "county": self.place[1],
            "place_path": "/".join(self.place),
        }


SIDES = {
    "zichuan": Side("zichuan", ZICHUAN, "ZC-1", "李春生", make_id_number("19650101", 41), "13300002486",
                    "c-zichuan", "v-zichuan"),
    "yiyuan": Side("yiyuan", YIYUAN, "YY-1", "朱桂英", make_id_number("19700202", 42, region="370499"),
                   "13900001357", "c-yiyuan", "v-yiyuan"),
    "sibling": Side("sibling", SIBLING, "KF-1", "孙秀兰", make_id_number("19750303", 43), "15800002468",
                    "c-sibling", "v-sibling"),
}  # fmt: skip
ADMIN_CHAT = "a-zichuan"  # an administrator of 淄博市/淄川区: may invite cadres, inside the jurisdiction only


def build_world(rt: runtime.Runtime) -> dict[str, Side]:
    """Three households with a declaration each, every case already in monitoring with a help measure; a cadre
    per county (the administrator in 淄川区 too) and each villager's chat bound to their person."""
    with rt.sessions.begin() as session:
        for side in SIDES.values():
            household = Household(code=side.code, region=get_or_create_region(session, side.place), status="脱贫户",
                                  is_registered_poor=True, size=3)  # fmt: skip
            person = Person(household=household, name=side.name, id_number=side.id_number, phone=side.phone)
            session.add(ChatIdentity(channel="rest", channel_user_id=side.villager_chat, person=person))
            cadre = Cadre(name=f"{side.place[1]}干部", region=get_or_create_region(session, side.place[:2]))
            session.add(ChatIdentity(channel="rest", channel_user_id=side.cadre_chat, cadre=cadre))
        admin = Cadre(name="淄川管理员", region=get_or_create_region(session, ZICHUAN[:2]), is_admin=True)
        session.add(ChatIdentity(channel="rest", channel_user_id=ADMIN_CHAT, cadre=admin))
    sides = {}
    for side in SIDES.values():
        declaration = Declaration(
            name=side.name, id_number=side.id_number, phone=side.phone, address=side.place[-1], cause="因病",
            amount=Decimal(30000), income=Decimal(24000), size=3, description="住院花了三万", channel="rest",
            channel_user_id=side.villager_chat, region_path="/".join(side.place), submission_key=side.key,
        )  # fmt: skip
        case = submit(rt.sessions, MonitoringRules.load(), declaration, describe=lambda v: v.case_no).case.case_no
        with rt.sessions.begin() as session:
            cadre = session.execute(
                select(Cadre).join(ChatIdentity).where(ChatIdentity.channel_user_id == side.cadre_chat)
            ).scalar_one()
            officer = Officer.of(cadre)
            for status in ("核实中", "纳入监测"):
                move_case(session, officer, case, status, "入户核实", lambda v: v.case_no)
            record_measure(session, officer, case, "临时救助", Decimal(2000), "住院")
        sides[side.key] = dataclasses.replace(side, case=case)
    return sides


def settings_for(database: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{database}", rasa_url="http://localhost:5005", action_port=5055, rasa_port=5005,
        log_level="INFO", handoff_contact="",
    )  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Side]]:
    """The migrated database with the world in it, built once; each test works on a copy (migrating is slow)."""
    database = tmp_path_factory.mktemp("cadre-access") / "template.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELPLINE_DATA_KEY", TEST_DATA_KEY)  # the key every test has (tests/conftest.py)
        crypto.configure(None)
        try:
            current = runtime.init(settings_for(database))
            upgrade(current.engine)
            sides = build_world(current)
        finally:
            runtime.reset()
            crypto.configure(None)
    return database, sides


@pytest.fixture
def rt(tmp_path: Path, template: tuple[Path, dict[str, Side]]) -> Iterator[runtime.Runtime]:
    """tests/actions/conftest.py's runtime, on a copy of the template database."""
    database = tmp_path / "actions.db"
    with sqlite3.connect(template[0]) as source, sqlite3.connect(database) as copy:
        source.backup(copy)
    source.close()
    copy.close()
    current = runtime.init(settings_for(database))
    yield current
    runtime.reset()


@pytest.fixture
def world(rt: runtime.Runtime, template: tuple[Path, dict[str, Side]]) -> dict[str, Side]:
    return template[1]


# --- what the database holds, and what a reply shows ------------------------------------------------------------------


def snapshot(rt: runtime.Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log (lookups are audited, and may be)."""
    with rt.engine.connect() as connection:
        return {
            table.name: [tuple(row) for row in connection.execute(select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
            if table.name != AuditEntry.__tablename__
        }


def audit_text(rt: runtime.Runtime) -> str:
    with rt.sessions() as session:
        rows = session.execute(select(AuditEntry.actor, AuditEntry.record_ref, AuditEntry.detail)).all()
    return json.dumps([list(row) for row in rows], ensure_ascii=False)


def shown(messages: list[dict[str, Any]]) -> str:
    """Everything a reply carries that a person can read: texts, buttons, and the content of any file sent."""
    parts = [text_of(messages)]
    for message in messages:
        parts += [f"{b.get('title')} {b.get('payload')}" for b in message.get("buttons") or []]
        document = (message.get("custom") or {}).get("document")
        if document:
            data = base64.b64decode(document["data"])
            if document["filename"].endswith(".xlsx"):
                sheet = load_workbook(io.BytesIO(data)).active
                parts += [str(cell) for row in sheet.iter_rows(values_only=True) for cell in row]
            else:
                parts.append(data.decode("utf-8-sig"))
    return "\n".join(parts)


def leaked(messages: list[dict[str, Any]], *sides: Side, asked: str = "") -> list[str]:
    """The personal data of `sides` that the reply shows, but for what the sender wrote themselves (`asked`)."""
    text = shown(messages)
    return [value for side in sides for value in side.personal() if value in text and value not in asked]


# --- the requests -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One message to one action; `{case}`, `{name}`, `{id_number}`, … name the target household's values.

    `form_slot` makes it a form validation's tracker (the answer extracted into that slot, in `form`).
    """

    action: str
    label: str
    text: str = ""
    entities: dict[str, str] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)
    form_slot: str | None = None
    form: str = ""
    says: str | None = None  # (c) what the reply must contain
    admin: bool = False  # (c) sent by the administrator of the jurisdiction

    def filled(self, target: Side) -> tuple[str, dict[str, str], dict[str, Any]]:
        values = target.fields()
        text = self.text.format(**values)
        entities = {k: v.format(**values) for k, v in self.entities.items()}
        slots = {k: v.format(**values) if isinstance(v, str) else v for k, v in self.slots.items()}
        return text, entities, slots

    def mentions(self, target: Side) -> str:
        """All that the sender wrote or holds in the tracker: a reply may repeat it without revealing anything."""
        text, entities, slots = self.filled(target)
        return json.dumps([text, entities, slots], ensure_ascii=False)

    def tracker(self, sender: str, target: Side, channel: str | None = None) -> Tracker:
        text, entities, slots = self.filled(target)
        metadata = {"channel": channel} if channel else {}
        if self.form_slot is not None:
            tracker = form_tracker(text, self.form_slot, slots=slots, sender=sender, form=self.form)
            tracker.latest_message["metadata"] = metadata
            return tracker
        return make_tracker(sender, text, "nlu_fallback", metadata=metadata, entities=entities, slots=slots)

    def __str__(self) -> str:
        return f"{self.action}: {self.label}"


MOVE_SLOTS = {"cadre_case": "{case}", "cadre_target": "风险消除"}
REQUESTS = [
    Request("action_cadre_cases", "a case by its number", "查一下{case}", says="没有编号为"),
    Request("action_cadre_cases", "a case by its button", entities={"case_no": "{case}"}, says="没有编号为"),
    Request("action_cadre_cases", "a move with its reason", "{case} 改成风险消除 已稳定", says="没有编号为"),
    Request(
        "action_cadre_cases",
        "a move by button (the reason would be asked)",
        entities={"case_no": "{case}", "target_status": "风险消除"},
        says="没有编号为",
    ),
    Request("action_cadre_cases", "a help measure", "给{case}登记临时救助2000元 住院", says="没有编号为"),
    Request("action_cadre_cases", "a household by 身份证号", "看看{id_number}这户", says="没查到这个身份证号"),
    Request("action_cadre_cases", "a household by name", "查下{name}家"),
    Request("action_cadre_cases", "an ABCD class by name", "{name}家定成A类 原因是能力强", says="没找到是哪一户"),
    Request("action_cadre_cases", "monitored households of a place", "{village}的监测户"),
    Request("action_cadre_cases", "a monitored page of a county", entities={"list": "monitored", "place": "{county}"}),
    Request("action_cadre_cases", "statistics in words", "各村有多少户 统计一下"),
    Request(
        "action_cadre_move", "the move after the form", slots={**MOVE_SLOTS, "cadre_note": "已稳定"}, says="没有编号为"
    ),
    Request("action_cadre_stats", "statistics", "统计一下", says="共 1 件"),
    Request("action_cadre_export", "the monitoring list", "导出监测名单 csv"),
    Request(
        "action_cadre_invite",
        "an invitation for a place",
        slots={"invite_name": "张丽", "invite_place": "{place_path}"},
        says="没找到",
        admin=True,
    ),
    Request(
        "validate_cadre_invite_form",
        "the invitation's place",
        "{village}",
        form_slot="invite_place",
        form="cadre_invite_form",
        slots={"invite_name": "张丽"},
        says="没找到这个地方",
        admin=True,
    ),
    Request("action_cadre_register", "an invitation asked for", "给{village}登记个新网格员", admin=True),
    Request(
        "validate_cadre_move_form",
        "the reason of a move",
        "已电话核实",
        form_slot="cadre_note",
        form="cadre_move_form",
        slots=MOVE_SLOTS,
    ),
    Request("action_ask_cadre_note", "the reason asked", slots=MOVE_SLOTS),
    Request("action_ask_invite_place", "the place asked", slots={"invite_name": "张丽"}),
]
# (c) needs a target outside the jurisdiction; the form steps read nothing, so they have nothing to show or change.
CROSS_REQUESTS = [r for r in REQUESTS if r.action not in FORM_STEPS]


def refused_as_workspace(events: list[dict[str, Any]], text: str) -> bool:
    return "只对登记过的干部开放" in text and events == []


def refused_place(events: list[dict[str, Any]], text: str) -> bool:
    slots = slots_of(events)
    return "只对登记过的干部开放" in text and slots.get("invite_place") == "" and slots.get("requested_slot") is None


def told_how_to_register(events: list[dict[str, Any]], text: str) -> bool:
    return "不会开通权限" in text and not any(e["event"] in ("followup", "slot") for e in events)


# How each cadre action refuses a non-cadre: every WorkspaceAction (found in the registry) as the workspace does;
# the registration action is open to all (it takes the invitation code), and tells a non-cadre how it works.
REFUSALS: dict[str, Callable[[list[dict[str, Any]], str], bool]] = {
    **{name: refused_as_workspace for name in WORKSPACE_ACTIONS},
    "validate_cadre_invite_form": refused_place,
    "action_cadre_register": told_how_to_register,
}


def test_every_cadre_action_is_probed() -> None:
    assert not set(NOT_CADRE) - set(REGISTRY), "not registered (any more): " + str(set(NOT_CADRE) - set(REGISTRY))
    assert not [n for n in NOT_CADRE if "cadre" in n or "invite" in n]
    assert set(WORKSPACE_ACTIONS) >= {"action_cadre_cases", "action_cadre_move", "action_cadre_invite"}
    assert not set(REFUSALS) & set(FORM_STEPS)
    unchecked = set(CADRE_ACTIONS) - set(REFUSALS) - set(FORM_STEPS)
    assert not unchecked, f"cadre actions with no refusal check: {sorted(unchecked)}"
    unprobed = set(CADRE_ACTIONS) - {r.action for r in REQUESTS}
    assert not unprobed, f"cadre actions with no request: {sorted(unprobed)}"
    not_crossed = set(WORKSPACE_ACTIONS) - {r.action for r in CROSS_REQUESTS}
    assert not not_crossed, f"workspace actions with no request from another jurisdiction: {sorted(not_crossed)}"


# --- (a) and (b): no identity, a villager ---------------------------------------------------------------------------

INTRUDERS = {
    "no chat identity": ("u-unknown", None),
    "a cadre's chat id on another channel": ("c-yiyuan", "telegram"),  # registered for "rest" only
    "a villager (the declarant)": ("v-yiyuan", None),
    "a villager of the jurisdiction": ("v-zichuan", None),
}
INTRUDER_REQUESTS = [r for r in REQUESTS if r.action in REFUSALS]


@pytest.mark.parametrize("intruder", list(INTRUDERS))
@pytest.mark.parametrize("request_", INTRUDER_REQUESTS, ids=str)
async def test_anyone_but_a_cadre_is_refused(
    rt: runtime.Runtime, world: dict[str, Side], domain: dict, intruder: str, request_: Request
) -> None:
    sender, channel = INTRUDERS[intruder]
    target = world["yiyuan"]
    before = snapshot(rt)
    events, messages = await run(REGISTRY[request_.action], request_.tracker(sender, target, channel), domain)
    assert REFUSALS[request_.action](events, text_of(messages)), (events, text_of(messages))
    assert not leaked(messages, *world.values())
    assert target.case not in shown(messages)
    assert not any(m.get("image") or m.get("custom") for m in messages)
    assert snapshot(rt) == before
    assert not [v for side in world.values() for v in side.personal() if v in audit_text(rt)]


@pytest.mark.parametrize("sender", ["u-unknown", "v-yiyuan", "c-zichuan"])
@pytest.mark.parametrize("request_", [r for r in REQUESTS if r.action in FORM_STEPS], ids=str)
async def test_the_cadre_form_steps_read_no_data(
    rt: runtime.Runtime,
    world: dict[str, Side],
    domain: dict,
    monkeypatch: pytest.MonkeyPatch,
    sender: str,
    request_: Request,
) -> None:
    """With the database taken away they still work: there is nothing in them to refuse; the form's end does."""

    class NoDatabase:
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a form step used the database")

        begin = __call__

    monkeypatch.setattr(runtime, "_runtime", dataclasses.replace(rt, sessions=NoDatabase()))
    events, messages = await run(REGISTRY[request_.action], request_.tracker(sender, world["yiyuan"]), domain)
    assert not leaked(messages, *world.values())
    assert not any(e["event"] == "followup" for e in events)


async def test_a_non_cadre_who_reaches_the_move_form_moves_nothing(
    rt: runtime.Runtime, world: dict[str, Side], domain: dict
) -> None:
    """The whole form (were a policy to predict it for a villager): the reason is taken, the move is refused."""
    case = world["yiyuan"].case
    before = snapshot(rt)
    slots = {"cadre_case": case, "cadre_target": "风险消除"}
    tracker = form_tracker("已稳定", "cadre_note", slots=slots, sender="v-yiyuan", form="cadre_move_form")
    validated, _ = await run(REGISTRY["validate_cadre_move_form"], tracker, domain)
    move = make_tracker("v-yiyuan", "已稳定", "nlu_fallback", slots={**slots, **slots_of(validated)})
    events, messages = await run(REGISTRY["action_cadre_move"], move, domain)
    assert refused_as_workspace(events, text_of(messages)) and snapshot(rt) == before


# --- (c) a cadre of another jurisdiction ------------------------------------------------------------------------------


@pytest.mark.parametrize("foreign", ["yiyuan", "sibling"])
@pytest.mark.parametrize("request_", CROSS_REQUESTS, ids=str)
async def test_a_cadre_learns_and_changes_nothing_outside_the_jurisdiction(
    rt: runtime.Runtime, world: dict[str, Side], domain: dict, foreign: str, request_: Request
) -> None:
    target = world[foreign]
    sender = ADMIN_CHAT if request_.admin else world["zichuan"].cadre_chat
    before = snapshot(rt)
    events, messages = await run(REGISTRY[request_.action], request_.tracker(sender, target), domain)
    text = text_of(messages)
    assert "只对登记过的干部开放" not in text  # a cadre, answered as one
    if request_.says:
        assert request_.says in text, text
    outside = [side for side in world.values() if side.key != "zichuan"]
    asked = request_.mentions(target)
    assert not leaked(messages, *outside, asked=asked), leaked(messages, *outside, asked=asked)
    if target.case not in asked:  # a case number not asked for is never shown
        assert not any(side.case in shown(messages) for side in outside)
    followups = {e["name"] for e in events if e["event"] == "followup"}
    assert followups <= ({"cadre_invite_form"} if request_.action == "action_cadre_register" else set())
    assert not any(e.get("value") for e in events if e["event"] == "slot" and e["name"] == "invite_place")
    assert snapshot(rt) == before
    assert not [v for side in outside for v in side.personal() if v in audit_text(rt)]


async def test_inside_the_jurisdiction_the_same_requests_work(
    rt: runtime.Runtime, world: dict[str, Side], domain: dict
) -> None:
    """The control: a cadre's own case is shown, moved and exported, so the refusals above are not an accident."""
    own = world["zichuan"]
    _, messages = await run(REGISTRY["action_cadre_cases"], make_tracker("c-zichuan", f"查一下{own.case}", "x"), domain)
    assert own.name in text_of(messages) and mask_id_number(own.id_number) in text_of(messages)
    _, messages = await run(REGISTRY["action_cadre_export"], make_tracker("c-zichuan", "导出 csv", "x"), domain)
    assert own.id_number in shown(messages)
    request = next(r for r in REQUESTS if r.label == "the move after the form")
    _, messages = await run(REGISTRY["action_cadre_move"], request.tracker("c-zichuan", own), domain)
    assert "已把" in text_of(messages)
    request = next(r for r in REQUESTS if r.action == "action_cadre_invite")
    _, messages = await run(REGISTRY["action_cadre_invite"], request.tracker(ADMIN_CHAT, own), domain)
    assert "邀请码" in text_of(messages)
