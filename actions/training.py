"""Model fingerprints: train only when the training data, domain, config or dictionary changed."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

from actions.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

TRAINING_DATA = ("data/nlu", "data/rules", "data/stories")
# nlu/ holds the custom components and the jieba dictionary; data/kb feeds the KB featurizer and extractor.
FINGERPRINT_INPUTS = ("domain.yml", *TRAINING_DATA, "nlu", "data/kb")


def is_input(path: Path) -> bool:
    """A source file a model depends on (not Python's byte-code cache)."""
    return path.is_file() and "__pycache__" not in path.parts


def fingerprint(config: Path, root: Path = PROJECT_ROOT) -> str:
    """A hash of everything a trained model depends on, Rasa's version included."""
    import rasa

    digest = hashlib.sha256(rasa.__version__.encode())
    inputs: list[Path] = []
    for name in FINGERPRINT_INPUTS:
        path = root / name
        inputs.extend([path] if path.is_file() else sorted(p for p in path.rglob("*") if is_input(p)))
    files = [config, *inputs]
    for path in files:
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_path(config: Path, out: Path, root: Path = PROJECT_ROOT) -> Path:
    return out / f"helpline-{fingerprint(config, root)}.tar.gz"


def training_data_args(root: Path = PROJECT_ROOT) -> list[str]:
    return [str(root / d) for d in TRAINING_DATA if (root / d).is_dir()]


def train(config: Path, out: Path, *, force: bool = False, root: Path = PROJECT_ROOT) -> tuple[Path, bool]:
    """Train unless a model for the same inputs exists; returns (model, trained)."""
    target = model_path(config, out, root)
    if target.exists() and not force:
        return target, False
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "rasa", "train",
        "--config", str(config),
        "--domain", str(root / "domain.yml"),
        "--data", *training_data_args(root),
        "--out", str(out),
        "--fixed-model-name", target.name.removesuffix(".tar.gz"),
        "--force",
    ]  # fmt: skip
    subprocess.run(command, cwd=root, check=True)
    if not target.exists():
        raise RuntimeError(f"rasa train finished without writing {target}")
    return target, True
