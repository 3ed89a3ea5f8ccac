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
    monkeypatch.setattr(jsonschema, "validate", jsonschema.validate)  # restored after the test
    rasa_server.install()
    from jsonschema import validate

    assert validate is rasa_server.validate
