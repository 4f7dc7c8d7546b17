"""Logging, metrics and the per-request middleware."""
