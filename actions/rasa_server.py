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
- `resolve_event_type`: every stored event is rebuilt by searching all `Event` subclasses, recursively, for its type
  name (~3%). Here the search is done once per type name.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import jsonschema
from jsonschema import exceptions
from jsonschema.validators import validator_for
from rasa.engine.exceptions import GraphRunError

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


def install() -> None:
    global _original_resolve_by_type
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import Event
    from rasa.shared.core.slots import Slot

    jsonschema.validate = validate  # rasa imports it at call time (`from jsonschema import validate`)
    DaskGraphRunner.run = SequentialGraphRunner.run  # type: ignore[method-assign, assignment]
    Slot.__copy__ = copy_slot  # type: ignore[attr-defined]
    if _original_resolve_by_type is None:
        _original_resolve_by_type = Event.resolve_by_type
    Event.resolve_by_type = staticmethod(resolve_event_type)  # type: ignore[method-assign, assignment]


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
