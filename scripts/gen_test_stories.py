"""Write tests/test_stories.yml: one conversation per knowledge-base entry, asked as a villager would.

    .venv/bin/python scripts/gen_test_stories.py

The wording rotates over aliases and question endings so that no two entries are asked alike; the
result is committed and reviewed like any test, and a pytest checks that it still covers every entry.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions.services.knowledge import load_knowledge_base  # noqa: E402

ENDINGS = (
    "一年给多少钱啊", "是干啥的", "俺咋申请", "啥人能享受", "这事找谁问", "是个啥政策 给俺说说",
    "标准是多少", "俺家能不能办", "咋弄啊", "有啥好处", "具体咋回事", "怎么办理",
)  # fmt: skip
OPENERS = ("喂 有人在没 俺来问个事", "小助手 俺来打听打听", "您好啊 麻烦问个事儿")


def main() -> None:
    kb = load_knowledge_base()
    lines = ['version: "3.1"', "", "stories:"]
    for n, policy in enumerate(sorted(kb.policies.values(), key=lambda p: p.id)):
        aliases = [a for a in policy.aliases if len(a) >= 2] or [policy.name]
        alias = aliases[n % len(aliases)]
        question = f"{alias}{ENDINGS[n % len(ENDINGS)]}"
        lines += [f"  - story: {policy.id} ({policy.name})", "    steps:"]
        if n % 4 == 0:
            opener = OPENERS[n % len(OPENERS)]
            lines += [f"      - user: {opener}", "        intent: greet", "      - action: action_greet"]
        lines += [f"      - user: {question}", "        intent: ask_policy", "      - action: action_answer_policy"]
        if n % 5 == 0:
            lines += ["      - user: 中 知道了 谢谢恁", "        intent: thanks", "      - action: utter_thanks"]
    (ROOT / "tests" / "test_stories.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
