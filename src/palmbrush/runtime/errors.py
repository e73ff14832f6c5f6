"""The runtime's errors live in palmbrush.errors (shared by every layer); re-exported here."""

from ..errors import FeedError, ModelError, PalmbrushError, Unsupported

__all__ = ["FeedError", "ModelError", "PalmbrushError", "Unsupported"]
