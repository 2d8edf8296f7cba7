"""Why a use case refuses: the errors the HTTP server, the inbox watcher and the CLI translate
into their own answers (a status code, a file left in place, an exit code)."""

from __future__ import annotations

from gateway.core.errors import GatewayError


class IntakeClosedError(GatewayError):
    """The gateway is shutting down and accepts no new messages."""


class MessageTooLargeError(GatewayError):
    """The message is larger than the configured limit."""


class NotFoundError(GatewayError):
    """No such message, or not one the asking party may see."""


class OperatorRefusedError(GatewayError):
    """The operator action does not apply to the message in its current state."""
