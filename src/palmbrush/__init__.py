"""palmbrush: real-time artistic style transfer on an ordinary CPU."""

__version__ = "0.1.0"
