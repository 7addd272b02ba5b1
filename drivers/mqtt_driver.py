"""Driver for a monitor that publishes numerics over MQTT in schema `bedside/v1` (aiomqtt, QoS 1).

Subscribes to the device's numerics and state topics. A broker that goes away raises DeviceLost (the
supervisor reconnects with backoff); a device that says `offline` (or whose last will fires) is "device lost"
while the broker link itself is fine.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

import aiomqtt

from drivers.base import CONNECTED, DeviceLost, DeviceSettings, Driver, Emit
from drivers.mqtt_numerics import MqttNumericsCodec, numerics_topic, state_topic
from monitor.mqtt_socket import NODELAY


class MqttDriver(Driver):
    key: ClassVar[str] = "mqtt"

    def __init__(self, settings: DeviceSettings) -> None:
        super().__init__(settings)
        self.codec = MqttNumericsCodec()
        self.stats = self.codec.stats

    async def run(self, emit: Emit) -> None:
        s = self.settings
        numerics = numerics_topic(s.site, s.device_id)
        state = state_topic(s.site, s.device_id)
        try:
            async with aiomqtt.Client(
                s.mqtt_host,
                s.mqtt_port,
                identifier=f"bedside-{s.device_id}-{uuid.uuid4().hex[:8]}",
                username=s.mqtt_username,
                password=s.mqtt_password,
                keepalive=10,
                socket_options=NODELAY,
                tls_params=aiomqtt.TLSParameters(s.mqtt_ca_file, s.mqtt_cert_file, s.mqtt_key_file)
                if s.mqtt_tls else None,
            ) as client:
                await client.subscribe(numerics, qos=1)
                await client.subscribe(state, qos=1)
                emit(CONNECTED)
                async for message in client.messages:
                    payload = message.payload
                    data = payload if isinstance(payload, bytes) else str(payload).encode()
                    if message.topic.matches(numerics):
                        events = self.codec.numerics(data)
                    else:
                        events = self.codec.presence(data)
                    for event in events:
                        emit(event)
        except aiomqtt.MqttError as exc:
            raise DeviceLost(f"MQTT broker {s.mqtt_host}:{s.mqtt_port}: {exc}") from exc
        raise DeviceLost(f"MQTT broker {s.mqtt_host}:{s.mqtt_port}: connection closed")
