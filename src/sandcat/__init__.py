"""Sandcat: a self-hosted instant-messaging server on Trio."""

__version__ = "0.1.0"

__all__ = ["__version__"]
