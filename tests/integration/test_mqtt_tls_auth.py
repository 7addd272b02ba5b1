"""The MQTT driver against a Mosquitto that requires TLS and a username/password: with the right CA and
credentials data flows; with a wrong password the device stays "lost" (and the reason says why)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from drivers.base import DeviceSettings
from drivers.mqtt_driver import MqttDriver
from drivers.supervise import supervise
from monitor.model import Condition
from monitor.mosquitto import PrivateMosquitto
from tests.integration.helpers import Collected, wait_for

pytestmark = pytest.mark.timeout(40)


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl command."""
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for cmd in (
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "1",
         "-subj", "/CN=bedside test CA"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "1", "-extfile", ext],
    ):
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    return ca, cert, key


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[PrivateMosquitto, Path]]:
    ca, cert, key = make_certs(tmp_path)
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "nurse-station", "s3cret"], check=True)
    with PrivateMosquitto(tls=(ca, cert, key), password_file=passwords) as broker:
        yield broker, ca


async def test_tls_and_password(secure_broker: tuple[PrivateMosquitto, Path]) -> None:
    broker, ca = secure_broker

    def settings(password: str) -> DeviceSettings:
        return DeviceSettings("mon1", mqtt_host=broker.host, mqtt_port=broker.port, site="clinic",
                              mqtt_username="nurse-station", mqtt_password=password, mqtt_tls=True,
                              mqtt_ca_file=str(ca))

    wrong = Collected()
    bad = asyncio.create_task(supervise(MqttDriver(settings("wrong")), wrong, first_delay=0.2, max_delay=0.5))
    good = Collected()
    task = asyncio.create_task(supervise(MqttDriver(settings("s3cret")), good, first_delay=0.2, max_delay=0.5))
    try:
        await wait_for(lambda: good.lost() is False, 10, "connected over TLS")
        payload = json.dumps({"ts": 1767268800, "seq": 1, "values": {"spo2": 96}}).encode()
        async with aiomqtt.Client(broker.host, broker.port, username="nurse-station", password="s3cret",
                                  tls_params=aiomqtt.TLSParameters(ca_certs=str(ca))) as client:
            await client.publish("bedside/v1/clinic/dev/mon1/numerics", payload, qos=1)
        await wait_for(lambda: len(good.readings("spo2")) == 1, 5, "a reading over TLS")
        await wait_for(lambda: wrong.lost() is True, 5, "refused login")
        assert wrong.readings() == []
        reasons = [c.detail.lower() for c in wrong.conditions(Condition.DEVICE_LOST) if c.active]
        assert reasons and all("not authori" in r or "bad user name or password" in r for r in reasons), reasons
    finally:
        for t in (task, bad):
            t.cancel()
        await asyncio.gather(task, bad, return_exceptions=True)
