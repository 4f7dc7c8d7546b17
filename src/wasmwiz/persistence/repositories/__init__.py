"""Queries, one module per aggregate; they flush at most and never commit."""

from wasmwiz.persistence.repositories import api_keys, tiers, usage_logs, users

__all__ = ["api_keys", "tiers", "usage_logs", "users"]
