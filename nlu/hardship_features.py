"""Featurizer that tells the intent classifier whether a message names a cause of hardship, asks to declare one, or
asks how far something has got.

From a few hundred examples the classifier cannot learn every crop, illness and accident a villager may describe
("倒春寒 桃树全冻坏了"); the cause lexicon of nlu/hardship.py can. One feature per cause group, plus one for a request
to declare and one for a question of progress, set on the matching tokens and on the sentence. It is Rasa's
RegexFeaturizer with its patterns built from that lexicon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.fingerprint import files_digest
from nlu.hardship import CAUSE_WORDS, DECLARE_WORDS, PROGRESS_WORDS

_LEXICON = Path(__file__).resolve().parent / "hardship.py"


def hardship_patterns() -> list[dict[str, str]]:
    """The lexicon as RegexFeaturizer patterns: one per cause, a request to declare, a question of progress."""
    patterns = [{"name": f"hardship_{n}", "pattern": words.pattern} for n, (_, words) in enumerate(CAUSE_WORDS)]
    patterns.append({"name": "hardship_declare", "pattern": DECLARE_WORDS.pattern})
    patterns.append({"name": "progress_question", "pattern": PROGRESS_WORDS.pattern})
    return patterns


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class HardshipFeaturizer(RegexFeaturizer):
    """Sparse features: does the message name a cause of hardship, ask to declare, or ask about progress?"""

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        return files_digest(_LEXICON, Path(__file__))

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**RegexFeaturizer.get_default_config(), "case_sensitive": False}

    def train(self, training_data: TrainingData) -> Resource:
        self.known_patterns = hardship_patterns()
        self._persist()
        return self._resource
