"""bedside's configuration: one TOML file, validated with pydantic, with errors that name the file and the key.

    site = "clinic"
    data_dir = "data"
    [http]            host = "127.0.0.1", port = 8000
    [mqtt]            url = "mqtt://127.0.0.1:1883"  (or private = true: bedside starts its own Mosquitto)
    [[bays]]          id, name, and [[bays.devices]] with id, driver, port (serial) or nothing (mqtt)
    [alarms]          profile, profiles_dir, audio_pause, reminder_after, latching, escalate_after, phase_profiles
                      (alarm limits live in alarm profiles: alerts/profiles/*.toml and docs/alarms.md)
    [storage]         url = "postgresql://user@host:5432/db" (traces in PostgreSQL; default: SQLite in data_dir)
    [sessions]        min_recovery_minutes, stable_minutes, stable_fraction, aldrete_min (discharge rules)
    [notify]          mqtt, instance, heartbeat_interval, failing_after, and [[notify.targets]] with name,
                      kind (hl7 | webhook), url, secret, escalation_level, priorities, technical, timeout, facility
    [[nodes]]         name, role (gateway | engine | dashboard), http, wards: the processes of a hospital
                      deployment (docs/deployment.md); `bedside run --node NAME` runs one of them
    [[wards]]         id, name, engine, standby: which engine owns a ward's bays, which one stands by
                      (a bay names its ward and its gateway: [[bays]] ward, gateway)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.vitals import VITALS

Priority = Literal["high", "medium", "low"]
_ID = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file, the key and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class MqttConfig(_Strict):
    url: str | None = None  # mqtt://host:port
    private: bool = False  # start a private Mosquitto on a free loopback port
    username: str | None = None
    password: str | None = None
    tls: bool = False  # TLS to the broker (url then usually names port 8883)
    ca_file: Path | None = None  # CA bundle that signed the broker's certificate (default: the system's)
    cert_file: Path | None = None  # client certificate, for brokers that authenticate clients by certificate
    key_file: Path | None = None

    @model_validator(mode="after")
    def _url_or_private(self) -> MqttConfig:
        if (self.ca_file or self.cert_file or self.key_file) and not self.tls:
            raise ValueError("ca_file, cert_file and key_file need tls = true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give cert_file and key_file together")
        if self.url is not None and self.private:
            raise ValueError("give either url or private = true, not both")
        if self.url is not None and not self.url.startswith(("mqtt://", "tcp://")):
            raise ValueError(f"url must start with mqtt:// (got {self.url!r})")
        return self


class DeviceConfig(_Strict):
    id: _ID
    driver: str
    port: str | None = None  # serial port or pyserial URL
    baudrate: int | None = Field(default=None, gt=0)  # default: the device's documented line settings
    bytesize: Literal[5, 6, 7, 8] | None = None
    parity: Literal["N", "E", "O", "M", "S"] | None = None
    stopbits: float | None = None  # 1, 1.5 or 2

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float | None) -> float | None:
        if value is not None and value not in (1, 1.5, 2):
            raise ValueError(f"stopbits must be 1, 1.5 or 2 (got {value})")
        return value
    simulate: bool = False  # bedside runs a simulator of this device (pty for serial, publisher for MQTT)
    simulate_vitals: list[str] | None = None  # what a simulated MQTT monitor measures (default: everything)
    silent_after: float = Field(default=10.0, gt=0)  # seconds without data before "no data"


    @field_validator("simulate_vitals")
    @classmethod
    def _known(cls, keys: list[str] | None) -> list[str] | None:
        unknown = [k for k in keys or [] if k not in VITALS]
        if unknown:
            raise ValueError(f"unknown vitals {', '.join(map(repr, unknown))}; known: {', '.join(VITALS)}")
        return keys


class EpisodeConfig(_Strict):
    """A scripted event of a simulated patient (see simulators.patient.Episode)."""

    vital: str
    value: float
    start: float = Field(ge=0)
    duration: float = Field(gt=0)
    every: float | None = Field(default=None, gt=0)

    @field_validator("vital")
    @classmethod
    def _known(cls, key: str) -> str:
        if key not in VITALS:
            raise ValueError(f"unknown vital {key!r}; known: {', '.join(VITALS)}")
        return key


class SimulatedPatientConfig(_Strict):
    """The patient that a bay's simulated devices measure (all devices of a bay see the same patient)."""

    seed: int | None = None  # default: derived from the bay id
    infusion_start: float = Field(default=120.0, ge=0)  # seconds after bedside starts
    infusion_minutes: float = Field(default=40.0, gt=0)
    episodes: list[EpisodeConfig] = Field(default_factory=list)


