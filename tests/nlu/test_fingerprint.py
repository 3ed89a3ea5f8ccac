from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import nlu.linear_intent
from actions.settings import PROJECT_ROOT
from nlu.evidence_gate import EvidenceGate
from nlu.fingerprint import files_digest
from nlu.kb_features import KnowledgeBaseFeaturizer
from nlu.linear_intent import LinearIntentClassifier
from nlu.policy_entities import PolicyEntityExtractor


@pytest.mark.parametrize("component", [KnowledgeBaseFeaturizer, PolicyEntityExtractor])
def test_editing_the_knowledge_base_changes_the_fingerprint(tmp_path: Path, component: type) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(PROJECT_ROOT / "data" / "kb", kb)
    config = {"knowledge_base": str(kb)}
    before = component.fingerprint_addon(config)
    assert component.fingerprint_addon(config) == before
    entry = sorted(kb.glob("*.yml"))[0]
    entry.write_text(entry.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert component.fingerprint_addon(config) != before


def test_code_components_fingerprint_their_own_source() -> None:
    assert LinearIntentClassifier.fingerprint_addon({}) == files_digest(Path(nlu.linear_intent.__file__))
    assert EvidenceGate.fingerprint_addon({}) != LinearIntentClassifier.fingerprint_addon({})


def test_digest_skips_byte_code(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    before = files_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-310.pyc").write_bytes(b"\0")
    assert files_digest(tmp_path) == before
