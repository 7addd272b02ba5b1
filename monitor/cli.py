"""The `bedside` command: run, demo, simulate, probe, replay, token, user.

    bedside run --config FILE [--node NAME]
    bedside demo [--bays N] [--port P] [--data-dir D] [--speed X]
    bedside simulate masimo|nellcor|nonin7|nonin8|capnostream (--port PATH|URL | --pty | --tcp PORT)
                     [--scenario FILE] [--replay CSV] [--speed X] [--interval S] [--seed N]
    bedside simulate mqtt --broker mqtt://HOST:PORT --device ID [--site S] [--scenario FILE]
    bedside replay TRACE.csv [--profile NAME|FILE | --compare PROFILE_A PROFILE_B] [--profiles-dir D] [--json]
    bedside token create --data-dir D --role viewer|nurse|admin [--label L]
    bedside user add NAME --role viewer|nurse|admin [--data-dir D]     (password asked for, or read from stdin)
    bedside user change NAME [--role R] [--password] [--disable|--enable] [--data-dir D];  bedside user list
                 (or --config FILE [--node NAME] instead of --data-dir: the audit then goes to its [storage])
    bedside sessions list [--patient ID] [--bay B] [--data-dir D | --config FILE]
    bedside export SESSION --format csv|fhir|hl7|report -o FILE [--data-dir D | --config FILE]
    bedside backup -o FILE [--data-dir D]
    bedside station --broker mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT] [--site S]   (nursing-station console)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.config import BedsideConfig, ConfigError, load_config, parse_config
from monitor.mosquitto import mosquitto_path

if TYPE_CHECKING:
    from monitor.service import Service


def _run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(Path(args.config))
        if args.node is not None:
            cfg = cfg.for_node(args.node)
    except ConfigError as exc:
        print(f"bedside: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"bedside: {args.config}: {exc}", file=sys.stderr)
        return 2
    return _serve(cfg)


def _serve(cfg: BedsideConfig, beside: Callable[[Service], Coroutine[Any, Any, None]] | None = None) -> int:
    """Run the service until stopped; `beside(service)` (the demo nurse) runs once it has started, until it is
    told to stop."""
    from monitor.gateway_node import GatewayNode
    from monitor.process import ServiceError
    from monitor.service import Service

    async def main() -> None:
        service: Service | GatewayNode = GatewayNode(cfg) if cfg.role == "gateway" else Service(cfg)
        runner = asyncio.create_task(service.run())
        started = asyncio.create_task(service.started.wait())
        await asyncio.wait([runner, started], return_when=asyncio.FIRST_COMPLETED)
        if service.started.is_set():
            what = f"{cfg.role} node {cfg.node}: " if cfg.node else ""
            print(f"bedside: {what}serving {len(cfg.bays)} bays at http://{cfg.http.host}:{service.bound_port}/",
                  flush=True)
            if service.alarm_broker is not None:
                print(f"bedside: alarms on MQTT at {service.alarm_broker} (a terminal console: "
                      f"bedside station --broker {service.alarm_broker} --site {cfg.site})", flush=True)
        started.cancel()
        if beside is not None and isinstance(service, Service) and service.started.is_set():
            helper = asyncio.create_task(beside(service), name="beside")
            stopping = asyncio.create_task(service.until_stopped())
            await asyncio.wait([runner, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            helper.cancel()
            await asyncio.gather(helper, return_exceptions=True)
        await runner

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except ServiceError as exc:
        print(f"bedside: {exc}", file=sys.stderr)
        return 1
    return 0


DEMO_DESATURATION = {"vital": "spo2", "value": 85, "start": 45, "duration": 50, "every": 240}
DEMO_NO_INFUSION = 10 * 365 * 86400.0  # s: "never" (the demo nurse starts the simulated infusions)
MONITOR_VITALS = ["hr", "nibp_sys", "nibp_dia", "nibp_map", "rr", "etco2", "temp"]


def demo_config(bays: int, port: int, data_dir: Path, with_mqtt: bool, speed: float | None = None) -> dict[str, object]:
    """A clinic of `bays` simulated bays.

    Bay 3's patient desaturates to 85 % for 50 s every 4 minutes, from 45 s after the start.
    With MQTT: odd bays have a Masimo pulse oximeter on a pty (SpO2, PR) beside an MQTT monitor for HR and blood
    pressure; even bays one MQTT monitor that measures everything. Without MQTT: a Masimo oximeter per bay.
    With `speed` (the demo nurse runs the sessions, monitor/demo.py): the discharge rules are divided by it and
    no simulated infusion starts by itself.
    """
    bay_list = []
    for i in range(1, bays + 1):
        devices: list[dict[str, object]] = []
        if i % 2 == 1 or not with_mqtt:
            devices.append({"id": f"masimo-{i}", "driver": "masimo", "simulate": True})
        if with_mqtt:
            monitor: dict[str, object] = {"id": f"monitor-{i}", "driver": "mqtt", "simulate": True}
            if i % 2 == 1:
                monitor["simulate_vitals"] = MONITOR_VITALS
            devices.append(monitor)
        bay: dict[str, object] = {"id": f"bay{i}", "name": f"Bay {i}", "devices": devices}
        if i == 3:  # one patient desaturates now and then, so the demo shows an alarm arriving and ending
            bay["simulated_patient"] = {"episodes": [DEMO_DESATURATION]}
        bay_list.append(bay)
    return {"site": "demo", "data_dir": str(data_dir), "http": {"host": "127.0.0.1", "port": port},
            "mqtt": {"private": with_mqtt}, "bays": bay_list, **_demo_sessions(bay_list, speed)}


def _demo_sessions(bay_list: list[dict[str, object]], speed: float | None) -> dict[str, object]:
    if speed is None:
        return {}
    for bay in bay_list:  # the demo nurse starts each infusion (monitor/demo.py), not the simulator's clock
        patient = bay.get("simulated_patient")
        bay["simulated_patient"] = {**(patient if isinstance(patient, dict) else {}),
                                    "infusion_start": DEMO_NO_INFUSION}
    return {"sessions": {"min_recovery_minutes": 30.0 / speed, "stable_minutes": 15.0 / speed}}


def _demo(args: argparse.Namespace) -> int:
    from monitor import db
    from monitor.demo import run_demo_sessions
    from monitor.tokens import create_token

    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="bedside-demo-"))
    with_mqtt = mosquitto_path() is not None
    if not with_mqtt:
        print("bedside: mosquitto is not installed, so every demo bay uses a serial (Masimo) simulator; "
              "`apt-get install mosquitto` for MQTT bays", flush=True)
    cfg = parse_config(demo_config(args.bays, args.port, data_dir, with_mqtt, args.speed), "demo")
    conn = db.connect(data_dir)
    token = create_token(conn, "nurse", "demo nurse")
    admin = create_token(conn, "admin", "demo admin")
    conn.close()
    print(f"bedside demo: data in {data_dir}", flush=True)
    print(f"bedside demo: log in at http://127.0.0.1:{args.port}/login#token={token}", flush=True)
    print(f"bedside demo: users, tokens and the audit log: http://127.0.0.1:{args.port}/login?next=/admin#token={admin}",
          flush=True)
    if args.speed != 1:
        print(f"bedside demo: sessions run {args.speed:g} times faster than a clinic's (alarm delays do not)",
              flush=True)
    return _serve(cfg, lambda service: run_demo_sessions(service, args.speed))


def _speed(text: str) -> float:
    value = float(text)
    if not 1 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text}: from 1 to 600")
    return value


def _token(args: argparse.Namespace) -> int:
    from monitor import db
    from monitor.tokens import create_token

    conn = db.connect(Path(args.data_dir))
    try:
        token = create_token(conn, args.role, args.label)
    except ValueError as exc:
        print(f"bedside: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    print(f"created a {args.role} token; it is shown once and only its hash is stored:")
    print(token)
    return 0


def _read_password(prompt: str) -> str:
    """From the terminal (asked twice, not echoed), or the first line of stdin when it is not a terminal."""
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("again: ") != first:
        raise SystemExit("bedside: the two passwords differ; nothing changed")
    return first


def _accounts_of(args: argparse.Namespace) -> tuple[Path, str | None]:
    """Where a user command's accounts live and where its audit record goes: the config's (a node's own data dir
    with --node) and its [storage] url, or the data dir given (SQLite). ConfigError/ValueError name the problem."""
    if args.config is None:
        if args.node is not None:
            raise ValueError("--node goes with --config")
        return Path(args.data_dir), None
    cfg = load_config(Path(args.config))
    if args.node is not None:
        cfg = cfg.for_node(args.node)
    return cfg.data_dir, cfg.storage.url


def _user(args: argparse.Namespace) -> int:
    import getpass

    from monitor import db
    from monitor.model import AuditRecord
    from monitor.users import UserError, add_user, list_users, update_user

    try:
        data_dir, storage = _accounts_of(args)
    except (ConfigError, ValueError) as exc:
        print(f"bedside: {exc}", file=sys.stderr)
        return 2
    conn = db.connect(data_dir)
    who = f"cli ({getpass.getuser()})"

    def audit(record: AuditRecord) -> None:
        """Into the record the service keeps (PostgreSQL with [storage] url), else the data dir's database."""
        if storage is None:
            db.insert_audit(conn, record)
            return
        from monitor.store import open_store

        store = open_store(data_dir, storage)
        try:
            store.append_durable([record])
        finally:
            store.close()

    try:
        if args.user_command == "list":
            for u in list_users(conn):
                print(f"{u.name}\t{u.role}{chr(9) + 'disabled' if u.disabled else ''}")
            return 0
        try:
            if args.user_command == "add":
                user = add_user(conn, args.name, args.role, _read_password(f"password for {args.name}: "))
                audit(AuditRecord.of(time.time(), who, "user_add", None, user.name, after={"role": user.role}))
                print(f"added {user.role} {user.name}")
            else:
                password = _read_password(f"new password for {args.name}: ") if args.password else None
                disabled = True if args.disable else False if args.enable else None
                if args.role is None and password is None and disabled is None:
                    raise SystemExit("bedside: nothing to change (--role, --password, --disable or --enable)")
                user = update_user(conn, args.name, role=args.role, password=password, disabled=disabled)
                shown: dict[str, object] = {"role": args.role, "disabled": disabled,
                                            "password": "changed" if password is not None else None}
                shown = {k: v for k, v in shown.items() if v is not None}
                audit(AuditRecord.of(time.time(), who, "user_change", None, user.name, after=shown))
                print(f"changed {user.name}: {', '.join(sorted(shown))}")
        except (UserError, KeyError) as exc:
            print(f"bedside: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
            return 2
    finally:
        conn.close()
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from simulators.cli import run_simulator

    return run_simulator(args)


def _probe(args: argparse.Namespace) -> int:
    from drivers.base import DeviceSettings
    from drivers.probe import probe
    from drivers.registry import driver_class

    try:
        cls = driver_class(args.driver)
    except KeyError as exc:
        print(f"bedside probe: {exc.args[0]}", file=sys.stderr)
        return 2
    host, port = "127.0.0.1", 1883
    if args.broker:
        host, _, p = args.broker.split("://", 1)[-1].rpartition(":")
        port = int(p)
    driver = cls(DeviceSettings(args.device or "probe", args.port, args.baud, host, port, site=args.site))
    frames, rejected = asyncio.run(probe(driver, args.seconds, sys.stdout))
    print(f"bedside probe: {frames} frames decoded, {rejected} rejected", file=sys.stderr)
    return 0 if frames else 1


def _replay(args: argparse.Namespace) -> int:
    import os

    from alerts.profile import ProfileError, load_profiles, resolve_profile
    from monitor.replay import (
        compare,
        comparison_json,
        comparison_lines,
        event_json,
        event_line,
        run_trace,
        summarise,
        summary_lines,
    )
    from monitor.trace import ReplayError, load_trace

    try:
        trace = load_trace(args.trace)
        known = load_profiles(Path(args.profiles_dir) if args.profiles_dir else None)
        profiles = [resolve_profile(name, known) for name in (args.compare or [args.profile])]
    except (ReplayError, ProfileError) as exc:
        message = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        print(f"bedside replay: {message}", file=sys.stderr)
        return 2
    runs = [run_trace(trace, p) for p in profiles]
    if args.compare:
        result = compare(runs[0], runs[1])
        lines = [json.dumps(d) for d in comparison_json(result)] if args.json else comparison_lines(result)
    elif args.json:
        lines = [*(json.dumps(event_json(e)) for e in runs[0].events),
                 json.dumps({"summary": summarise(runs[0]).as_dict()})]
    else:
        lines = [*(event_line(e) for e in runs[0].events), "", *summary_lines(summarise(runs[0]))]
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # e.g. `bedside replay ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _station(args: argparse.Namespace) -> int:
    from monitor.station_app import main as station

    return station(args.broker, args.site)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bedside", description="Bedside vital-signs monitoring.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run bedside from a config file")
    run.add_argument("--config", required=True, help="TOML config file")
    run.add_argument("--node", default=None, metavar="NAME",
                     help="run the config's [[nodes]] NAME (gateway, engine or dashboard; docs/deployment.md)")
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="run a demo clinic of simulated bays")
    demo.add_argument("--bays", type=int, default=6, choices=range(1, 65), metavar="N")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir", default=None, help="where to record (default: a new temporary directory)")
    demo.add_argument("--speed", type=_speed, default=1.0, metavar="X",
                      help="run the demo's sessions X times faster than real (1..600; alarm delays stay real)")
    demo.set_defaults(func=_demo)

    sim = sub.add_parser("simulate", help="run one device simulator",
                         description="Run one simulated device: a serial protocol on a pty, a port or TCP, "
                                     "or an MQTT monitor.")  # fmt: skip
    sim.add_argument("protocol", choices=["masimo", "nellcor", "nonin7", "nonin8", "capnostream", "mqtt"])
    out = sim.add_mutually_exclusive_group()
    out.add_argument("--port", help="serial port or pyserial URL to write to")
    out.add_argument("--pty", action="store_true", help="create a pty pair; print the driver-side path first")
    out.add_argument("--tcp", type=int, metavar="PORT", help="serve TCP on PORT (0: a free one); print the URL first")
    sim.add_argument("--host", default="127.0.0.1", help="address for --tcp (default 127.0.0.1)")
    sim.add_argument("--link", metavar="PATH", help="with --pty: keep a symlink at PATH to the pty (stable path)")
    sim.add_argument("--broker", help="mqtt://HOST:PORT (mqtt)")
    sim.add_argument("--device", help="device id (mqtt)")
    sim.add_argument("--site", default="clinic")
    sim.add_argument("--scenario", metavar="FILE", help="scenario TOML (examples/scenarios/)")
    sim.add_argument("--replay", metavar="CSV", help="play a trace CSV instead of the simulated patient")
    sim.add_argument("--speed", type=float, default=None, help="replay speed (60: a minute per second)")
    sim.add_argument("--interval", type=float, default=None,
                     help="seconds between messages (default: the device's own pace)")  # fmt: skip
    sim.add_argument("--seed", type=int, default=None, help="patient seed (default: the scenario's, else 1)")
    sim.add_argument("--no-handshake", action="store_true", help="capnostream: stream without being asked")
    sim.add_argument("--co2-wave", action="store_true", help="capnostream: also send CO2 wave messages (20/s)")
    sim.set_defaults(func=_simulate)

    prb = sub.add_parser("probe", help="read a device and print each decoded item as a JSON line")
    prb.add_argument("driver", help="driver key, e.g. masimo")
    prb.add_argument("--port", help="serial port or pyserial URL")
    prb.add_argument("--baud", type=int, default=None, help="override the device's documented baud rate")
    prb.add_argument("--for", dest="seconds", type=float, default=10.0, metavar="SECONDS")
    prb.add_argument("--broker", help="mqtt://HOST:PORT (mqtt driver)")
    prb.add_argument("--device", help="device id (mqtt driver)")
    prb.add_argument("--site", default="clinic")
    prb.set_defaults(func=_probe)

    rep = sub.add_parser("replay", help="run a trace CSV through the alarm engine; print its alarms and a summary",
                         description="Run a recorded trace (t, then vital columns) through the alarm engine in "
                                     "virtual time and print every alarm event, then a summary.")  # fmt: skip
    rep.add_argument("trace", metavar="TRACE.csv", help="trace CSV (../shared/data/README.md)")
    which = rep.add_mutually_exclusive_group()
    which.add_argument("--profile", default="ketamine-infusion", metavar="NAME|FILE",
                       help="alarm profile: a built-in name or a TOML file (default ketamine-infusion)")
    which.add_argument("--compare", nargs=2, metavar=("PROFILE_A", "PROFILE_B"),
                       help="run both profiles; both summaries, then the alarms one raised and the other did not")
    rep.add_argument("--profiles-dir", metavar="DIR",
                     help="the clinic's own profiles ([alarms] profiles_dir): their names work as PROFILE too")
    rep.add_argument("--json", action="store_true", help="JSON lines: one per event, then the summary")
    rep.set_defaults(func=_replay)

    tok = sub.add_parser("token", help="manage API tokens")
    tok_sub = tok.add_subparsers(dest="token_command", required=True)
    create = tok_sub.add_parser("create", help="create a bearer token; printed as the last line")
    create.add_argument("--data-dir", required=True)
    create.add_argument("--role", required=True, choices=["viewer", "nurse", "admin"])
    create.add_argument("--label", default="")
    create.set_defaults(func=_token)

    usr = sub.add_parser("user", help="manage dashboard users (passwords are stored as argon2 hashes)")
    usr_sub = usr.add_subparsers(dest="user_command", required=True)
    add = usr_sub.add_parser("add", help="add a user; the password is asked for (or read from stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["viewer", "nurse", "admin"])
    change = usr_sub.add_parser("change", help="change a user's role or password, or disable / enable them")
    change.add_argument("name")
    change.add_argument("--role", choices=["viewer", "nurse", "admin"])
    change.add_argument("--password", action="store_true", help="set a new password (asked for, or from stdin)")
    on_off = change.add_mutually_exclusive_group()
    on_off.add_argument("--disable", action="store_true")
    on_off.add_argument("--enable", action="store_true")
    lst = usr_sub.add_parser("list", help="one user per line: name, role")
    for p in (add, change, lst):
        where = p.add_mutually_exclusive_group()
        where.add_argument("--data-dir", default="data", help="the data dir of the config (default: ./data)")
        where.add_argument("--config", metavar="FILE",
                           help="the config file: its data dir for the accounts, its [storage] for the audit record")
        p.add_argument("--node", metavar="NAME", help="with --config: the node whose accounts these are")
        p.set_defaults(func=_user)

    sta = sub.add_parser("station", help="nursing-station console: every bay's alarms from bedside's MQTT channel",
                         description="A full-screen terminal console of every bay's active alarms, read from the "
                                     "alarm topics bedside publishes on the MQTT broker; a red banner when bedside "
                                     "or the broker cannot be heard.")  # fmt: skip
    sta.add_argument("--broker", required=True, metavar="URL",
                     help="mqtt://[USER[:PASSWORD]@]HOST[:PORT] (1883), or mqtts://... for TLS (8883)")
    sta.add_argument("--site", default="clinic", help="the site bedside publishes for (default clinic)")
    sta.set_defaults(func=_station)

    from monitor.cli_data import add_parsers

    add_parsers(sub)  # sessions list, export, backup
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        code: int = args.func(args)
        return code
    return 130


if __name__ == "__main__":
    sys.exit(main())
