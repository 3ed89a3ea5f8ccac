"""Entity extractor for policy questions: which policy, which region, which aspect.

The names come from the knowledge base (data/kb): every alias of an entry, typos included, maps to the
entry's id; every name of a place maps to its path; aspect words map to amount, eligibility, apply, contact
or what. The maps are copied into the model at training time, so a model answers with the knowledge base
it was trained with. Matching is exact and longest-first; near misses are left to the answer action, which
asks with buttons instead of guessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from actions.services.knowledge import find_terms, load_knowledge_base
from nlu.fingerprint import KnowledgeBaseFingerprint

MAPS_FILE = "terms.json"
ENTITY_TYPES = ("policy", "region", "aspect")


def knowledge_base_terms(directory: Path) -> dict[str, dict[str, str]]:
    """Normalised name → value for each entity type: policy aliases, place names, aspect words."""
    kb = load_knowledge_base(directory)
    return {"policy": kb.aliases, "region": kb.region_aliases, "aspect": kb.aspect_words}


def _original_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Map offsets in the white-space-free text back to the original text."""
    positions = [i for i, ch in enumerate(text) if not ch.isspace()]
    return positions[start], positions[end - 1] + 1


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class PolicyEntityExtractor(KnowledgeBaseFingerprint, GraphComponent, EntityExtractorMixin):
    """Finds policy, region and aspect entities by the knowledge base's names."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"knowledge_base": "data/kb"}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        terms: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.terms = terms or {name: {} for name in ENTITY_TYPES}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PolicyEntityExtractor:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        self.terms = knowledge_base_terms(Path(self._config["knowledge_base"]))
        with self._model_storage.write_to(self._resource) as directory:
            (directory / MAPS_FILE).write_text(json.dumps(self.terms, ensure_ascii=False), encoding="utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> PolicyEntityExtractor:
        with model_storage.read_from(resource) as directory:
            terms = json.loads((directory / MAPS_FILE).read_text(encoding="utf-8"))
        return cls(config, model_storage, resource, terms)

    def extract(self, text: str) -> list[dict[str, Any]]:
        entities = []
        for entity_type in ENTITY_TYPES:
            seen: set[str] = set()
            for start, end, value in find_terms(text, self.terms.get(entity_type, {})):
                if value in seen:
                    continue
                seen.add(value)
                begin, finish = _original_span(text, start, end)
                entities.append(
                    {
                        "entity": entity_type,
                        "value": value,
                        "start": begin,
                        "end": finish,
                        "confidence_entity": 1.0,
                        "extractor": self.__class__.__name__,
                    }
                )
        return sorted(entities, key=lambda e: e["start"])

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text:
                continue
            found = self.extract(text)
            if found:
                message.set(ENTITIES, [*message.get(ENTITIES, []), *found], add_to_output=True)
        return messages