class BayConfig(_Strict):
    id: _ID
    name: str = ""
    ward: _ID | None = None  # the ward whose engine owns this bay ([[wards]]; deployments with nodes)
    gateway: _ID | None = None  # the gateway node that runs this bay's serial devices and simulators
    profile: _PROFILE | None = None  # alarm profile (default: [alarms] profile)
    devices: list[DeviceConfig] = Field(default_factory=list)
    simulated_patient: SimulatedPatientConfig = SimulatedPatientConfig()


_PROFILE = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


_LATCHING: list[Priority] = ["high"]
_PRIORITIES: list[Priority] = ["high", "medium", "low"]
_ESCALATION: dict[Priority, list[float]] = {"high": [30.0, 90.0]}


class AlarmsConfig(_Strict):
    """The alarm system's settings for the whole site (the responsible organisation's), and the default profile."""

    profile: _PROFILE = "ketamine-infusion"  # the profile of every bay that names none
    profiles_dir: Path | None = None  # more profiles: every *.toml there (relative to the config file)
    audio_pause: float = Field(default=120.0, gt=0, le=120)  # s; ISO 80601-2-61: at most 2 min
    reminder_after: float = Field(default=180.0, gt=0, le=3600)  # s before an acknowledged alarm re-alerts
    latching: list[Priority] = Field(default_factory=lambda: list(_LATCHING))  # physiological alarms that latch
    escalate_after: dict[Priority, list[float]] = Field(default_factory=lambda: dict(_ESCALATION))
    phase_profiles: dict[str, _PROFILE] = Field(
        default_factory=lambda: {"baseline": "ketamine-infusion", "infusion": "ketamine-infusion",
                                 "recovery": "recovery"})

    @field_validator("escalate_after")
    @classmethod
    def _increasing(cls, value: dict[Priority, list[float]]) -> dict[Priority, list[float]]:
        for prio, times in value.items():
            if times != sorted(times) or any(t <= 0 for t in times):
                raise ValueError(f"{prio}: escalation times must be increasing and > 0, got {times}")
        return value


class StorageConfig(_Strict):
    """Where traces live: SQLite in the data dir (no url), or the PostgreSQL database `url` names."""

    url: str | None = Field(default=None, pattern=r"^postgres(ql)?://")


class SessionsConfig(_Strict):
    """The clinic's discharge rules (docs/sessions.md)."""

    min_recovery_minutes: float = Field(default=30.0, ge=0, le=600)
    stable_minutes: float = Field(default=15.0, gt=0, le=120)
    stable_fraction: float = Field(default=0.20, gt=0, le=1)
    aldrete_min: int = Field(default=9, ge=0, le=10)


class NotifyTargetConfig(_Strict):
    """One receiver of alarm events besides the MQTT topics: an HL7 alarm manager (IHE PCD-04 over MLLP) or a
    webhook. `escalation_level` 0 takes alarms from their start; k > 0 only once escalated to level k."""

    name: _ID
    kind: Literal["hl7", "webhook"]
    url: str  # hl7: mllp://host:port; webhook: https://host/path (http:// on loopback or a trusted network)
    secret: str | None = Field(default=None, min_length=16)  # webhook: the HMAC-SHA256 key
    escalation_level: int = Field(default=0, ge=0, le=10)
    priorities: list[Priority] = Field(default_factory=lambda: list(_PRIORITIES), min_length=1)
    technical: bool = True  # also technical alarms (sensor off, device lost, ...)
    timeout: float = Field(default=10.0, gt=0, le=120)  # s for the receiver to acknowledge one message
    facility: str = Field(default="CLINIC", min_length=1, max_length=64)  # hl7: MSH-4 and PV1-3's point of care

    @model_validator(mode="after")
    def _url_and_secret(self) -> NotifyTargetConfig:
        if self.kind == "hl7" and not re.fullmatch(r"mllp://[^/:\s]+:\d{1,5}", self.url):
            raise ValueError(f"url must be mllp://host:port for an hl7 target (got {self.url!r})")
        if self.kind == "webhook":
            if not self.url.startswith(("https://", "http://")):
                raise ValueError(f"url must start with https:// or http:// for a webhook (got {self.url!r})")
            if self.secret is None:
                raise ValueError("a webhook needs secret (at least 16 characters): its messages are signed with it")
        return self


