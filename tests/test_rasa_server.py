"""The fix Rasa's server runs with: action responses validated as before, each schema checked once."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import jsonschema
import pytest
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from actions import rasa_server
from actions.settings import PROJECT_ROOT

SPEC = RemoteAction.action_response_format_spec()


def test_responses_are_validated_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    good: dict[str, Any] = {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": [{"text": "好"}]}
    bad: dict[str, Any] = {"events": "not a list", "responses": []}
    rasa_server.validate(good, SPEC)
    with pytest.raises(jsonschema.ValidationError) as ours:
        rasa_server.validate(bad, SPEC)
    with pytest.raises(jsonschema.ValidationError) as theirs:
        jsonschema.validate(bad, SPEC)
    assert ours.value.message == theirs.value.message


def test_each_schema_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = []
    validator_class = jsonschema.validators.validator_for(SPEC)
    original = validator_class.check_schema
    monkeypatch.setattr(validator_class, "check_schema", classmethod(lambda cls, s: checks.append(s) or original(s)))
    monkeypatch.setattr(rasa_server, "_compiled", {})
    for _ in range(5):
        rasa_server.validate({"events": [], "responses": []}, RemoteAction.action_response_format_spec())
    assert len(checks) == 1


def test_install_replaces_what_rasa_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import Event
    from rasa.shared.core.slots import Slot

    monkeypatch.setattr(jsonschema, "validate", jsonschema.validate)  # each restored after the test
    monkeypatch.setattr(DaskGraphRunner, "run", DaskGraphRunner.run)
    monkeypatch.setattr(Event, "resolve_by_type", vars(Event)["resolve_by_type"])
    monkeypatch.setattr(Slot, "__copy__", None, raising=False)
    monkeypatch.delattr(Slot, "__copy__")
    from rasa.core.actions.forms import FormAction
    from rasa.core.agent import Agent

    monkeypatch.setattr(Agent, "_create_tracker_store", vars(Agent)["_create_tracker_store"])
    monkeypatch.setattr(RemoteAction, "run", RemoteAction.run)
    monkeypatch.setattr(FormAction, "run", FormAction.run, raising=False)
    rasa_server.install()
    from jsonschema import validate

    assert validate is rasa_server.validate
    assert DaskGraphRunner.run is rasa_server.SequentialGraphRunner.run
    assert Slot.__copy__ is rasa_server.copy_slot  # type: ignore[attr-defined]
    assert Event.resolve_by_type is rasa_server.resolve_event_type
    assert RemoteAction.run is rasa_server.run_remote_action
    assert FormAction.run is rasa_server.run_form
    assert Agent._create_tracker_store(None, Domain.empty()).__class__.__name__ == "InMemoryTrackerStore"


def test_the_graph_runs_as_under_dask(tmp_path: Any) -> None:
    """A trained-model-free graph: the sequential run gives dask's results, inputs, literals and order included."""
    from rasa.engine.graph import ExecutionContext, GraphSchema, SchemaNode
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    from tests.graph_nodes import Recorder

    calls: list[str] = []
    Recorder.calls = calls

    def node(needs: dict[str, str], tag: str) -> SchemaNode:
        return SchemaNode(needs=needs, uses=Recorder, fn="run", constructor_name="create", config={"tag": tag})

    schema = GraphSchema(
        {
            "a": node({"x": "__input__"}, "a"),
            "b": node({"x": "a"}, "b"),
            "c": node({"x": "a", "y": "b"}, "c"),
            "d": node({"x": "a", "y": "not_a_node"}, "d"),
            "unused": node({"x": "a"}, "unused"),
        }
    )
    runner = DaskGraphRunner(schema, LocalModelStorage(tmp_path), ExecutionContext(schema, "test"))
    expected = runner.run(inputs={"__input__": 1}, targets=["c"])
    dask_calls = list(calls)
    calls.clear()
    got = rasa_server.SequentialGraphRunner.run(runner, inputs={"__input__": 1}, targets=["c"])
    assert got == expected == {"c": "c(a(1), b(a(1)))"}
    assert calls == dask_calls == ["a", "b", "c"]
    both = rasa_server.SequentialGraphRunner.run(runner, inputs={"__input__": 2}, targets=["b", "a"])
    assert both == runner.run(inputs={"__input__": 2}, targets=["b", "a"]) == {"b": "b(a(2))", "a": "a(2)"}
    for run in (runner.run, lambda **kw: rasa_server.SequentialGraphRunner.run(runner, **kw)):
        with pytest.raises(rasa_server.GraphRunError):  # an input that names a node
            run(inputs={"__input__": "a"}, targets=["c"])
        with pytest.raises(rasa_server.GraphRunError):  # a need that is neither a node nor an input
            run(inputs={"__input__": 1}, targets=["d"])


def test_event_types_resolve_as_before() -> None:
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

    original = rasa_server._original_resolve_by_type or Event.resolve_by_type
    for name, cls in (("user", UserUttered), ("slot", SlotSet), ("action", ActionExecuted)):
        assert rasa_server.resolve_event_type(name) is cls is original(name)
    assert rasa_server.resolve_event_type("topic") is None
    assert rasa_server.resolve_event_type("no such event", SlotSet) is SlotSet
    with pytest.raises(ValueError):
        rasa_server.resolve_event_type("no such event")


