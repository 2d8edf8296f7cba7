"""The pure, synchronous core: no asyncio, aiohttp, sqlmodel or structlog here.

Everything in this package is given what it needs (schemas, mappings, clock values, random
generators) and returns values; it never logs and never touches the network or a database.
"""

from __future__ import annotations