class NotifyConfig(_Strict):
    """Alarm outputs (docs/integration.md): the MQTT topics on the [mqtt] broker, HL7 and webhook targets."""

    mqtt: bool = True  # publish alarm snapshots, events and the heartbeat on the [mqtt] broker, when there is one
    instance: _ID = "bedside"  # names this service's heartbeat topic
    heartbeat_interval: float = Field(default=5.0, ge=1, le=300)  # s
    failing_after: float = Field(default=60.0, gt=0, le=3600)  # s a target may fail before a technical alarm
    targets: list[NotifyTargetConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> NotifyConfig:
        names = [t.name for t in self.targets]
        if "mqtt" in names:
            raise ValueError("target name 'mqtt' is taken by the MQTT output; choose another")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"target names must be unique; repeated: {', '.join(sorted(dup))}")
        return self


Role = Literal["all", "gateway", "engine", "dashboard"]


class NodeConfig(_Strict):
    """One process of a deployment beyond one server (docs/deployment.md); `bedside run --node NAME` runs it."""

    name: _ID
    role: Literal["gateway", "engine", "dashboard"]
    http: HttpConfig = HttpConfig()
    wards: list[_ID] | None = None  # dashboard: the wards it shows (default: every ward)
    mqtt_url: str | None = Field(default=None, pattern=r"^(mqtt|tcp)://")  # this node's way to the broker
    # (default [mqtt] url): e.g. a gateway on a floor's network reaching the cluster through a local bridge


class WardConfig(_Strict):
    """A group of bays whose alarm state lives in exactly one engine at a time: `engine`, or `standby` while
    `engine` is down."""

    id: _ID
    name: str = ""
    engine: _ID
    standby: _ID | None = None
    takeover_after: float = Field(default=15.0, ge=3, le=300)  # s: a primary whose heartbeat is this old is down


class BedsideConfig(_Strict):
    site: _ID = "clinic"
    data_dir: Path = Path("data")
    http: HttpConfig = HttpConfig()
    mqtt: MqttConfig = MqttConfig()
    bays: list[BayConfig] = Field(default_factory=list)
    alarms: AlarmsConfig = AlarmsConfig()
    storage: StorageConfig = StorageConfig()
    sessions: SessionsConfig = SessionsConfig()
    notify: NotifyConfig = NotifyConfig()
    nodes: list[NodeConfig] = Field(default_factory=list)
    wards: list[WardConfig] = Field(default_factory=list)
    role: Role = "all"  # what this process is: set by `bedside run --node NAME` from [[nodes]] (not in the file)
    node: _ID | None = None  # this process's node name (`--node`)

    @model_validator(mode="before")
    @classmethod
    def _no_limits_table(cls, raw: object) -> object:
        if isinstance(raw, dict) and "limits" in raw:
            raise ValueError("[limits] is no longer read: alarm limits live in alarm profiles; set [alarms] profile "
                             "(and profiles_dir for your own profile files), see docs/alarms.md")
        return raw

    @model_validator(mode="after")
    def _unique_and_reachable(self) -> BedsideConfig:
        bay_ids = [b.id for b in self.bays]
        dup = {b for b in bay_ids if bay_ids.count(b) > 1}
        if dup:
            raise ValueError(f"bay ids must be unique; repeated: {', '.join(sorted(dup))}")
        dev_ids = [d.id for b in self.bays for d in b.devices]
        dup = {d for d in dev_ids if dev_ids.count(d) > 1}
        if dup:
            raise ValueError(f"device ids must be unique; repeated: {', '.join(sorted(dup))}")
        needs_mqtt = [d.id for b in self.bays for d in b.devices if d.driver == "mqtt"]
        if needs_mqtt and self.mqtt.url is None and not self.mqtt.private:
            raise ValueError(f"devices {', '.join(needs_mqtt)} use MQTT: set [mqtt] url or private = true")
        for b in self.bays:
            for d in b.devices:
                if d.driver != "mqtt" and d.port is None and not d.simulate:
                    raise ValueError(f"bay {b.id} device {d.id}: a serial device needs port (or simulate)")
        self._check_deployment()
        return self

    def _check_deployment(self) -> None:
        """[[nodes]], [[wards]] and each bay's ward and gateway name one another consistently."""
        names = [n.name for n in self.nodes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"node names must be unique; repeated: {', '.join(sorted(dup))}")
        roles = {n.name: n.role for n in self.nodes}
        ward_ids = [w.id for w in self.wards]
        dup = {w for w in ward_ids if ward_ids.count(w) > 1}
        if dup:
            raise ValueError(f"ward ids must be unique; repeated: {', '.join(sorted(dup))}")
        for w in self.wards:
            for key, name in (("engine", w.engine), ("standby", w.standby)):
                if name is not None and roles.get(name) != "engine":
                    raise ValueError(f"ward {w.id}: {key} {name!r} is not a node with role engine")
            if w.standby == w.engine:
                raise ValueError(f"ward {w.id}: standby must be another engine than {w.engine!r}")
            if w.takeover_after < 2 * self.notify.heartbeat_interval:
                raise ValueError(f"ward {w.id}: takeover_after ({w.takeover_after:g} s) must be at least twice "
                                 f"[notify] heartbeat_interval ({self.notify.heartbeat_interval:g} s), or every "
                                 "beat that is a little late hands the ward over")
        for n in self.nodes:
            for ward in n.wards or []:
                if ward not in ward_ids:
                    raise ValueError(f"node {n.name}: no ward {ward!r}")
        if not self.nodes:
            return
        for b in self.bays:
            if b.ward is None or b.ward not in ward_ids:
                raise ValueError(f"bay {b.id}: ward must name one of the [[wards]] ({', '.join(ward_ids) or 'none'})")
            if b.gateway is not None and roles.get(b.gateway) != "gateway":
                raise ValueError(f"bay {b.id}: gateway {b.gateway!r} is not a node with role gateway")
            for d in b.devices:
                if d.driver != "mqtt" and b.gateway is None:
                    raise ValueError(f"bay {b.id} device {d.id}: a serial device needs the bay's gateway "
                                     "(the node that has its port)")
                if d.simulate and b.gateway is None:
                    raise ValueError(f"bay {b.id} device {d.id}: a simulated device runs on the bay's gateway; "
                                     "give the bay one")
        if self.mqtt.url is None:
            raise ValueError("[[nodes]] talk over MQTT: set [mqtt] url (the broker every node uses)")
        if not self.notify.mqtt:
            raise ValueError("[[nodes]] need [notify] mqtt = true: the engines' heartbeats and alarm topics are how "
                             "the nodes know of one another")

    def for_node(self, name: str) -> BedsideConfig:
        """This config as node `name` runs it: its role and http, its own data dir (`<data_dir>/<name>`: outbox,
        accounts, gateway buffer are each process's own). ValueError when there is no such node."""
        node = next((n for n in self.nodes if n.name == name), None)
        if node is None:
            known = ", ".join(n.name for n in self.nodes) or "none: the file has no [[nodes]]"
            raise ValueError(f"no node {name!r} (nodes: {known})")
        notify = self.notify.model_copy(update={"instance": name})
        mqtt = self.mqtt if node.mqtt_url is None else self.mqtt.model_copy(update={"url": node.mqtt_url})
        return self.model_copy(update={"role": node.role, "node": name, "http": node.http, "notify": notify,
                                       "mqtt": mqtt, "data_dir": self.data_dir / name})

    def node_config(self) -> NodeConfig | None:
        return next((n for n in self.nodes if n.name == self.node), None)

    def wards_of(self, engine: str) -> tuple[list[WardConfig], list[WardConfig]]:
        """The wards `engine` owns as primary, and those it stands by for."""
        return ([w for w in self.wards if w.engine == engine], [w for w in self.wards if w.standby == engine])


