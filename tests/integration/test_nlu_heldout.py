"""Intent accuracy of the trained model on held-out examples that are never used for training."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from actions.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration

HELDOUT = sorted((PROJECT_ROOT / "tests" / "nlu").glob("heldout_*.yml"))
# A second split, written without seeing the training data or the first split (see its files' headers).
BLIND = sorted((PROJECT_ROOT / "tests" / "nlu" / "blind").glob("*.yml"))
MIN_ACCURACY = 0.85
MAX_WRONG_INTENT = 0.08


def heldout_examples(paths: list[Path] = HELDOUT) -> list[tuple[str, str]]:
    """(intent, text) of every held-out message; Rasa's loader strips the gold entity annotations."""
    from rasa.shared.nlu.training_data.loading import load_data

    examples = []
    for path in paths:
        for message in load_data(str(path)).intent_examples:
            examples.append((message.get("intent"), message.get("text")))
    return examples


def training_examples() -> set[str]:
    texts = set()
    for path in (PROJECT_ROOT / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            texts.update(line.strip().removeprefix("- ").strip() for line in block.get("examples", "").splitlines())
    return texts


def normalized(text: str) -> str:
    """Lower case, without spaces and punctuation: a copied example stays a copy."""
    return "".join(ch for ch in text.lower() if ch.isalnum() or "\u4e00" <= ch <= "\u9fff") or text


def test_heldout_examples_are_not_in_training_data() -> None:
    training = {normalized(t) for t in training_examples()}
    assert not [text for _, text in heldout_examples(HELDOUT + BLIND) if normalized(text) in training]
    assert len(heldout_examples(BLIND)) >= 300


def test_heldout_intent_accuracy(test_model: Path) -> None:
    """Right intent for most held-out messages; a wrong intent (a wrong answer) for very few.

    A clarification (nlu_fallback) is never a wrong answer, but it only counts as right for out_of_scope.
    """
    from rasa.core.agent import Agent

    agent = Agent.load(str(test_model))
    examples = heldout_examples()

    async def parse_all() -> list[str]:
        return [(await agent.parse_message(text))["intent"]["name"] for _, text in examples]

    predicted = asyncio.run(parse_all())
    results = list(zip(examples, predicted, strict=True))
    correct = [p == i or (i == "out_of_scope" and p == "nlu_fallback") for (i, _), p in results]
    wrong = [(t, i, p) for (i, t), p in results if p not in (i, "nlu_fallback")]
    accuracy = sum(correct) / len(results)
    print(f"held-out: {len(results)} examples, accuracy {accuracy:.1%}, wrong intent {len(wrong)}")
    assert accuracy >= MIN_ACCURACY, [(t, i, p) for ((i, t), p), ok in zip(results, correct, strict=True) if not ok]
    assert len(wrong) / len(results) <= MAX_WRONG_INTENT, wrong