def test_slots_copy_as_copy_copy_did() -> None:
    import copy

    from rasa.shared.core.slots import AnySlot, BooleanSlot, CategoricalSlot, FloatSlot, ListSlot, Slot, TextSlot

    for cls in (Slot, AnySlot, BooleanSlot, CategoricalSlot, FloatSlot, ListSlot, TextSlot):
        assert not hasattr(cls, "__slots__") or cls.__slots__ == ()
        assert "__getstate__" not in vars(cls) and "__reduce_ex__" not in vars(cls) and "__reduce__" not in vars(cls)
    slots = [
        TextSlot("name", mappings=[{"type": "from_text"}], initial_value="张三"),
        CategoricalSlot("cause", mappings=[], values=["疾病", "灾害"], initial_value="疾病"),
        ListSlot("items", mappings=[], initial_value=[1, 2]),
        FloatSlot("amount", mappings=[], max_value=1e9, initial_value=3.0),
    ]
    for slot in slots:
        theirs = copy._reconstruct(slot, None, *slot.__reduce_ex__(4))  # type: ignore[attr-defined]  # copy.copy's way
        ours = rasa_server.copy_slot(slot)
        assert type(ours) is type(slot) and ours is not slot
        assert vars(ours) == vars(theirs) == vars(slot)
        ours.value = "changed"
        assert slot.value != "changed"
        assert ours.as_feature() is not None


# When the action server cannot run an action: an apology, never silence, and nothing kept unvalidated.


@pytest.fixture
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> EndpointConfig:
    """The action server's endpoint, on a port nobody listens on; the wrappers installed for this test only."""
    from rasa.core.actions.forms import FormAction

    monkeypatch.setattr(rasa_server, "_original_remote_run", RemoteAction.run)
    monkeypatch.setattr(rasa_server, "_original_form_run", FormAction.run)
    monkeypatch.setattr(RemoteAction, "run", rasa_server.run_remote_action)
    monkeypatch.setattr(FormAction, "run", rasa_server.run_form, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return EndpointConfig(f"http://127.0.0.1:{port}/webhook")


def _run(action: Any, tracker: DialogueStateTracker, domain: Domain) -> list[Any]:
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    return asyncio.run(action.run(CollectingOutputChannel(), nlg, tracker, domain))


def test_an_action_the_action_server_cannot_run_gets_an_apology(domain: Domain, unreachable: EndpointConfig) -> None:
    tracker = DialogueStateTracker.from_events("s", [UserUttered("低保咋申请")], domain.slots)
    events = _run(RemoteAction("action_answer_policy", unreachable), tracker, domain)
    assert [type(e).__name__ for e in events] == ["BotUttered"]
    assert events[0].text == domain.responses["utter_action_failed"][0]["text"]


def test_a_submit_that_cannot_run_keeps_the_answers_for_another_try(
    domain: Domain, unreachable: EndpointConfig
) -> None:
    tracker = DialogueStateTracker.from_events("s", [UserUttered("提交")], domain.slots)
    events = _run(RemoteAction("action_declare_submit", unreachable), tracker, domain)
    assert events[0].text == domain.responses["utter_decl_failed"][0]["text"]
    assert events[1:] == [SlotSet("decl_pending", True)]


def test_a_form_answer_that_cannot_be_validated_is_not_kept(domain: Domain, unreachable: EndpointConfig) -> None:
    from rasa.core.actions.forms import FormAction

    with pytest.raises(RasaException):  # a validation alone is not answered: the form's wrapper does it
        _run(RemoteAction("validate_declaration_form", unreachable), DialogueStateTracker("s", domain.slots), domain)
    tracker = DialogueStateTracker.from_events(
        "s",
        [
            ActionExecuted("declaration_form"),
            ActiveLoop("declaration_form"),
            SlotSet("requested_slot", "decl_id_number"),
            UserUttered("110105194912310021"),
            SlotSet("decl_id_number", "110105194912310021"),  # extracted, not yet validated
        ],
        domain.slots,
    )
    events = _run(FormAction("declaration_form", unreachable), tracker, domain)
    assert events[0].text == domain.responses["utter_action_failed"][0]["text"]
    assert events[1:] == [SlotSet("decl_id_number", None)]


def test_a_rejected_answer_is_still_a_rejection(domain: Domain, monkeypatch: pytest.MonkeyPatch) -> None:
    async def rejecting(*_args: Any) -> list[Any]:
        raise ActionExecutionRejection("validate_declaration_form")

    monkeypatch.setattr(rasa_server, "_original_remote_run", rejecting)
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    tracker = DialogueStateTracker("s", domain.slots)
    action = RemoteAction("action_declare_submit", None)
    with pytest.raises(ActionExecutionRejection):
        asyncio.run(rasa_server.run_remote_action(action, CollectingOutputChannel(), nlg, tracker, domain))


def test_a_payload_that_does_not_parse_is_not_logged_with_its_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    from rasa.shared.core.training_data.story_reader import yaml_story_reader
    from rasa.shared.nlu.training_data.message import Message

    monkeypatch.setattr(yaml_story_reader, "structlogger", yaml_story_reader.structlogger)
    secret = "11010519491231002X"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rasa_server.quiet_payload_parsing()
        for text in (f"/greet{{not json {secret}", f"/{secret} 这是我的号", f'/greet{{"x": "{secret}"}} 多余'):
            yaml_story_reader.YAMLStoryReader.unpack_regex_message(Message.build(text), None)
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err
    assert not [w for w in caught if secret in str(w.message)]
