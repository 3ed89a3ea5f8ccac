"""`python -m actions.rasa_server run …`: Rasa's own command line, with measured fixes applied first.

Each fix keeps Rasa's behaviour and results and removes per-message work found by profiling the Rasa process under
load (`py-spy record -f raw` during `bench/load.py`; the figures are in bench/README.md):

- `validate`: Rasa 3.6 checks every custom action's response with `jsonschema.validate`, which validates the *schema*
  itself (`check_schema`) on every call before validating the response: about 70% of the Rasa process's CPU. Here
  each distinct schema is checked and compiled once (the same validator class, errors and best match).
- `SequentialGraphRunner.run`: Rasa runs its model graph (the NLU pipeline, then the policies) through dask's
  synchronous scheduler, which orders the graph again on every message (~8% of the CPU). Here the order for a set
  of targets is computed once and the nodes are called in it, with the same inputs and outputs.
- `copy_slot`: every tracker Rasa builds (several per message: copies, prior states for the rule policy) copies
  each of the domain's slots with `copy.copy`, which goes through the generic `__reduce_ex__` protocol (~9%).
  Here a slot copies itself the way that protocol does for it: a new instance with the same attribute dict.
- `no_fail_safe`: Rasa wraps the tracker store in a fail-safe that, when the database cannot be read, answers the
  message from an empty tracker (the villager's half-filled form forgotten, the reply a non sequitur) and keeps
  that message's events in memory only. Here the error reaches the REST channel (`actions.channels`), which tells
  the villager to send the message again; the stored conversation is untouched and resumes when the database is
  back. (A correctness fix, not a speed one.)
- `run_remote_action` / `run_form`: when the action server cannot run a custom action (it is down, restarting, or
  answered 5xx), Rasa logs the error and goes on without a word: the villager hears nothing. Here the villager gets
  an apology (`utter_action_failed`, or the submit's own `utter_decl_failed`, with the answers kept for 再提交), and a
  form's answer that could not be validated is not kept unvalidated. (A correctness fix, not a speed one.)
- `quiet_payload_parsing`: a message starting with "/" is read as an intent payload; when it does not parse, Rasa
  warns with the whole message, which can hold a 身份证号. Here the warning names no text. (A privacy fix.)
- `resolve_event_type`: every stored event is rebuilt by searching all `Event` subclasses, recursively, for its type
  name (~3%). Here the search is done once per type name.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import jsonschema
from jsonschema import exceptions
from jsonschema.validators import validator_for
from rasa.engine.exceptions import GraphRunError

logger = logging.getLogger(__name__)
_original_validate = jsonschema.validate
_original_resolve_by_type: Any = None
_compiled: dict[str, Any] = {}
_lock = threading.Lock()


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """jsonschema.validate, with each schema checked and compiled once."""
    if cls is not None or args or kwargs:
        _original_validate(instance, schema, cls, *args, **kwargs)
        return
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _compiled.get(key)
    if validator is None:
        with _lock:
            validator = _compiled.get(key)
            if validator is None:
                validator_class = validator_for(schema)
                validator_class.check_schema(schema)
                validator = _compiled[key] = validator_class(schema)
    error = exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


class SequentialGraphRunner:
    """The body of `DaskGraphRunner.run` without dask: the same nodes, called in a dependency order that is
    computed once per set of targets. As in dask, a node receives the output tuple of each node it needs, the
    `(name, value)` tuple of each input, and the name itself when it is neither (a literal)."""

    @staticmethod
    def plan(schema: Any, targets: tuple[str, ...]) -> list[tuple[str, list[str]]]:
        nodes = schema.minimal_graph_schema(list(targets)).nodes
        ordered: list[tuple[str, list[str]]] = []
        state: dict[str, int] = {}  # 1 = being visited, 2 = done

        def visit(name: str) -> None:
            if state.get(name) == 2 or name not in nodes:
                return
            if state.get(name) == 1:
                raise GraphRunError(f"the graph has a cycle through '{name}'")
            state[name] = 1
            needs = list(nodes[name].needs.values())
            for dependency in needs:
                visit(dependency)
            state[name] = 2
            ordered.append((name, needs))

        for target in targets:
            visit(target)
        return ordered

    @staticmethod
    def run(runner: Any, inputs: dict[str, Any] | None = None, targets: list[str] | None = None) -> dict[str, Any]:
        run_targets = tuple(targets if targets else runner._graph_schema.target_names)
        plans = runner.__dict__.setdefault("_sequential_plans", {})
        plan = plans.get(run_targets)
        if plan is None:
            plan = plans[run_targets] = SequentialGraphRunner.plan(runner._graph_schema, run_targets)
        results: dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and any(value == node for node, _ in plan):
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure that none of the input names "
                    f"passed to the `run` method are the same as node names in the graph schema."
                )
            results[name] = (name, value)
        try:
            for name, needs in plan:
                args = [results.get(need, need) for need in needs]
                results[name] = runner._instantiated_nodes[name](*args)
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(results[target] for target in run_targets)


def copy_slot(slot: Any) -> Any:
    """`copy.copy(slot)` for Rasa's slots (plain classes: no `__slots__`, no `__getstate__` / `__reduce__`)."""
    new = slot.__class__.__new__(slot.__class__)
    new.__dict__.update(slot.__dict__)
    return new


_event_types: dict[str, Any] = {}


