"""Persistence: SQLAlchemy models, the engine and session factory, migrations, repositories."""

from wasmwiz.persistence.database import Database, PoolOptions, normalize_url
from wasmwiz.persistence.models import ApiKey, Base, SubscriptionTier, UsageLog, User

__all__ = [
    "ApiKey",
    "Base",
    "Database",
    "PoolOptions",
    "SubscriptionTier",
    "UsageLog",
    "User",
    "normalize_url",
]
