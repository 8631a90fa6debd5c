"""The release of Set2Tracks this code is."""

__version__ = "0.1.0"
