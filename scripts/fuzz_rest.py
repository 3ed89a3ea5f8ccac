"""Run the seeded REST fuzz of tests/integration/test_fuzz.py against a running bot and print the figures.

    .venv/bin/python scripts/fuzz_rest.py [--url http://localhost:5005] [--seed 20261124] [--messages 10000]
        [--senders 200] [--concurrency 16] [--deadline 600] [--database-url sqlite:///var/helpline.db]
        [--report var/test/fuzz-report.json]

The messages, the driver and the checks are those of the test (tests/fuzz/generator.py). The senders are named
fuzz-<seed>-<time>-<n>: new conversations at every run, the same messages for the same seed. With --database-url
it also audits what the fuzz senders left in that database (cases and enrollments only through completed forms, no
cadre role, every stored 身份证号 valid, notifications escaped); it reads the encrypted 身份证号 with the bot's key
(HELPLINE_DATA_KEY, or var/data.key for the embedded SQLite database). Exit status 1 when any check found something.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz.generator import (  # noqa: E402
    audit_database,
    check_run,
    conversations,
    format_summary,
    privileged_state,
    run_fuzz,
    summarize,
)

DATABASE_PROBLEMS = (
    "cadre_identities",
    "cases_not_through_form",
    "enrollments_not_through_form",
    "invalid_id_numbers",
    "notifications_with_raw_markup",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:5005", help="the Rasa server")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds before the run is stopped")
    parser.add_argument("--database-url", help="the bot's case database, to audit what the fuzz left there")
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    prefix = f"fuzz-{args.seed}-{time.strftime('%Y%m%d%H%M%S')}-"  # new conversations at every run
    convs = conversations(args.seed, args.messages, args.senders, prefix=prefix)
    before = privileged_state(args.database_url) if args.database_url else None

    def progress(sent: int) -> None:
        if sent % 1000 == 0:
            print(f"  {sent} messages sent", file=sys.stderr, flush=True)

    run = asyncio.run(
        run_fuzz(args.url.rstrip("/"), convs, concurrency=args.concurrency, deadline=args.deadline, progress=progress)
    )
    findings = check_run(run)
    summary = summarize(run, findings, args.seed, args.concurrency)
    failed = bool(findings) or not run.finished
    if args.database_url:
        audit = audit_database(args.database_url, convs, run, prefix=prefix)
        after = privileged_state(args.database_url)
        audit["privileged_before"], audit["privileged_after"] = before, after
        summary["database"] = audit
        failed = failed or before != after or any(audit[k] for k in DATABASE_PROBLEMS)
    print(format_summary(summary))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