def resolve_event_type(type_name: str, default: Any = None) -> Any:
    """`Event.resolve_by_type`, with the class found for each type name remembered."""
    found = _event_types.get(type_name)
    if found is None:
        found = _original_resolve_by_type(type_name, default)
        if found is not None and found is not default:
            _event_types[type_name] = found
    return found


def no_fail_safe(store: Any, domain: Any) -> Any:
    """`Agent._create_tracker_store` without the `FailSafeTrackerStore` wrapper."""
    from rasa.core.tracker_store import InMemoryTrackerStore

    if store is None:
        return InMemoryTrackerStore(domain)
    store.domain = domain
    return store


# What a failed custom action leaves behind, beyond the apology: the declaration's answers are kept for 再提交, as
# action_declare_submit does itself when the database fails (data/rules/declaration.yml).
FAILED_ACTION_RESPONSES = {"action_declare_submit": "utter_decl_failed"}
FAILED_ACTION_SLOTS = {"action_declare_submit": {"decl_pending": True}}
GENERIC_FAILURE = "utter_action_failed"
_original_remote_run: Any = None
_original_form_run: Any = None


async def _apology(response: str, nlg: Any, tracker: Any, output_channel: Any) -> list[Any]:
    from rasa.core.actions.action import create_bot_utterance

    message = await nlg.generate(response, tracker, output_channel.name())
    return [create_bot_utterance(message)] if message else []


def _failed(error: Exception) -> bool:
    """A custom action the action server could not run (not a form's rejection of an answer, which is normal)."""
    from rasa.core.actions.action import ActionExecutionRejection
    from rasa.shared.exceptions import RasaException

    return isinstance(error, RasaException) and not isinstance(error, ActionExecutionRejection)


async def run_remote_action(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> list[Any]:
    """`RemoteAction.run`, with an apology instead of silence when the action server cannot run the action."""
    from rasa.shared.core.events import SlotSet

    try:
        return await _original_remote_run(self, output_channel, nlg, tracker, domain)  # type: ignore[no-any-return]
    except Exception as error:
        name = self.name()
        if not _failed(error) or name.startswith("validate_"):
            raise  # a form's validation: the form's own wrapper answers
        logger.warning("custom action %s could not run: %s", name, type(error).__name__)
        events = await _apology(FAILED_ACTION_RESPONSES.get(name, GENERIC_FAILURE), nlg, tracker, output_channel)
        return events + [SlotSet(slot, value) for slot, value in FAILED_ACTION_SLOTS.get(name, {}).items()]


async def run_form(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> list[Any]:
    """`FormAction.run`: when the form's validation cannot run, an apology, and this turn's answers to the form are
    set aside rather than kept unvalidated (the form asks again once the action server is back)."""
    from rasa.shared.core.events import SlotSet, UserUttered

    try:
        return await _original_form_run(self, output_channel, nlg, tracker, domain)  # type: ignore[no-any-return]
    except Exception as error:
        if not _failed(error):
            raise
        logger.warning("form %s could not validate: %s", self.name(), type(error).__name__)
        form_slots = set(self.required_slots(domain))
        unvalidated: list[str] = []
        for event in reversed(tracker.events):
            if isinstance(event, UserUttered):
                break
            if isinstance(event, SlotSet) and event.key in form_slots and event.key not in unvalidated:
                unvalidated.append(event.key)
        events = await _apology(GENERIC_FAILURE, nlg, tracker, output_channel)
        return events + [SlotSet(slot, None) for slot in unvalidated]


class TextFreeLogger:
    """A structlog logger that drops the message text from what it logs (`user_text`, `text`)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if not callable(method):
            return method

        def log(event: str, *args: Any, **fields: Any) -> Any:
            for key in ("user_text", "text"):
                if key in fields:
                    fields[key] = f"<{len(str(fields[key]))} characters>"
            return method(event, *args, **fields)

        return log


def quiet_payload_parsing() -> None:
    import warnings

    from rasa.shared.core.training_data.story_reader import yaml_story_reader

    warnings.filterwarnings("ignore", message="Failed to parse arguments in line")
    if not isinstance(yaml_story_reader.structlogger, TextFreeLogger):
        yaml_story_reader.structlogger = TextFreeLogger(yaml_story_reader.structlogger)


def install() -> None:
    global _original_resolve_by_type, _original_remote_run, _original_form_run
    from rasa.core.actions.action import RemoteAction
    from rasa.core.actions.forms import FormAction
    from rasa.core.agent import Agent
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import Event
    from rasa.shared.core.slots import Slot

    jsonschema.validate = validate  # rasa imports it at call time (`from jsonschema import validate`)
    DaskGraphRunner.run = SequentialGraphRunner.run  # type: ignore[method-assign, assignment]
    Slot.__copy__ = copy_slot  # type: ignore[attr-defined]
    if _original_resolve_by_type is None:
        _original_resolve_by_type = Event.resolve_by_type
    Event.resolve_by_type = staticmethod(resolve_event_type)  # type: ignore[method-assign, assignment]
    Agent._create_tracker_store = staticmethod(no_fail_safe)  # type: ignore[method-assign, assignment]
    if _original_remote_run is None:
        _original_remote_run, _original_form_run = RemoteAction.run, FormAction.run
    RemoteAction.run = run_remote_action  # type: ignore[method-assign]
    FormAction.run = run_form  # type: ignore[method-assign]
    quiet_payload_parsing()


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
