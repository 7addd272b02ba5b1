"""The recorded data from the command line: `bedside sessions list`, `bedside export`, `bedside backup`.

    bedside sessions list [--patient ID] [--bay B] [--data-dir D | --config FILE]
    bedside export SESSION --format csv|fhir|hl7|report -o FILE [--data-dir D | --config FILE]
    bedside backup -o FILE [--data-dir D]

They read the trace store a running bedside writes (SQLite in the data dir, or the PostgreSQL database of the
config's `[storage] url`), so they work while bedside runs. `sessions list` prints one session per line, its id
first; `export` writes the same files as the review page's export buttons; `backup` copies the SQLite database
consistently while bedside keeps writing (SQLite's online backup), for docs/operations.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from monitor.config import ConfigError, load_config
from monitor.exports import FORMATS, Format, export
from monitor.store import SessionFilter, StoreError, TraceStore, open_store


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ses = sub.add_parser("sessions", help="recorded infusion sessions")
    ses_sub = ses.add_subparsers(dest="sessions_command", required=True)
    lst = ses_sub.add_parser("list", help="one session per line, its id first, newest first")
    lst.add_argument("--patient", metavar="ID", help="only this patient's sessions")
    lst.add_argument("--bay", help="only this bay's sessions")
    _where(lst)
    lst.set_defaults(func=_list)

    exp = sub.add_parser("export", help="export a recorded session (CSV, FHIR R4, HL7 v2.6, printable report)")
    exp.add_argument("session", metavar="SESSION", help="the session id (bedside sessions list)")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write it (- for stdout)")
    _where(exp)
    exp.set_defaults(func=_export)

    bak = sub.add_parser("backup", help="a consistent copy of the SQLite database, safe while bedside runs")
    bak.add_argument("-o", "--output", required=True, metavar="FILE", help="the backup file (must not exist)")
    bak.add_argument("--data-dir", default="data", help="the data dir of the config (default: ./data)")
    bak.set_defaults(func=_backup)


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", default="data", help="the data dir of the config (default: ./data)")
    where.add_argument("--config", metavar="FILE", help="the config file (its data_dir or [storage] url)")


def open_cli_store(args: argparse.Namespace) -> TraceStore:
    """The store the command names: its config's (SQLite data dir or PostgreSQL url), else the data dir's."""
    if args.config:
        cfg = load_config(Path(args.config))
        return open_store(cfg.data_dir, cfg.storage.url)
    data_dir = Path(args.data_dir)
    if not (data_dir / "bedside.db").exists():
        raise StoreError(f"{data_dir}: no bedside database here (give --data-dir or --config)")
    return open_store(data_dir)


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


def _list(args: argparse.Namespace) -> int:
    try:
        store = open_cli_store(args)
    except (ConfigError, StoreError) as exc:
        print(f"bedside: {exc}", file=sys.stderr)
        return 2
    try:
        found = store.sessions(SessionFilter(patient_id=args.patient, bay=args.bay))
    finally:
        store.close()
    for s in found:
        outcome = s.discharge.outcome if s.discharge is not None else "open"
        print(f"{s.id}  {_utc(s.admitted_at)} UTC  bay {s.bay}  {s.patient_id} ({s.initials})  {s.series_label}  "
              f"{s.phase}  {outcome}")
    return 0


def _export(args: argparse.Namespace) -> int:
    fmt: Format = args.format
    try:
        store = open_cli_store(args)
    except (ConfigError, StoreError) as exc:
        print(f"bedside: {exc}", file=sys.stderr)
        return 2
    try:
        trace = store.session_trace(args.session)
    finally:
        store.close()
    if trace is None:
        print(f"bedside: no session {args.session!r} (bedside sessions list shows them)", file=sys.stderr)
        return 2
    if trace.session.open:
        trace.end = time.time()
    out = export(trace, fmt)
    if args.output == "-":
        sys.stdout.write(out.text)
    else:
        Path(args.output).write_text(out.text, encoding="utf-8", newline="")
        print(f"wrote {fmt} of session {args.session} to {args.output}", file=sys.stderr)
    return 0


def _backup(args: argparse.Namespace) -> int:
    import sqlite3

    source_path = Path(args.data_dir) / "bedside.db"
    target = Path(args.output)
    if not source_path.exists():
        print(f"bedside: {args.data_dir}: no bedside database here", file=sys.stderr)
        return 2
    if target.exists():
        print(f"bedside: {target} exists; give a new file", file=sys.stderr)
        return 2
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=10.0)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # page by page; a write meanwhile restarts it, so the copy is one consistent moment
    except sqlite3.Error as exc:
        print(f"bedside: backup failed: {exc}", file=sys.stderr)
        copy.close()
        target.unlink(missing_ok=True)
        return 1
    finally:
        source.close()
    copy.close()
    print(f"backed up {source_path} to {target}", file=sys.stderr)
    return 0
