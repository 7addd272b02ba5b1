"""Simulated patients and bedside devices, for tests, demos and development without hardware.

`patient` models the vital signs of one patient during a ketamine-infusion session; `masimo` turns them into a
Masimo Radical-7 "ASCII 1" serial stream (on a pty, a serial port/pyserial URL, or a TCP socket); `mqtt_monitor`
publishes them as a monitor speaking the bedside/v1 MQTT schema. The device encoders are written from the protocol
descriptions (shared/reference/device-protocols.md), never from the decoders in drivers/, so a test that runs a
simulator into a driver checks two independent readings of the same specification.
"""
