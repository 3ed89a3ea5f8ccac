"""Where the data key comes from: HELPLINE_DATA_KEY, or for an embedded SQLite database a key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from actions import crypto

SQLITE = "sqlite:////srv/helpline/helpline.db"
POSTGRES = "postgresql+psycopg2://helpline@db.internal/helpline"


def test_the_environment_key_wins(tmp_path: Path) -> None:
    secret = crypto.new_secret()
    for url in (SQLITE, POSTGRES):
        assert crypto.load_secret(url, {"HELPLINE_DATA_KEY": secret}, tmp_path / "data.key") == crypto.decode_secret(
            secret
        )
    assert not (tmp_path / "data.key").exists()


def test_an_embedded_sqlite_database_makes_its_key_file_once(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "data.key"
    first = crypto.load_secret(SQLITE, {}, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert crypto.load_secret(SQLITE, {"DATABASE_URL": SQLITE}, key_file) == first
    assert len(first) >= crypto.MIN_SECRET_BYTES


def test_a_server_database_needs_the_environment_key(tmp_path: Path) -> None:
    with pytest.raises(crypto.DataKeyError, match="HELPLINE_DATA_KEY is not"):
        crypto.load_secret(POSTGRES, {"DATABASE_URL": POSTGRES}, tmp_path / "data.key")
    assert not (tmp_path / "data.key").exists()


@pytest.mark.parametrize("text", ["c2hvcnQ", "not base64 at all!!"])
def test_a_short_or_malformed_key_is_refused(text: str) -> None:
    with pytest.raises(crypto.DataKeyError):
        crypto.decode_secret(text)
