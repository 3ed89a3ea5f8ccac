"""Backup and restore of the embedded SQLite case database (`helpline db backup PATH`, `helpline db restore PATH`).

- A backup is taken with SQLite's online backup API, so it is consistent while the servers keep writing. It is
  written to a temporary file next to PATH (mode 0600), compacted (VACUUM: no free page keeps deleted data), checked,
  and only then renamed to PATH; an existing PATH is kept unless `force`.
- A restore first checks that the file is a SQLite database of this schema (alembic_version and cases tables, a
  migration this code knows), backs the current database up next to it (the safety copy), then copies the backup in
  with the same API, so connections that are open see either the old or the new database, never half of each.
- PostgreSQL is backed up with its own tools; both commands refuse such a DATABASE_URL and name them.

The 身份证号 in a backup are encrypted with the data key (HELPLINE_DATA_KEY, or var/data.key for SQLite): a backup is
of use only together with that key, which is not part of it and is kept apart from it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL, make_url

from actions.db.migrate import MIGRATIONS_DIR

SQLITE_HEADER = b"SQLite format 3\x00"
REQUIRED_TABLES = ("alembic_version", "cases")
FILE_MODE = 0o600
BUSY_TIMEOUT = 30.0  # seconds to wait for a writer's lock, as the engine does (actions/db/session.py)

PG_DUMP = 'pg_dump --format=custom --file=helpline.dump "$PG_URL"'
PG_RESTORE = 'pg_restore --clean --if-exists --no-owner --single-transaction --dbname="$PG_URL" helpline.dump'


class BackupError(Exception):
    """A backup or restore that is refused; the message (in Chinese) says why and what to do."""


class NotSQLite(BackupError):
    """DATABASE_URL is not an SQLite file: the database's own tools do it."""


@dataclass(frozen=True)
class DatabaseInfo:
    path: Path
    revision: str
    cases: int
    size: int


@dataclass(frozen=True)
class Restored:
    info: DatabaseInfo  # the database as restored
    safety_copy: Path | None  # the database as it was before; None when there was none
    head: str | None  # the newest migration this code knows; differs from info.revision: run db upgrade


def pg_commands(url: URL) -> str:
    """What to run instead, for a PostgreSQL URL: libpq does not read SQLAlchemy's `+driver`, nor is the password
    put on a command line (PGPASSWORD or ~/.pgpass)."""
    libpq = URL.create(
        "postgresql", username=url.username, host=url.host, port=url.port, database=url.database, query=url.query
    ).render_as_string(hide_password=False)
    return (
        f'PG_URL="{libpq}"(密码放在 PGPASSWORD 环境变量或 ~/.pgpass 里)\n'
        f"  备份:{PG_DUMP}\n"
        f"  恢复:{PG_RESTORE}\n"
        "恢复前先停掉热线的服务;恢复后运行 helpline db upgrade。"
    )


def sqlite_path(database_url: str) -> Path:
    """The SQLite database file of DATABASE_URL; NotSQLite for any other database."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        raise NotSQLite(
            "DATABASE_URL 指向 PostgreSQL:helpline db backup/restore 只管内置的 SQLite 数据库。"
            "PostgreSQL 请用它自己的工具:\n" + pg_commands(url)
        )
    if backend != "sqlite":
        raise NotSQLite(f"DATABASE_URL 指向 {backend}:helpline db backup/restore 只管内置的 SQLite 数据库。")
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError("DATABASE_URL 不是一个 SQLite 数据库文件,没有可以备份的东西。")
    return Path(url.database)


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
    return sqlite3.connect(str(path), timeout=BUSY_TIMEOUT)


@contextlib.contextmanager
def _closing(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield connection
    finally:
        connection.close()


def _describe(connection: sqlite3.Connection, path: Path) -> DatabaseInfo:
    """Checks the schema of an open database; BackupError when it is not the helpline's."""
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise BackupError(f"{path} 不是热线的数据库:缺少 {'、'.join(missing)} 表。")
        revisions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        if len(revisions) != 1:
            raise BackupError(f"{path} 的迁移版本不明(alembic_version 有 {len(revisions)} 行)。")
        cases = int(connection.execute("SELECT count(*) FROM cases").fetchone()[0])
        check = connection.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} 读不了:{exc}") from exc
    if check != "ok":
        raise BackupError(f"{path} 已损坏(quick_check:{check})。")
    return DatabaseInfo(path, str(revisions[0]), cases, path.stat().st_size)


