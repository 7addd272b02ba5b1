"""Alarm outputs: the messages bedside sends about the engine's alarm events, and how they are sent."""
