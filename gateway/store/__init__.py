"""Durable storage of messages, their events, the queue state and the audit trail."""

from __future__ import annotations
