"""`python -m actions.rasa_server run …`: Rasa's own command line, with one measured fix applied first.

Rasa 3.6 checks every custom action's response with `jsonschema.validate`, which validates the *schema* itself
(`check_schema`) on every call before validating the response. Profiling the Rasa process under load
(`py-spy record` during `bench/load.py`, 20 conversations) put about 70% of its CPU time there. The fix keeps the
validation and its result (the same validator class, the same errors, the same best match) but checks and compiles
each distinct schema once per process.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import jsonschema
from jsonschema import exceptions
from jsonschema.validators import validator_for

_original_validate = jsonschema.validate
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


def install() -> None:
    jsonschema.validate = validate  # rasa imports it at call time (`from jsonschema import validate`)


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
