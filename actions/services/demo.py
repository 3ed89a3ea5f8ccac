"""Synthetic demo data (data/demo/): households through the real importer, cadres with chat identities."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actions.services.household_import import ImportReport, import_households
from actions.services.identities import add_cadre

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo"


@dataclass
class DemoReport:
    households: ImportReport
    cadres_created: int = 0
    cadres_existing: int = 0


def load_demo(sessions: Any, demo_dir: Path = DEMO_DIR) -> DemoReport:
    """Load the demo households and cadres; loading twice changes nothing."""
    households = import_households(sessions, demo_dir / "households.csv", synthetic=True)
    if households.errors:
        return DemoReport(households)
    report = DemoReport(households)
    with (demo_dir / "cadres.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with sessions.begin() as session:
        for row in rows:
            cadre, created = add_cadre(
                session,
                name=row["姓名"],
                region_path=row["地区"],
                chat_id=row["chat_id"],
                channel=row["渠道"],
                admin=row["管理员"] == "是",
            )
            cadre.is_synthetic = True
            if created:
                report.cadres_created += 1
            else:
                report.cadres_existing += 1
    return report
