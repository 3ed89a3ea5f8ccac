"""The `helpline` command: database, demo data, imports, cadres, training and serving.

Exit codes: 0 done; 1 refused (bad rows, a registration that conflicts); 2 bad usage or unreadable file;
3 the environment failed (database unreachable, the data key missing, a server that did not start, training failed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from actions import crypto, runtime
from actions.db.models import CASE_STATUSES, HOUSEHOLD_STATUSES
from actions.logs import configure_logging
from actions.rendering import render
from actions.settings import PROJECT_ROOT, Settings

logger = logging.getLogger(__name__)

OK, REFUSED, USAGE, ENVIRONMENT = 0, 1, 2, 3


def _db_upgrade(args: argparse.Namespace) -> int:
    from actions.db.migrate import current_revision, upgrade

    rt = runtime.init()
    upgrade(rt.engine, args.revision)
    print(f"数据库已迁移到 {current_revision(rt.engine)}({rt.engine.dialect.name})")
    return OK


def _db_current(args: argparse.Namespace) -> int:
    from actions.db.migrate import current_revision

    rt = runtime.init()
    print(current_revision(rt.engine) or "(空数据库)")
    return OK


def _db_backup(args: argparse.Namespace) -> int:
    import sqlite3

    from actions.db.backup import BackupError, backup

    settings = Settings.from_env()
    try:
        info = backup(settings.database_url, Path(args.path), force=args.force)
    except BackupError as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    except (sqlite3.Error, OSError) as exc:
        print(f"备份失败:{type(exc).__name__}: {exc}", file=sys.stderr)
        return ENVIRONMENT
    print(f"已备份到 {info.path}({info.size // 1024} KB,迁移版本 {info.revision},{info.cases} 件申报,权限 0600)")
    print(
        "备份里的身份证号是加密的:恢复时要用同一个数据密钥(HELPLINE_DATA_KEY,或内置数据库旁的 var/data.key),"
        "请把密钥和备份分开保管。"
    )
    return OK


def _db_restore(args: argparse.Namespace) -> int:
    import sqlite3

    from actions.db.backup import BackupError, listening, restore, sqlite_path

    settings = Settings.from_env()
    try:
        sqlite_path(settings.database_url)
    except BackupError as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    path = Path(args.path)
    if not path.is_file():
        print(f"找不到文件:{path}", file=sys.stderr)
        return USAGE
    busy = listening((settings.action_port, settings.rasa_port))
    if busy and not args.force:
        ports = "、".join(str(p) for p in busy)
        print(
            f"端口 {ports} 上有服务在运行:先停掉 helpline serve 和 Telegram 前端再恢复(或加 --force)。", file=sys.stderr
        )
        return REFUSED
    try:
        done = restore(settings.database_url, path)
    except BackupError as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    except (sqlite3.Error, OSError) as exc:
        print(f"恢复失败:{type(exc).__name__}: {exc}", file=sys.stderr)
        return ENVIRONMENT
    if done.safety_copy is not None:
        print(f"恢复前的数据库已另存为 {done.safety_copy}")
    print(f"已从 {path} 恢复:迁移版本 {done.info.revision},{done.info.cases} 件申报。")
    if done.info.revision != done.head:
        print("备份比程序旧:请运行 helpline db upgrade。")
    print("请(重新)启动热线的服务;数据密钥要和备份时的一样。")
    return OK


def _import_households(args: argparse.Namespace) -> int:
    from actions.services.household_import import ImportFileError, import_households

    path = Path(args.file)
    if not path.is_file():
        print(f"找不到文件:{path}", file=sys.stderr)
        return USAGE
    rt = runtime.init()
    try:
        report = import_households(rt.sessions, path, skip_invalid=args.skip_invalid)
    except ImportFileError as exc:
        print(_file_error(exc), file=sys.stderr)
        return USAGE
    print(render(rt.templates, "import_report.j2", report=report, statuses=HOUSEHOLD_STATUSES))
    return OK if report.committed else REFUSED


def _file_error(exc: Exception) -> str:
    code, detail = exc.args
    return {
        "format": f"不支持的文件类型 {detail}:请用 .csv(UTF-8 或 GBK)或 .xlsx",
        "headers": f"表头缺少:{detail}",
        "encoding": "文件编码既不是 UTF-8 也不是 GBK",
        "empty": "文件是空的",
        "xlsx": f"打不开这个 Excel 文件({detail})",
    }.get(code, f"文件读不了:{code}")


def _demo_load(args: argparse.Namespace) -> int:
    from actions.services.demo import load_demo

    rt = runtime.init()
    report = load_demo(rt.sessions)
    print(render(rt.templates, "import_report.j2", report=report.households, statuses=HOUSEHOLD_STATUSES))
    if report.households.errors:
        return REFUSED
    print(f"演示干部:新建 {report.cadres_created} 名,已有 {report.cadres_existing} 名。(演示数据均为虚构)")
    return OK


def _cadre_add(args: argparse.Namespace) -> int:
    from actions.services.identities import CadreError, add_cadre
    from actions.services.regions import RegionError

    rt = runtime.init()
    try:
        with rt.sessions.begin() as session:
            cadre, created = add_cadre(
                session,
                name=args.name,
                region_path=args.region,
                chat_id=str(args.chat_id),
                channel=args.channel,
                admin=args.admin,
                create_region=args.create_region,
            )
            path = cadre.region.path
    except (CadreError, RegionError) as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    print(
        ("已登记干部" if created else "干部已登记过,没有变化:")
        + f"{args.name},辖区 {path},{args.channel} {args.chat_id}"
    )
    return OK


def _cadre_invite(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from actions.db.models import Region
    from actions.services.invites import INVITE_HOURS, create_invite
    from actions.services.workspace import Officer, WorkspaceError

    rt = runtime.init()
    try:
        with rt.sessions.begin() as session:
            officer = Officer.operator(session, args.region)
            region = session.execute(select(Region).where(Region.path == officer.jurisdiction)).scalar_one()
            invitation = create_invite(session, officer, args.name, region, admin=args.admin)
    except WorkspaceError as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    role = "管理员" if args.admin else "干部"
    print(f"邀请码 {invitation.code}:{invitation.name},{role},辖区 {invitation.place}。")
    print(f"{INVITE_HOURS} 小时内有效,只能用一次。")
    print(f"请本人在聊天里发送:干部绑定 {invitation.code}")
    return OK


def _insurance_paid(args: argparse.Namespace) -> int:
    from actions.services.insurance import mark_paid

    rt = runtime.init()
    with rt.sessions.begin() as session:
        view = mark_paid(session, args.reference)
        if view is None:
            print(f"没有参保编号 {args.reference}", file=sys.stderr)
            return REFUSED
        print(f"已记为已缴费:{view.reference},{view.policy_year} 年,{view.premium} 元")
    return OK


def _case_show(args: argparse.Namespace) -> int:
    from actions.services.cases import case_by_number

    rt = runtime.init()
    with rt.sessions.begin() as session:
        view = case_by_number(session, args.case_no)
    if view is None:
        print(f"没有编号为 {args.case_no} 的申报", file=sys.stderr)
        return REFUSED
    print(render(rt.templates, "case_show.j2", case=view))
    return OK


def _case_move(args: argparse.Namespace) -> int:
    from actions.services.workspace import NotACadre, WorkspaceError, move_case, officer_of_chat

    rt = runtime.init()
    try:
        with rt.sessions.begin() as session:
            officer = officer_of_chat(session, args.channel, str(args.cadre_chat_id))
            view = move_case(
                session, officer, args.case_no, args.status, args.note,
                tell_declarant=lambda case: render(rt.templates, "case_outcome.j2", case=case),
            )  # fmt: skip
    except NotACadre:
        print(f"{args.channel} {args.cadre_chat_id} 不是登记过的干部", file=sys.stderr)
        return REFUSED
    except WorkspaceError as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    print(f"{view.case_no} 已改为“{view.status}”")
    return OK


def _cases_export(args: argparse.Namespace) -> int:
    from actions.services.exports import export
    from actions.services.workspace import Officer, WorkspaceError

    rt = runtime.init()
    try:
        with rt.sessions.begin() as session:
            scope = Officer.operator(session, args.region)
            data = export(session, scope, args.format)
    except WorkspaceError as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    name = scope.jurisdiction.replace("/", "-")
    out = Path(args.output or f"监测名单-{name}-{dt.date.today().isoformat()}.{args.format}")
    out.write_bytes(data)
    print(f"已导出 {scope.jurisdiction} 的监测名单:{out}")
    return OK


def _audit(args: argparse.Namespace) -> int:
    from actions.services.workspace import audit_since

    try:
        since = dt.datetime.fromisoformat(args.since)
    except ValueError:
        print(f"日期写成 2026-11-23 或 2026-11-23T08:00(UTC),不是 {args.since!r}", file=sys.stderr)
        return USAGE
    rt = runtime.init()
    with rt.sessions.begin() as session:
        entries = audit_since(session, since)
        for e in entries:
            fields = [e.created_at.isoformat(sep=" ", timespec="seconds"), e.actor, e.action,
                      e.record_type or "-", e.record_ref or "-", e.detail or ""]  # fmt: skip
            print("\t".join(fields))
    print(f"共 {len(entries)} 条", file=sys.stderr)
    return OK


def _keygen(args: argparse.Namespace) -> int:
    print(crypto.new_secret())
    return OK


def _train(args: argparse.Namespace) -> int:
    from actions.training import train

    started = time.monotonic()
    try:
        model, trained = train(Path(args.config), Path(args.out), force=args.force)
    except subprocess.CalledProcessError as exc:
        print(f"训练失败(rasa train 退出码 {exc.returncode})", file=sys.stderr)
        return ENVIRONMENT
    if trained:
        print(f"训练完成:{model}(用时 {time.monotonic() - started:.1f} 秒)")
    else:
        print(f"模型已是最新,不用重新训练:{model}")
    return OK


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    from actions.launcher import StartupError, post_message, running_servers
    from actions.training import model_path, train
    from bot.console import chat

    settings = Settings.from_env()
    crypto.load_secret(settings.database_url)  # a missing data key stops here, not in the action server's start-up
    config = Path(args.config)
    if args.no_train:
        model = model_path(config, Path(args.out))
        if not model.exists():
            print(f"没有训练好的模型 {model}:先运行 helpline train", file=sys.stderr)
            return ENVIRONMENT
    else:
        model, _ = train(config, Path(args.out))
    # Ctrl-C, and SIGTERM from a supervisor, stop every server this command started.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        with running_servers(
            model,
            rasa_port=settings.rasa_port,
            action_port=settings.action_port,
            log_dir=Path(args.log_dir) if args.console else None,
            telegram=True,
        ) as rasa_url:
            print(f"热线已启动({time.monotonic() - started:.1f} 秒):{rasa_url}/webhooks/rest/webhook", flush=True)
            if os.environ.get("TELEGRAM_BOT_TOKEN"):
                print("Telegram 前端已启动(TELEGRAM_BOT_TOKEN 已设置)", flush=True)
            if args.console:
                chat(lambda sender, text: post_message(rasa_url, sender, text), sender=args.sender)
            else:
                while True:
                    time.sleep(3600)
    except StartupError as exc:
        print(f"启动失败:{exc}", file=sys.stderr)
        return ENVIRONMENT
    except KeyboardInterrupt:
        pass
    print("已停止所有服务。")
    return OK


def _telegram(args: argparse.Namespace) -> int:
    from bot.app import main as telegram_main

    return telegram_main()


def _chat(args: argparse.Namespace) -> int:
    from actions.launcher import post_message
    from bot.console import chat

    rasa_url = args.url or os.environ.get("RASA_URL", "http://localhost:5005")
    chat(lambda sender, text: post_message(rasa_url, sender, text), sender=args.sender)
    return OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpline", description="乡村振兴热线的管理命令")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="案件数据库").add_subparsers(dest="db_command", required=True)
    upgrade = db.add_parser("upgrade", help="建库并迁移到最新版本")
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(handler=_db_upgrade)
    db.add_parser("current", help="显示当前迁移版本").set_defaults(handler=_db_current)
    backup = db.add_parser("backup", help="备份内置的 SQLite 数据库(服务运行时也可以;PostgreSQL 用 pg_dump)")
    backup.add_argument("path", help="备份文件,如 var/backup/helpline-2026-11-24.db(权限 0600)")
    backup.add_argument("--force", action="store_true", help="覆盖已有的同名文件")
    backup.set_defaults(handler=_db_backup)
    restore = db.add_parser("restore", help="用备份替换内置的 SQLite 数据库(先另存一份当前的)")
    restore.add_argument("path", help="helpline db backup 做的备份文件")
    restore.add_argument("--force", action="store_true", help="服务看起来还在运行也恢复")
    restore.set_defaults(handler=_db_restore)

    demo = sub.add_parser("demo", help="演示数据").add_subparsers(dest="demo_command", required=True)
    demo.add_parser("load", help="载入虚构的演示农户和干部").set_defaults(handler=_demo_load)

    imp = sub.add_parser("import", help="导入数据").add_subparsers(dest="import_command", required=True)
    households = imp.add_parser("households", help="导入农户表(CSV 或 XLSX)")
    households.add_argument("file")
    households.add_argument("--skip-invalid", action="store_true", help="跳过有问题的行,只导入合格的行")
    households.set_defaults(handler=_import_households)

    cadre = sub.add_parser("cadre", help="干部").add_subparsers(dest="cadre_command", required=True)
    add = cadre.add_parser("add", help="登记干部并绑定聊天账号")
    add.add_argument("--name", required=True)
    add.add_argument("--region", required=True, help="辖区路径,如 淄博市/淄川区/太河镇")
    add.add_argument("--chat-id", required=True, help="聊天账号 id(Telegram 用户 id)")
    add.add_argument("--channel", default="telegram")
    add.add_argument("--admin", action="store_true", help="管理员干部,可在聊天里登记别的干部")
    add.add_argument("--create-region", action="store_true", help="辖区不在库里时新建")
    add.set_defaults(handler=_cadre_add)
    invite = cadre.add_parser("invite", help="生成一次性邀请码,本人在聊天里发送后登记为干部(不用知道聊天账号 id)")
    invite.add_argument("--name", required=True)
    invite.add_argument("--region", required=True, help="辖区路径,如 淄博市/淄川区/太河镇")
    invite.add_argument("--admin", action="store_true", help="管理员干部,可在聊天里登记别的干部")
    invite.set_defaults(handler=_cadre_invite)

    insurance = sub.add_parser("insurance", help="齐惠保参保").add_subparsers(dest="insurance_command", required=True)
    paid = insurance.add_parser("paid", help="把一条参保登记记为已缴费(按参保编号)")
    paid.add_argument("reference", help="参保编号,如 QH2026-7K3M9P")
    paid.set_defaults(handler=_insurance_paid)

    case = sub.add_parser("case", help="困难申报案件").add_subparsers(dest="case_command", required=True)
    show = case.add_parser("show", help="显示一件申报:分诊结果、理由和全部状态记录(身份证号、手机号遮住)")
    show.add_argument("case_no", help="申报编号,如 SB-2026-000123")
    show.set_defaults(handler=_case_show)
    move = case.add_parser("move", help="以干部身份改申报状态(记入状态记录)")
    move.add_argument("case_no")
    move.add_argument("status", choices=CASE_STATUSES[1:], help="新状态")
    move.add_argument("--cadre-chat-id", required=True, help="操作干部绑定的聊天账号 id")
    move.add_argument("--channel", default="telegram")
    move.add_argument("--note", default=None, help="为什么改(必填,一句话;会记入状态记录)")
    move.set_defaults(handler=_case_move)

    cases = sub.add_parser("cases", help="一个辖区的案件").add_subparsers(dest="cases_command", required=True)
    exp = cases.add_parser("export", help="导出辖区的监测名单(与农户导入同样的表头,再加案件字段)")
    exp.add_argument("--region", required=True, help="地区全路径,如 淄博市/淄川区")
    exp.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    exp.add_argument("--output", default=None, help="文件名;默认 监测名单-<地区>-<日期>.<格式>")
    exp.set_defaults(handler=_cases_export)

    aud = sub.add_parser("audit", help="列出审计记录:谁在何时查了或改了哪条记录")
    aud.add_argument("--since", required=True, help="从这个时间起(UTC),如 2026-11-23")
    aud.set_defaults(handler=_audit)

    keygen = sub.add_parser("keygen", help="生成一个新的 HELPLINE_DATA_KEY(加密库里身份证号的密钥;妥善另存一份)")
    keygen.set_defaults(handler=_keygen)

    for name, helptext in (("train", "需要时训练模型"), ("serve", "启动动作服务器和 Rasa 服务器")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--config", default=str(PROJECT_ROOT / "config.yml"))
        p.add_argument("--out", default=str(PROJECT_ROOT / "models"))
    train = sub.choices["train"]
    train.add_argument("--force", action="store_true")
    train.set_defaults(handler=_train)
    serve = sub.choices["serve"]
    serve.add_argument("--console", action="store_true", help="同时打开控制台聊天")
    serve.add_argument("--no-train", action="store_true")
    serve.add_argument("--sender", default=None, help="控制台聊天用的发送者 id")
    serve.add_argument("--log-dir", default=str(PROJECT_ROOT / "var" / "log"))
    serve.set_defaults(handler=_serve)

    telegram = sub.add_parser("telegram", help="只启动 Telegram 前端(连运行中的 Rasa:RASA_URL;需要 TELEGRAM_BOT_TOKEN)")
    telegram.set_defaults(handler=_telegram)

    chat = sub.add_parser("chat", help="对运行中的热线打开控制台聊天")
    chat.add_argument("--url", default=None)
    chat.add_argument("--sender", default=None)
    chat.set_defaults(handler=_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(os.environ.get("LOG_LEVEL", "WARNING").upper())
    try:
        return int(args.handler(args))
    except crypto.DataKeyError as exc:
        print(
            "数据密钥 HELPLINE_DATA_KEY 缺失或不能用,没有启动:"
            f"用 helpline keygen 生成一个,放进服务的环境变量并另存一份。\n{exc}",
            file=sys.stderr,
        )
        return ENVIRONMENT
    except crypto.DecryptionError as exc:
        print(f"库里的身份证号解不开:HELPLINE_DATA_KEY 不是加密它们的密钥。({exc})", file=sys.stderr)
        return ENVIRONMENT
    except SQLAlchemyError as exc:
        print(f"数据库出错:{type(exc).__name__}。检查 DATABASE_URL,并先运行 helpline db upgrade", file=sys.stderr)
        return ENVIRONMENT
    finally:
        runtime.reset()


if __name__ == "__main__":
    sys.exit(main())