def inspect(path: Path) -> DatabaseInfo:
    """A database file of this schema, opened read-only; BackupError for anything else."""
    if not path.is_file():
        raise BackupError(f"找不到文件 {path}。")
    with path.open("rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(f"{path} 不是 SQLite 数据库文件。")
    try:
        connection = _connect(path, read_only=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} 打不开:{exc}") from exc
    with _closing(connection):
        return _describe(connection, path)


def _remove(path: Path) -> None:
    for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _copy(source: Path, target: Path, force: bool) -> DatabaseInfo:
    """Online backup of `source` into a new file `target` (mode 0600), through a temporary file and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        os.chmod(temporary, FILE_MODE)
        with _closing(_connect(source)) as live, _closing(_connect(temporary)) as copy:
            live.backup(copy)  # in one step: one read transaction, so one consistent state
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            copy.execute("VACUUM")
            info = _describe(copy, temporary)
        with temporary.open("rb+") as f:
            os.fsync(f.fileno())
        _rename(temporary, target, force)
    except BaseException:
        _remove(temporary)
        raise
    _sync_folder(target.parent)
    return DatabaseInfo(target, info.revision, info.cases, target.stat().st_size)


def _rename(temporary: Path, target: Path, force: bool) -> None:
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)  # fails when target exists, even one made a moment ago
    except FileExistsError:
        raise BackupError(f"{target} 已经存在:换个文件名,或加 --force 覆盖它。") from None
    except OSError:  # a file system without hard links
        if target.exists():
            raise BackupError(f"{target} 已经存在:换个文件名,或加 --force 覆盖它。") from None
        os.replace(temporary, target)
        return
    temporary.unlink()


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


def backup(database_url: str, target: Path, force: bool = False) -> DatabaseInfo:
    """Back the SQLite database of DATABASE_URL up into `target`."""
    source = sqlite_path(database_url)
    if target.is_dir():
        raise BackupError(f"{target} 是个文件夹:请给出备份文件的名字,比如 {target / 'helpline-backup.db'}。")
    if not source.is_file():
        raise BackupError(f"数据库文件 {source} 不存在:没有可以备份的东西(先运行 helpline db upgrade)。")
    if _same_file(source, target):
        raise BackupError("备份文件不能是数据库文件本身。")
    if target.exists() and not force:
        raise BackupError(f"{target} 已经存在:换个文件名,或加 --force 覆盖它。")
    try:
        inspect(source)
    except BackupError as exc:
        raise BackupError(f"当前的数据库不能备份:{exc}") from exc
    return _copy(source, target, force)


def listening(ports: Iterable[int], host: str = "127.0.0.1") -> list[int]:
    """The ports on which something accepts connections: the servers that use the database may be running."""
    busy = []
    for port in ports:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                busy.append(port)
    return busy


def _head() -> tuple[ScriptDirectory, str | None]:
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    return scripts, scripts.get_current_head()


def restore(database_url: str, source: Path, now: dt.datetime | None = None) -> Restored:
    """Replace the SQLite database of DATABASE_URL with the backup `source`, keeping a safety copy of it first."""
    live = sqlite_path(database_url)
    info = inspect(source)
    if live.exists() and _same_file(live, source):
        raise BackupError("要恢复的文件就是当前的数据库文件本身。")
    scripts, head = _head()
    try:
        known = scripts.get_revision(info.revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"{source} 的迁移版本 {info.revision} 这个版本的程序不认识(备份来自更新的程序?):请用相应版本的程序恢复。"
        )
    safety: Path | None = None
    if live.is_file():
        stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        safety = live.with_name(f"{live.name}.before-restore-{stamp}")
        for n in range(2, 100):
            if not safety.exists():
                break
            safety = live.with_name(f"{live.name}.before-restore-{stamp}-{n}")
        _copy(live, safety, force=False)
    live.parent.mkdir(parents=True, exist_ok=True)
    created = not live.exists()
    try:
        with _closing(_connect(source, read_only=True)) as backup_db, _closing(_connect(live)) as target:
            backup_db.backup(target)
            restored = _describe(target, live)
    except sqlite3.Error as exc:
        raise BackupError(f"恢复失败({exc});恢复前的数据库在安全副本 {safety}") from exc
    if created:
        os.chmod(live, FILE_MODE)
    return Restored(DatabaseInfo(live, restored.revision, restored.cases, live.stat().st_size), safety, head)
