"""What the server and the command line build the same way from the Settings.

Kept apart from `wasmwiz.app`: a command such as `wasmwiz user create` needs these and
not the web application, whose imports (FastAPI, every route and page) cost a new
process more than a second of CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmwiz.auth import HashScheme
from wasmwiz.config import Settings
from wasmwiz.sandbox.models import Limits
from wasmwiz.services.api_keys import ApiKeyService, KeyEvents

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from wasmwiz.services.key_cache import KeyCache
    from wasmwiz.services.rate_limits import KeyCreationLimit


def api_key_service(
    settings: Settings,
    *,
    cache: KeyCache | None = None,
    creation_limit: KeyCreationLimit | None = None,
    events: KeyEvents | None = None,
    tracer: Tracer | None = None,
) -> ApiKeyService:
    """API keys under SECRET_KEY and API_KEY_HASH_SCHEME: the server's and the CLI's."""
    return ApiKeyService(
        settings.secret_key,
        hash_scheme=HashScheme(settings.api_key_hash_scheme),
        cache=cache,
        creation_limit=creation_limit,
        events=events,
        tracer=tracer,
    )


def sandbox_limits(settings: Settings) -> Limits:
    """A run's limits as the Settings give them (a tier or a request may lower them)."""
    return Limits(
        timeout_seconds=settings.execution_timeout,
        memory_bytes=settings.memory_limit,
        max_output_bytes=settings.max_output_size,
        files_quota_bytes=settings.files_quota,
        files_max_entries=settings.files_max_entries,
        files_max_output_bytes=settings.files_max_output_bytes,
    )
