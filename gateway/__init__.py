"""ijw-gateway: validate, translate, route and deliver iJw 3.2 messages."""

from __future__ import annotations

__version__ = "0.1.0"
