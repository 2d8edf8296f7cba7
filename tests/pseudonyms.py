"""The pseudonym key of the test stores (a store never has a default one)."""

from __future__ import annotations

from gateway.core.privacy import Pseudonymizer

TEST_PSEUDONYMS = Pseudonymizer(b"test-only pseudonym key, public!")
"""What test stores key their clients with; tests compute expected client keys with it."""
