"""The fix Rasa's server runs with: action responses validated as before, each schema checked once."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from actions import rasa_server

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
    rasa_server.install()
    from jsonschema import validate

    assert validate is rasa_server.validate
    assert DaskGraphRunner.run is rasa_server.SequentialGraphRunner.run
    assert Slot.__copy__ is rasa_server.copy_slot  # type: ignore[attr-defined]
    assert Event.resolve_by_type is rasa_server.resolve_event_type


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
