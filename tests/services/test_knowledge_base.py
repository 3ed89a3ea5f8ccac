"""The knowledge base is traceable to the seed reports, complete, and unambiguous."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from actions.services.knowledge import (
    ASPECTS,
    KnowledgeBase,
    Policy,
    find_terms,
    load_knowledge_base,
    normalize,
    region_relation,
    suggest,
)
from actions.settings import PROJECT_ROOT

SEEDS = Path(os.environ.get("SEEDS_DIR", PROJECT_ROOT.parent / "shared" / "seeds"))
NUMBER = re.compile(r"\d+(?:\.\d+)?")
REQUIRED = {
    "dibao", "tekun", "linshi_jiuzhu", "canji_butie", "wuzhangai", "weifang", "jiaoyu_zizhu", "yulu",
    "yibao_daijiao", "xianzhenliao", "liangmian", "menzhen_manxing", "wuchong_baozhang", "jiating_yisheng",
    "gongyi_gangwei", "fupin_chejian", "xiaoe_xindai", "aixin_chaoshi", "xiaoshan_yanglao", "shineng_zhaoliao",
    "yinshui", "chanye_shouyi", "chanyebao", "shouyibao", "tehuibao", "qihuibao", "linzi_shouru",
    "zichuan_jiance", "yiyuan_fangpin", "diyi_cunyi", "jinling_zhihui_yanglao", "zichan_shouyi", "abcd",
    "fangfanpin_jiance", "zizhu_shenbao", "lianchun_dangjian", "sibuzhai",
}  # fmt: skip


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge_base()


@pytest.fixture(scope="module")
def reports(kb: KnowledgeBase) -> dict[str, str]:
    import yaml

    files = yaml.safe_load((PROJECT_ROOT / "data" / "kb" / "sources.yml").read_text(encoding="utf-8"))["sources"]
    assert SEEDS.is_dir(), f"seed reports not found at {SEEDS} (set SEEDS_DIR)"
    return {key: (SEEDS / meta["file"]).read_text(encoding="utf-8") for key, meta in files.items()}


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def numbers(text: str) -> set[float]:
    return {float(n) for n in NUMBER.findall(text)}


def stated_texts(policy: Policy) -> list[str]:
    """Everything the bot may say about an entry."""
    texts = [policy.name, policy.summary, *policy.cadre]
    texts += [t for t in (policy.eligibility, policy.apply, policy.contact) if t]
    for benefit in policy.benefits:
        texts += [benefit.text, benefit.effective or ""]
    return texts


def test_every_required_programme_has_an_entry(kb: KnowledgeBase) -> None:
    assert set(kb.policies) >= REQUIRED, sorted(REQUIRED - set(kb.policies))


def test_every_entry_has_a_source_quoted_from_its_report(kb: KnowledgeBase, reports: dict[str, str]) -> None:
    missing = [
        (p.id, s.quote[:30])
        for p in kb.policies.values()
        for s in p.sources
        if flat(s.quote) not in flat(reports[s.report])
    ]
    assert all(p.sources for p in kb.policies.values())
    assert not missing


def test_every_number_appears_in_the_seed_reports(kb: KnowledgeBase, reports: dict[str, str]) -> None:
    seed_numbers = set().union(*(numbers(text) for text in reports.values()))
    stray = {(p.id, n) for p in kb.policies.values() for text in stated_texts(p) for n in numbers(text) - seed_numbers}
    assert not stray


def test_every_figure_is_backed_by_the_entrys_own_quotes(kb: KnowledgeBase) -> None:
    stray = set()
    for p in kb.policies.values():
        quoted = set().union(*(numbers(s.quote) for s in p.sources))
        for text in [b.text for b in p.benefits] + list(p.cadre):
            stray |= {(p.id, n) for n in numbers(text) - quoted}
    assert not stray


def test_aliases_are_unique_and_map_to_one_entry(kb: KnowledgeBase) -> None:
    seen: dict[str, str] = {}
    for p in kb.policies.values():
        for alias in {normalize(a) for a in (p.name, *p.aliases)}:
            assert seen.setdefault(alias, p.id) == p.id, alias


def test_no_stray_lines_of_the_reports_made_it_in(kb: KnowledgeBase) -> None:
    spam = ("牛杂", "precious", "代理服务器", "举报网站", "感恩祝福", "氤氲", "QQ", "版权声明")
    assert not [(p.id, w) for p in kb.policies.values() for t in stated_texts(p) for w in spam if w in t]


def test_regions_are_known_places(kb: KnowledgeBase) -> None:
    assert not [p.id for p in kb.policies.values() if p.region not in kb.regions]


def test_aspect_words_cover_every_aspect(kb: KnowledgeBase) -> None:
    assert set(kb.aspects) == set(ASPECTS)


def test_known_figures(kb: KnowledgeBase) -> None:
    assert any(
        "5220" in b.text and b.effective and b.effective.startswith("2020-07") for b in kb.policies["dibao"].benefits
    )
    assert any("5616" in b.text for b in kb.policies["tekun"].benefits)
    qihuibao = " ".join(b.text for b in kb.policies["qihuibao"].benefits)
    assert "99" in qihuibao and "10" in qihuibao
    assert kb.policies["dibao"].region.startswith("枣庄市")
    assert kb.policies["qihuibao"].region.startswith("淄博市")


def test_longest_alias_wins(kb: KnowledgeBase) -> None:
    found = find_terms("淄博齐惠保一年多少钱", kb.aliases)
    assert [value for _, _, value in found] == ["qihuibao"]


def test_typo_outside_the_aliases_is_suggested_not_matched(kb: KnowledgeBase) -> None:
    assert find_terms("齐回保多少钱", kb.aliases) == []
    assert "qihuibao" in suggest("齐回保多少钱", kb)


def test_region_relation(kb: KnowledgeBase) -> None:
    dibao = kb.policies["dibao"]
    assert region_relation(dibao, None) == "unknown"
    assert region_relation(dibao, "枣庄市/山亭区") == "inside"
    assert region_relation(dibao, "淄博市") == "other"
    assert region_relation(kb.policies["linzi_shouru"], "淄博市") == "part"
