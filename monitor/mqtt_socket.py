"""The socket options of every MQTT connection bedside makes (drivers, alarm output, station, simulators).

paho-mqtt, under aiomqtt, leaves Nagle's algorithm on. An alarm publish that follows another small write on the same
connection (the bay's snapshot, then its event) then waits for the broker's delayed ACK, about 40 ms on Linux,
before it leaves. TCP_NODELAY sends each packet when it is written; MQTT packets are whole messages, so nothing is
gained by holding them back. Measured by bench/latency.py (docs/performance.md).
"""

from __future__ import annotations

import socket

SocketOption = tuple[int, int, int]

NODELAY: tuple[SocketOption, ...] = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
