"""Conversations run with `rasa test core`: tests/test_stories.yml asks about every knowledge-base entry,
tests/test_stories_insurance.yml walks the 齐惠保 enrollment form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from actions.services.knowledge import load_knowledge_base, normalize
from actions.settings import PROJECT_ROOT

STORIES = PROJECT_ROOT / "tests" / "test_stories.yml"
STORY_FILES = [
    STORIES,
    *(PROJECT_ROOT / "tests" / f"test_stories_{topic}.yml" for topic in ("insurance", "declaration")),
]


def test_stories_ask_about_every_entry_by_one_of_its_names() -> None:
    kb = load_knowledge_base()
    stories = yaml.safe_load(STORIES.read_text(encoding="utf-8"))["stories"]
    asked: set[str] = set()
    for story in stories:
        for step in story["steps"]:
            if step.get("intent") == "ask_policy":
                text = normalize(str(step["user"]))
                asked |= {pid for alias, pid in kb.aliases.items() if alias in text}
    assert asked >= set(kb.policies), sorted(set(kb.policies) - asked)


@pytest.mark.integration
@pytest.mark.parametrize("stories", STORY_FILES, ids=lambda p: p.name)
def test_conversations_pass(test_model: Path, tmp_path: Path, stories: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "rasa", "test", "core",
            "--model", str(test_model),
            "--stories", str(stories),
            "--out", str(tmp_path),
            "--fail-on-prediction-errors",
        ],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    failed = (tmp_path / "failed_test_stories.yml").read_text(encoding="utf-8") if result.returncode else ""
    assert result.returncode == 0, failed or result.stdout[-3000:]
