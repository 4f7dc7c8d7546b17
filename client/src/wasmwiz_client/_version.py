"""The client's own version, apart from the server's (docs/releasing.md: how it is released)."""

__version__ = "0.4.0"
