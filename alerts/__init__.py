"""Alarm decisions: limit rules, the streaming engine that turns observations into alarm events, notifiers.

Imports only the ground floor of `monitor`. The dashboard and notifiers show and send what the engine decided.
"""
