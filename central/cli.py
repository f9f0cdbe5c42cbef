"""`roadwatch-central` (also `python -m central`): run, check, hash-password, copy-store.

Exit codes: 0 fine, 2 a bad configuration (systemd must not restart-loop on it), 1 a crash.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from central.auth import hash_password, hash_token, new_token
from central.config import CentralConfig, load_config
from common import sdnotify
from common.yamlconf import ConfigError

if TYPE_CHECKING:
    from central.service import Aggregator

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roadwatch-central", description="Roadwatch central aggregator")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="ingest events and serve the API and dashboard")
    run.add_argument("config", help="YAML configuration file")
    check = sub.add_parser("check", help="validate a configuration file and exit")
    check.add_argument("config", help="YAML configuration file")
    hp = sub.add_parser(
        "hash-password", help="print a password hash (or a new API token and its hash) for the YAML"
    )
    hp.add_argument(
        "--token", action="store_true", help="generate a random API token and print it with its hash"
    )
    hp.add_argument("--stdin", action="store_true", help="read the password from standard input (no prompt)")
    cp = sub.add_parser(
        "copy-store",
        help="copy every event, snapshot, audit entry and queue item from one store into a new, empty one"
        " (e.g. SQLite to PostgreSQL); stop the aggregator first",
    )
    cp.add_argument("from_config", metavar="FROM_CONFIG", help="configuration whose store is read")
    cp.add_argument("to_config", metavar="TO_CONFIG", help="configuration whose (empty) store is filled")
    ex = sub.add_parser(
        "export", help="write an evidence bundle of one event (payload, snapshot, signature, node key)"
    )
    ex.add_argument("config", help="YAML configuration file")
    ex.add_argument("event_id", help="the event's id")
    ex.add_argument("out_dir", help="directory that receives <event_id>/")
    vf = sub.add_parser("verify", help="check an evidence bundle offline (exit 0: authentic)")
    vf.add_argument("bundle", help="a directory written by export")
    return parser


def _copy_store(args: argparse.Namespace) -> int:
    from central.copystore import CopyError, copy_store
    from central.store import Store

    try:
        source, target = load_config(args.from_config).store, load_config(args.to_config).store
    except ConfigError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 2
    if isinstance(source.target, Path) and not source.target.is_file():
        print(f"{args.from_config}: store.url: no database at {source.target}", file=sys.stderr)
        return 2
    same = (
        source.target.resolve() == target.target.resolve()
        if isinstance(source.target, Path) and isinstance(target.target, Path)
        else source.target == target.target
    )
    if same:
        print("copy-store: the two configurations name the same store", file=sys.stderr)
        return 2
    stores: list[Store] = []
    try:
        for cfg in (source, target):
            password = cfg.password.resolve() if cfg.password is not None else None
            stores.append(Store(cfg.target, Path(cfg.snapshots_dir), password))
        result = copy_store(stores[0], stores[1])
    except (CopyError, ValueError) as exc:
        print(f"copy-store: {exc}", file=sys.stderr)
        return 2
    finally:
        for store in stores:
            store.close()
    for table, n in result.rows.items():
        print(f"{table:17} {n:>9} rows")
    print(f"{'snapshot files':17} {result.snapshot_files:>9} copied")
    return 0


def _hash_password(args: argparse.Namespace) -> int:
    if args.token:
        token = new_token()
        print(f"token:      {token}")
        print(f"token_hash: {hash_token(token)}")
        return 0
    if args.stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 2
    if len(password) < 8:
        print("password too short (at least 8 characters)", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "hash-password":
        return _hash_password(args)
    if args.command == "copy-store":
        return _copy_store(args)
    if args.command == "verify":
        return _verify(args)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 2
    if args.command == "export":
        return _export(cfg, args)
    if args.command == "check":
        print(
            f"{args.config}: OK ({len(cfg.accounts)} accounts, {len(cfg.forwarding.rules)} forwarding rules)"
        )
        return 0
    # uvicorn re-raises the signal that stopped it once it has shut down; this handler turns that (and a
    # signal before the server runs) into a clean exit through `finally`, so systemd sees status 0
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        aggregator = _open_aggregator(cfg, args.config)
    except SystemExit:
        log.info("stopped while waiting for the store")
        return 0
    if aggregator is None:
        return 2
    aggregator.start()
    try:
        aggregator.serve()
    except SystemExit:
        pass
    finally:
        aggregator.stop()
    log.info("stopped")
    return 0


def _export(cfg: CentralConfig, args: argparse.Namespace) -> int:
    from central.evidence import export_bundle
    from central.store import Store

    password = cfg.store.password.resolve() if cfg.store.password is not None else None
    store = Store(cfg.store.target, Path(cfg.store.snapshots_dir), password)
    try:
        bundle = export_bundle(store, cfg.signatures.keys, args.event_id, Path(args.out_dir))
    except ValueError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(bundle)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from central.evidence import verify_bundle

    problems = verify_bundle(Path(args.bundle))
    for problem in problems:
        print(f"{args.bundle}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.bundle}: OK, signed by the bundled key of its node")
    return 1 if problems else 0


def _open_aggregator(cfg: CentralConfig, config_path: str) -> Aggregator | None:
    """The aggregator, once its store opens; None (exit 2) for a refusal no retry can fix.

    A PostgreSQL server that is down or still booting (the station after a power cut) is waited for with
    capped backoff, telling systemd to extend the start timeout, instead of exiting into a restart loop
    that systemd's start limit would end for good.
    """
    from central.db import StoreRefusedError, StoreUnavailableError
    from central.integrity import StoreCorruptError
    from central.service import Aggregator

    delay = 1.0
    while True:
        try:
            return Aggregator(cfg)
        except StoreCorruptError as exc:
            log.error("%s", exc)
            print(f"{config_path}: {exc}", file=sys.stderr)
            return None
        except (ValueError, StoreRefusedError) as exc:  # a vanished secret; a wrong password or database name
            print(f"{config_path}: store: {exc}", file=sys.stderr)
            return None
        except StoreUnavailableError as exc:
            log.warning("store %s unreachable (%s); retrying in %.0f s", cfg.store.url, exc, delay)
            sdnotify.status(f"waiting for the store: {exc}")
            sdnotify.notify(f"EXTEND_TIMEOUT_USEC={int((delay + 60) * 1e6)}")
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
