"""Scan logs for personal data and secrets that must never be written there (issue 9, item 5).

    python scripts/scan_logs.py PATH [PATH ...] [--secret VALUE ...] [--old-ids]

Every file under the given paths (directories recursively; *.log, rotated *.log.1 and *.gz, any other text file;
binary files such as SQLite databases are skipped) is searched for

- a valid 18-digit 身份证号 (GB 11643-1999: real birth date, MOD 11-2 check), and with --old-ids a valid 15-digit one;
- a mainland mobile number, 1[3-9] and 9 more digits;
- a Telegram bot token, <bot id>:<35 or so characters>;
- the literal secrets given with --secret, and the values of TELEGRAM_BOT_TOKEN (also its part after the colon),
  TELEGRAM_WEBHOOK_SECRET and HELPLINE_DATA_KEY when they are set.

A number counts only as a whole token: not inside a longer run of digits or letters (a timestamp, a hash, an id)
and not the fraction of a decimal. Masked values (3704**********1234, 138****5678, <token>) are not findings.

Each finding is printed as `file:line:kind masked-value`; the value itself is never printed. Exit status: 0 clean,
1 something found, 2 usage error (no path, a path that does not exist, a secret too short to search for).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from actions.services.idcard import mask_id_number, mask_phone, validate_id_number

CLEAN, FOUND, USAGE = 0, 1, 2
SECRET_ENV = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "HELPLINE_DATA_KEY")
MIN_SECRET = 8  # a shorter literal would match ordinary words and numbers
SKIP_DIRS = {".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
SNIFF = 8192

# Not preceded or followed by an ASCII letter or digit, nor part of a decimal (0.13812345678).
_START = r"(?<![0-9A-Za-z])(?<![0-9]\.)"
_END = r"(?![0-9A-Za-z])(?!\.[0-9])"
ID18 = re.compile(_START + r"([1-9][0-9]{16}[0-9Xx])" + _END)
ID15 = re.compile(_START + r"([1-9][0-9]{14})" + _END)
PHONE = re.compile(_START + r"(?:(?:\+|00)86[-\s]?)?(1[3-9][0-9]{9})" + _END)
TOKEN = re.compile(r"(?<![0-9])([0-9]{6,12}:[A-Za-z0-9_-]{30,})")


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    kind: str
    masked: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.kind} {self.masked}"


@dataclass(frozen=True)
class Secret:
    name: str  # how a finding names it: "secret:TELEGRAM_WEBHOOK_SECRET", "secret:--secret 1"
    value: str


def mask_token(token: str) -> str:
    """12********:******** — the first two digits of the bot id stay, so two bots can be told apart."""
    bot_id, _, _ = token.partition(":")
    return bot_id[:2] + "*" * (len(bot_id) - 2) + ":********"


def secrets_from(given: Sequence[str], environ: dict[str, str]) -> tuple[list[Secret], list[str]]:
    """The literal secrets to look for, and warnings for environment values too short to search for."""
    secrets = [Secret(f"secret:--secret {n}", value) for n, value in enumerate(given, 1)]
    warnings = []
    for name in SECRET_ENV:
        value = environ.get(name, "").strip()
        if not value:
            continue
        if len(value) < MIN_SECRET:
            warnings.append(f"{name} 太短(少于 {MIN_SECRET} 个字符),没有搜索它")
            continue
        secrets.append(Secret(f"secret:{name}", value))
        if name == "TELEGRAM_BOT_TOKEN" and ":" in value and len(value.split(":", 1)[1]) >= MIN_SECRET:
            secrets.append(Secret(f"secret:{name}", value.split(":", 1)[1]))
    return secrets, warnings


def _blank(text: str, start: int, end: int) -> str:
    """The span replaced by a character that is neither a digit nor a letter, so later patterns skip it."""
    return text[:start] + "#" * (end - start) + text[end:]


def scan_line(text: str, secrets: Sequence[Secret] = (), old_ids: bool = False) -> Iterator[tuple[str, str]]:
    """(kind, masked value) for each finding in one line; a span found once is not reported again as another kind."""
    for secret in sorted(secrets, key=lambda s: -len(s.value)):
        start = text.find(secret.value)
        while start >= 0:
            yield secret.name, "*" * 8
            text = _blank(text, start, start + len(secret.value))
            start = text.find(secret.value, start + len(secret.value))
    for match in TOKEN.finditer(text):
        yield "telegram_token", mask_token(match.group(1))
        text = _blank(text, *match.span(1))
    for pattern, kind in ((ID18, "id_number"), *(((ID15, "id_number_15"),) if old_ids else ())):
        for match in pattern.finditer(text):
            if validate_id_number(match.group(1)).ok:
                yield kind, mask_id_number(match.group(1))
                text = _blank(text, *match.span(1))
    for match in PHONE.finditer(text):
        yield "phone", mask_phone(match.group(1))


def _open(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def is_text(path: Path) -> bool:
    """Not a binary file (a NUL byte in its first block); a .gz file is judged by what it holds."""
    try:
        with _open(path) as f:
            return b"\0" not in f.read(SNIFF)
    except (OSError, EOFError):
        return False


def files_under(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
            continue
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(names):
                yield Path(folder) / name


def scan_file(path: Path, secrets: Sequence[Secret] = (), old_ids: bool = False) -> Iterator[Finding]:
    with _open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.decode("utf-8", errors="replace")
            for kind, masked in scan_line(line, secrets, old_ids):
                yield Finding(path, number, kind, masked)


def scan(paths: Iterable[Path], secrets: Sequence[Secret] = (), old_ids: bool = False) -> tuple[list[Finding], int]:
    """The findings in every text file under `paths`, and how many files were read."""
    findings: list[Finding] = []
    read = 0
    for path in files_under(paths):
        if path.is_symlink() or not path.is_file() or not is_text(path):
            continue
        read += 1
        try:
            findings += scan_file(path, secrets, old_ids)
        except (OSError, EOFError) as exc:  # a file that vanished or a truncated .gz: say so, keep going
            print(f"{path}: 读不了({type(exc).__name__})", file=sys.stderr)
    return findings, read


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scan_logs.py",
        description="在日志里查找身份证号、手机号、Telegram 机器人 token 和给定的密钥(输出只显示遮住后的值)",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="日志文件或目录(目录递归查找)")
    parser.add_argument("--secret", action="append", default=[], help="还要查找的密钥原文(可重复)")
    parser.add_argument("--old-ids", action="store_true", help="也查 15 位的旧身份证号(误报更多)")
    return parser


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed why
        return USAGE if exc.code else CLEAN
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"找不到:{', '.join(missing)}", file=sys.stderr)
        return USAGE
    short = [n for n, s in enumerate(args.secret, 1) if len(s.strip()) < MIN_SECRET]
    if short:
        print(f"--secret 第 {short} 个太短:至少 {MIN_SECRET} 个字符", file=sys.stderr)
        return USAGE
    secrets, warnings = secrets_from([s.strip() for s in args.secret], dict(os.environ if environ is None else environ))
    for warning in warnings:
        print(warning, file=sys.stderr)
    findings, read = scan(args.paths, secrets, args.old_ids)
    for finding in findings:
        print(finding)
    if findings:
        files = len({f.path for f in findings})
        print(f"在 {files} 个文件里发现 {len(findings)} 处敏感信息(共查了 {read} 个文件)", file=sys.stderr)
        return FOUND
    print(f"没有发现敏感信息(共查了 {read} 个文件)", file=sys.stderr)
    return CLEAN


if __name__ == "__main__":
    sys.exit(main())
