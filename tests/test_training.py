from __future__ import annotations

from pathlib import Path

from actions.training import fingerprint


def project(root: Path) -> Path:
    for folder in ("data/nlu", "data/kb", "nlu/dict", "nlu/__pycache__"):
        (root / folder).mkdir(parents=True)
    (root / "domain.yml").write_text("version: '3.1'\n", encoding="utf-8")
    (root / "data/nlu/basics.yml").write_text("nlu: []\n", encoding="utf-8")
    (root / "nlu/gate.py").write_text("X = 1\n", encoding="utf-8")
    config = root / "config.yml"
    config.write_text("pipeline: []\n", encoding="utf-8")
    return config


def test_a_change_to_a_custom_component_changes_the_fingerprint(tmp_path: Path) -> None:
    config = project(tmp_path)
    before = fingerprint(config, tmp_path)
    (tmp_path / "nlu/gate.py").write_text("X = 2\n", encoding="utf-8")
    assert fingerprint(config, tmp_path) != before


def test_byte_code_does_not_change_the_fingerprint(tmp_path: Path) -> None:
    config = project(tmp_path)
    before = fingerprint(config, tmp_path)
    (tmp_path / "nlu/__pycache__/gate.cpython-310.pyc").write_bytes(b"\x00")
    assert fingerprint(config, tmp_path) == before
