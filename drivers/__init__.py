"""Device drivers: sans-I/O codecs (bytes in, device events out), transports, the driver base class and registry.

Imports only the ground floor of `monitor` (vitals, model).
"""