def _where(loc: tuple[int | str, ...], raw: object) -> str:
    """A dotted key path, with list indices replaced by the element's id where it has one."""
    parts: list[str] = []
    node: object = raw
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            node = node[item]
            ident = node.get("id") if isinstance(node, dict) else None
            parts[-1] = f"{parts[-1]}[{ident!r}]" if ident is not None else f"{parts[-1]}[{item}]"
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def parse_config(raw: dict[str, object], source: str = "<config>") -> BedsideConfig:
    """Validate a parsed TOML table; ConfigError names `source`, each bad key and what is wrong with it."""
    try:
        return BedsideConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{source}: {_where(e['loc'], raw)}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration\n  " + "\n  ".join(lines)) from None


def read_toml(path: Path, error: type[Exception]) -> dict[str, Any]:
    """A TOML file as a table; `error` (naming the file) when it cannot be read or is not TOML. Shared by the
    config, alarm profiles and scenarios."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def load_config(path: Path) -> BedsideConfig:
    """Read and validate a TOML config file; relative paths (data_dir, TLS files) are relative to the file."""
    cfg = parse_config(read_toml(path, ConfigError), str(path))

    def near(p: Path) -> Path:
        return p if p.is_absolute() else (path.parent / p).resolve()

    mqtt = cfg.mqtt.model_copy(update={k: near(v) for k in ("ca_file", "cert_file", "key_file")
                                       if (v := getattr(cfg.mqtt, k)) is not None})
    alarms = cfg.alarms
    if alarms.profiles_dir is not None:
        alarms = alarms.model_copy(update={"profiles_dir": near(alarms.profiles_dir)})
    return cfg.model_copy(update={"data_dir": near(cfg.data_dir), "mqtt": mqtt, "alarms": alarms})
