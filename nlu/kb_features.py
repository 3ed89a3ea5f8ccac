"""Featurizer that tells the intent classifier whether a message names a programme of the knowledge base.

The intent classifier sees words and character n-grams; from a few thousand examples it cannot know that
孝善基金 is a policy while 淘宝退货 is not, so "孝善基金咋弄" and "淘宝退货咋弄" look alike. This component adds one
feature per entity type (by default only `policy`): set on the tokens inside a knowledge-base name and on
the sentence. It is Rasa's RegexFeaturizer with its patterns built from data/kb instead of lookup tables,
copied into the model at training time like the entity extractor's names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.fingerprint import KnowledgeBaseFingerprint
from nlu.policy_entities import knowledge_base_terms


def alternation(terms: list[str]) -> str:
    """One regular expression matching any of the terms, longest first."""
    return "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class KnowledgeBaseFeaturizer(KnowledgeBaseFingerprint, RegexFeaturizer):
    """A sparse feature per entity type: does the message name one of the knowledge base's terms?"""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **RegexFeaturizer.get_default_config(),
            "knowledge_base": "data/kb",
            "entity_types": ["policy"],
            "case_sensitive": False,
        }

    def train(self, training_data: TrainingData) -> Resource:
        terms = knowledge_base_terms(Path(self._config["knowledge_base"]))
        self.known_patterns = [
            {"name": f"kb_{entity_type}", "pattern": alternation(list(terms[entity_type]))}
            for entity_type in self._config["entity_types"]
            if terms.get(entity_type)
        ]
        self._persist()
        return self._resource
