"""Exception hierarchy of the gateway. Bad *input* never raises: it becomes findings."""

from __future__ import annotations


class GatewayError(Exception):
    """Something went wrong in the gateway."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class SchemaInvalid(GatewayError):
    """A schema folder or file could not be loaded."""


class RuleViolation(GatewayError):
    """A rule was violated where the caller asked for an exception instead of findings."""


class UnknownCode(GatewayError):
    """A code is not known in the list that should contain it."""


class IllegalTransition(GatewayError):
    """The message cannot move to that state from the state it is in."""


class TransientDeliveryError(GatewayError):
    """Delivery failed for a reason that may pass; it will be retried."""


class PermanentDeliveryError(GatewayError):
    """Delivery failed for a reason that retrying will not fix."""


class ConfigError(GatewayError):
    """The configuration is invalid."""


class PseudonymKeyMismatch(ConfigError):
    """The configured pseudonym key is not the one the store's client keys were made with."""

    def __init__(self, source: str, store_fingerprint: str, configured_fingerprint: str) -> None:
        # Fingerprint prefixes let an operator tell key files apart; the key is never shown.
        super().__init__(
            f"{source} is not the pseudonym key this store's client keys were made with "
            f"(key fingerprint {configured_fingerprint[:12]}, the store's "
            f"{store_fingerprint[:12]}): dossier checks would see no history and BSN searches "
            "find nothing. Give this node the store's key, the same on every node "
            "(docs/scaling.md)"
        )


class IdentificatieReused(GatewayError):
    """Intake refuses a message: its sender used its BerichtIdentificatie for another message
    of the same type, with other content (``earlier_id``); nothing was stored."""

    def __init__(self, earlier_id: str, message_type: str | None, identificatie: str | None):
        super().__init__(
            f"{message_type} BerichtIdentificatie {identificatie!r} was already used by this "
            f"sender for message {earlier_id}, with other content; send it with a new "
            "Identificatie"
        )
        self.earlier_id = earlier_id


class StoreError(GatewayError):
    """The message store could not do what was asked."""
