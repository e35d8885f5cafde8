"""Errors of release detection. Lambda reports the class name as the error type, so the state machine
matches these exact names: one class per outcome, no subclasses to tell apart."""

from updraft.errors import UpdraftError


class UntrustedRelease(UpdraftError):
    """Bottlerocket's update repository could not be verified, so nothing it says is trusted.

    The message names the file and what failed ("timestamp.json: expired ..."); `reason` is a short
    machine-readable word for metrics and alarms; the python-tuf error is kept as `__cause__`.
    Network failures land here too (reason "download"): an unreachable repository proves nothing.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class MalformedManifest(UpdraftError):
    """manifest.json passed TUF verification but does not match Bottlerocket's manifest format."""


class TrustedRootMismatch(UpdraftError):
    """The deployed root.json is not the one the stack was synthesized with (its SHA-512 differs, or it is
    gone): detection stops rather than trust an anchor someone replaced."""
