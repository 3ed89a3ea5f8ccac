"""scripts/scan_logs.py: what it finds, that it never prints a found value, and what it lets pass."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from actions.settings import PROJECT_ROOT
from tests.conftest import make_id_number

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
from scan_logs import CLEAN, FOUND, USAGE, main, scan_line

ID = make_id_number("19650101", 41)  # 370399196501010418-like, valid
ID_X = "11010519491231002X"  # the GB 11643 example, check character X
OLD_ID = "370399650101041"  # 15 digits: 1965-01-01
PHONE = "13812345678"
TOKEN = "7000001:AAH-end-to-end-secret-token_xyzABCDEFG"
NO_ENV: dict[str, str] = {}


def kinds(line: str, old_ids: bool = False) -> list[str]:
    return [kind for kind, _ in scan_line(line, old_ids=old_ids)]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (f"2026-11-24 10:00:01 INFO actions.declaration: 身份证{ID}已提交", ["id_number"]),
        (f"id_number={ID_X.lower()} ok", ["id_number"]),
        (f'{{"text": "我的手机号{PHONE}"}}', ["phone"]),
        (f"phone=+86{PHONE};", ["phone"]),
        (f"call 0086-{PHONE} now", ["phone"]),
        (f"GET https://api.telegram.org/bot{TOKEN}/getUpdates", ["telegram_token"]),
        (f"{ID} {PHONE}", ["id_number", "phone"]),
    ],
)
def test_personal_data_and_tokens_are_found(line: str, found: list[str]) -> None:
    assert kinds(line) == found


@pytest.mark.parametrize(
    "line",
    [
        "身份证 3704**********1234 已核对",  # masked as the bot shows it
        "手机 138****5678",
        "POST https://api.telegram.org/bot<token>/sendMessage",
        "2026-11-24 13:05:12,345 INFO took 1732406400123 ms",  # an epoch in ms: 13 digits
        "update 138123456789 handled",  # 12 digits: longer than a phone number
        "id 913812345678 and 013812345678",
        "latency 0.13812345678 s and 13812345678.5 ms",  # decimals
        "sha256 a13812345678f0e1d2 and trace 13812345678abc",  # inside a hex run
        f"{ID[:-1]}{'0' if ID[-1] != '0' else '1'} wrong check digit",
        "370399196513010418 no 13th month",
        f"{ID}0 nineteen digits",
        "12345678901 does not start with 1[3-9]... 10012345678",
        "SB-2026-000123 case 2026000123",
    ],
)
def test_masked_values_and_other_numbers_are_not_findings(line: str) -> None:
    assert kinds(line) == []


def test_old_ids_only_when_asked() -> None:
    assert kinds(f"旧证 {OLD_ID}") == []
    assert kinds(f"旧证 {OLD_ID}", old_ids=True) == ["id_number_15"]
    assert kinds("invalid 370399651301041", old_ids=True) == []  # month 13


def test_a_token_is_one_finding_not_a_token_and_a_phone() -> None:
    assert kinds(f"bot1234567:AAH{PHONE}xxxxxxxxxxxxxxxxxxxxxxxxx/getMe") == ["telegram_token"]


def test_findings_are_printed_masked_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write(tmp_path, "logs/rasa.log", f"start\n用户说 我的身份证是{ID} 电话{PHONE}\nbot{TOKEN}\n")
    assert main([str(tmp_path / "logs")], environ=NO_ENV) == FOUND
    out = capsys.readouterr()
    assert out.out.splitlines() == [
        f"{log}:2:id_number {ID[:4]}**********{ID[-4:]}",
        f"{log}:2:phone 138****5678",
        f"{log}:3:telegram_token 70*****:********",
    ]
    everything = out.out + out.err
    assert ID not in everything and PHONE not in everything and TOKEN.split(":")[1] not in everything
    assert "1 个文件" in out.err and "3 处" in out.err


def test_literal_secrets_from_the_command_line_and_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "bot.log", "webhook secret is hook-secret_1\nkey=c2VjcmV0LWRhdGEta2V5LTAx\nsomething-else-42\n")
    environ = {"TELEGRAM_WEBHOOK_SECRET": "hook-secret_1", "HELPLINE_DATA_KEY": "c2VjcmV0LWRhdGEta2V5LTAx"}
    assert main([str(tmp_path), "--secret", "something-else"], environ=environ) == FOUND
    out = capsys.readouterr()
    assert [line.split(":", 1)[1] for line in out.out.splitlines()] == [
        "1:secret:TELEGRAM_WEBHOOK_SECRET ********",
        "2:secret:HELPLINE_DATA_KEY ********",
        "3:secret:--secret 1 ********",
    ]
    assert "hook-secret_1" not in out.out + out.err and "something-else" not in out.out + out.err


def test_the_token_secret_part_alone_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "a.log", f"auth failed for {TOKEN.split(':')[1]}\n")
    assert main([str(tmp_path)], environ={"TELEGRAM_BOT_TOKEN": TOKEN}) == FOUND
    assert capsys.readouterr().out.strip().endswith(":1:secret:TELEGRAM_BOT_TOKEN ********")


def test_clean_logs_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "logs/actions.log", "2026-11-24 10:00:01,123 INFO actions.server: listening on 127.0.0.1:5055\n")
    write(tmp_path, "logs/rasa.log", "身份证 3704**********1234 手机 138****5678 update 1732406400123\n")
    write(tmp_path, "logs/nested/telegram.log", "POST .../bot<token>/getUpdates 200\n")
    assert main([str(tmp_path / "logs")], environ=NO_ENV) == CLEAN
    out = capsys.readouterr()
    assert out.out == "" and "共查了 3 个文件" in out.err


def test_binary_files_are_skipped_and_gzipped_logs_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "helpline.db").write_bytes(b"SQLite format 3\0" + ID.encode())
    with gzip.open(tmp_path / "rasa.log.1.gz", "wt", encoding="utf-8") as f:
        f.write(f"old line\n{PHONE}\n")
    assert main([str(tmp_path)], environ=NO_ENV) == FOUND
    assert capsys.readouterr().out.splitlines() == [f"{tmp_path / 'rasa.log.1.gz'}:2:phone 138****5678"]


def test_a_file_in_a_legacy_encoding_is_still_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gbk.log").write_bytes(f"电话 {PHONE}\n".encode("gbk"))
    assert main([str(tmp_path / "gbk.log")], environ=NO_ENV) == FOUND


@pytest.mark.parametrize(
    "argv", [[], ["/nonexistent/scan-logs-test"], ["{tmp}", "--secret", "short"], ["{tmp}", "--no-such-option"]]
)
def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv], environ=NO_ENV) == USAGE


def test_a_short_secret_in_the_environment_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.log", "s3cret\n")
    assert main([str(tmp_path)], environ={"TELEGRAM_WEBHOOK_SECRET": "s3cret"}) == CLEAN
    assert "TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err


def test_it_runs_as_a_script(tmp_path: Path) -> None:
    write(tmp_path, "x.log", f"{PHONE}\n")
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "scan_logs.py"), str(tmp_path)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    assert done.returncode == FOUND and PHONE not in done.stdout + done.stderr
