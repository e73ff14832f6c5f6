"""Errors palmbrush raises: each message is one line that names the problem (every layer)."""


class PalmbrushError(Exception):
    """Base of every error palmbrush reports to a user (shown without a traceback)."""


class ModelError(PalmbrushError):
    """The model file or graph is broken, hostile, or uses something we do not support."""


class FeedError(PalmbrushError):
    """The arrays given to Predictor.run do not match the model's declared inputs."""


class Unsupported(Exception):
    """Raised by an engine's kernel check: this engine declines this node, for `reason`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
