"""The action server registers exactly what the domain names: every custom action and form validation."""

from __future__ import annotations

from typing import Any

from rasa_sdk.executor import ActionExecutor


def test_the_action_package_registers_every_action_of_the_domain(domain: dict[str, Any]) -> None:
    executor = ActionExecutor()
    executor.register_package("actions")  # raises when a class without a name would be registered
    custom = {a for a in domain["actions"] if a.startswith(("action_", "validate_"))}
    assert custom <= set(executor.actions), sorted(custom - set(executor.actions))
