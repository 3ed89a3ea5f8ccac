"""What Rasa's training cache must also see change: a component's own code and the files it reads.

Rasa reuses a trained component from `.rasa/cache` when its class name, config and inputs are unchanged.
The components in this package also depend on their source code and, for the knowledge-base ones, on
data/kb. These mixins give Rasa a digest of those (`fingerprint_addon`), so editing either retrains the
component. Put the mixin first among the bases, before GraphComponent.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
# The code that turns data/kb into the knowledge-base components' terms.
KNOWLEDGE_BASE_CODE = (
    _ROOT / "nlu" / "kb_features.py",
    _ROOT / "nlu" / "policy_entities.py",
    _ROOT / "actions" / "services" / "knowledge.py",
)


def files_digest(*paths: Path) -> str:
    """SHA-256 over the given files and the files below the given directories, in a stable order."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(file.name.encode())
            digest.update(file.read_bytes() if file.exists() else b"")
    return digest.hexdigest()


class CodeFingerprint:
    """Retrain the component when its module's source changes."""

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        return files_digest(Path(inspect.getfile(cls)))


class KnowledgeBaseFingerprint:
    """Retrain the component when the knowledge base (config `knowledge_base`) or the code reading it changes."""

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        return files_digest(Path(config.get("knowledge_base", "data/kb")), *KNOWLEDGE_BASE_CODE)
