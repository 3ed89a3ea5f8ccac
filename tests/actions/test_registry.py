"""The action server registers exactly what the domain names: every custom action and form validation."""

from __future__ import annotations

from typing import Any

from rasa_sdk import FormValidationAction
from rasa_sdk.executor import ActionExecutor


def domain_actions(domain: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Action name → its options (`- name` or `- name: {send_domain: true}`)."""
    actions: dict[str, dict[str, Any]] = {}
    for entry in domain["actions"]:
        if isinstance(entry, str):
            actions[entry] = {}
        else:
            actions.update({name: options or {} for name, options in entry.items()})
    return actions


def test_the_action_package_registers_every_action_of_the_domain(domain: dict[str, Any]) -> None:
    executor = ActionExecutor()
    executor.register_package("actions")  # raises when a class without a name would be registered
    custom = {a for a in domain_actions(domain) if a.startswith(("action_", "validate_"))}
    assert custom <= set(executor.actions), sorted(custom - set(executor.actions))


def test_actions_that_read_the_domain_are_sent_it(domain: dict[str, Any]) -> None:
    """endpoints.yml enables the selective domain: a form validation reads its form's slots from the domain, and
    the greeting its menu; without `send_domain` they would get an empty domain."""
    executor = ActionExecutor()
    executor.register_package("actions")
    validations = {name for name, run in executor.actions.items() if isinstance(run.__self__, FormValidationAction)}
    assert validations, "no form validation registered"
    sent = {name for name, options in domain_actions(domain).items() if options.get("send_domain")}
    assert validations | {"action_greet"} <= sent
