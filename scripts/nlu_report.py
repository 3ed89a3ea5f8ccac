"""Summarise `rasa test nlu` results: intent macro-F1, the confusion pairs that remain; fail below a bar.

python scripts/nlu_report.py RESULTS_DIR --min-macro-f1 0.95
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--min-macro-f1", type=float, default=0.95)
    args = parser.parse_args()
    report = json.loads((args.results / "intent_report.json").read_text(encoding="utf-8"))
    macro = report["macro avg"]["f1-score"]
    print(f"intent macro-F1 {macro:.4f}  weighted-F1 {report['weighted avg']['f1-score']:.4f}")
    for intent, scores in sorted(report.items()):
        if isinstance(scores, dict) and "support" in scores and not intent.endswith(" avg"):
            print(f"  {intent:16s} P {scores['precision']:.3f}  R {scores['recall']:.3f}  F1 {scores['f1-score']:.3f}")
    errors_file = args.results / "intent_errors.json"
    if errors_file.exists():
        errors = json.loads(errors_file.read_text(encoding="utf-8"))
        pairs = Counter((e["intent"], e["intent_prediction"]["name"]) for e in errors)
        print("confusion pairs (true → predicted: count):")
        for (true, predicted), count in pairs.most_common():
            print(f"  {true} → {predicted}: {count}")
    if macro < args.min_macro_f1:
        print(f"FAIL: macro-F1 {macro:.4f} < {args.min_macro_f1}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
