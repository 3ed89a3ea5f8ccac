"""A minimal graph component for tests of graph running (tests/test_rasa_server.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage


class Recorder(GraphComponent):
    """Returns a string naming its tag and its inputs; records the order of the calls."""

    calls: ClassVar[list[str]] = []

    def __init__(self, tag: str) -> None:
        self.tag = tag

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> Recorder:
        return cls(config["tag"])

    def run(self, x: Any, y: Any = None, z: Any = None) -> str:
        Recorder.calls.append(self.tag)
        return f"{self.tag}({', '.join(str(v) for v in (x, y, z) if v is not None)})"
