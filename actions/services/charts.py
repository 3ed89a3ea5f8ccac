"""Statistics as a PNG chart (matplotlib, Agg), with the Chinese labels in a CJK font installed on the machine.

The font comes from the machine's packages (Debian: fonts-wqy-microhei or fonts-noto-cjk; `make install` installs
the first where it can). Without one, Chinese would be drawn as empty boxes, so `ChartUnavailable` is raised
instead and the chat sends the figures as text.
"""

from __future__ import annotations

import dataclasses
import io
import json
from functools import lru_cache

from actions.services.workspace import Statistics

# Families known to cover simplified Chinese, preferred first.
CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)


class ChartUnavailable(RuntimeError):
    """No CJK font is installed, so a chart would show boxes for the Chinese labels."""


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of an installed font family that draws Chinese, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = next((family for family in CJK_FAMILIES if family in installed), None)
    if found is None:  # fonts installed after matplotlib built its cache
        font_manager.fontManager = font_manager._load_fontmanager(try_read_cache=False)  # type: ignore[attr-defined]
        installed = {f.name for f in font_manager.fontManager.ttflist}
        found = next((family for family in CJK_FAMILIES if family in installed), None)
    return found


def _bars(ax, title: str, counts: dict[str, int], color: str) -> None:  # type: ignore[no-untyped-def]
    labels = list(counts) or ["(无)"]
    values = [counts[k] for k in counts] or [0]
    bars = ax.barh(labels[::-1], values[::-1], color=color)
    ax.set_title(title, fontsize=12)
    ax.bar_label(bars, padding=2, fontsize=9)
    ax.xaxis.set_visible(False)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(0, max([*values, 1]) * 1.25)


def warm_up() -> None:
    """Import matplotlib and find the font at start-up, not in the first cadre's request (about a second)."""
    if cjk_font() is not None:
        _pyplot()


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def statistics_png(stats: Statistics, top_places: int = 8) -> bytes:
    """Four panels: cases by status, by category, by place; households by ABCD class. PNG bytes.

    The same figures give the same picture, so a chart is drawn once (drawing takes ~0.1 s of CPU; cadres ask for
    the same jurisdiction's statistics again and again until a case changes).
    """
    family = cjk_font()
    if family is None:
        raise ChartUnavailable("no CJK font installed")
    return _draw(json.dumps(dataclasses.asdict(stats), ensure_ascii=False), top_places, family)


@lru_cache(maxsize=64)
def _draw(figures: str, top_places: int, family: str) -> bytes:
    stats = Statistics(**json.loads(figures))
    plt = _pyplot()
    places = dict(list(stats.by_village.items())[:top_places])
    with plt.rc_context({"font.family": family, "axes.unicode_minus": False}):
        fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), dpi=110)
        _bars(axes[0][0], "按状态(件)", stats.by_status, "#4C72B0")
        _bars(axes[0][1], "按监测类别(件)", stats.by_category, "#DD8452")
        _bars(axes[1][0], f"按地方(件,前 {top_places})", places, "#55A868")
        _bars(axes[1][1], "农户 ABCD 分类(户)", stats.by_abcd, "#8172B3")
        name = stats.jurisdiction.split("/")[-1]
        fig.suptitle(f"{name} 困难申报统计:共 {stats.total} 件,超期未核实 {stats.overdue} 件", fontsize=14)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
    return buffer.getvalue()
