"""bedside's core: the domain model (ground floor), the hub and recorder (middle floor), the service and CLI (top).

Ground floor modules (`vitals`, `model`, `config`) import only the standard library, numpy and pydantic.
"""
