"""The registry of problem codes: every stable `code` a refusal can carry, with its status.

A refusal's `code` (the RFC 9457 problem body's machine-readable member) is one of these
members, never a free string: the raise sites, the OpenAPI document and the engine take
them from here, and tests hold docs/errors.md and the client's mapping to this list.
It imports nothing of the application, so every layer may use it.
"""

from __future__ import annotations

import enum


class ProblemCode(enum.StrEnum):
    """A stable problem code, with the HTTP `status` it is sent with, a short `summary` and
    its `meaning` in one line."""

    status: int
    summary: str
    meaning: str

    def __new__(cls, value: str, status: int, summary: str, meaning: str) -> ProblemCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.summary = summary
        member.meaning = meaning
        return member

    # The execute form
    MISSING_WASM = (
        "missing_wasm",
        400,
        "No module",
        "No `wasm` field in the form, and no `module` naming a stored one.",
    )
    INVALID_ARGS = "invalid_args", 400, "Bad args", "`args` is not a JSON array of strings."
    INVALID_ENV = "invalid_env", 400, "Bad env", "`env` is not a JSON object of strings."
    INVALID_DETERMINISTIC = (
        "invalid_deterministic",
        400,
        "Bad deterministic",
        "`deterministic` is not true or false.",
    )
    INVALID_SEED = "invalid_seed", 400, "Bad seed", "`seed` is not an integer from 0 to 2^64 - 1."
    INVALID_CACHE = "invalid_cache", 400, "Bad cache", "`cache` is not true or false."
    INVALID_MAX_FUEL = (
        "invalid_max_fuel",
        400,
        "Bad max_fuel",
        "`max_fuel` is not an integer from 1 to 2^64 - 1.",
    )
    UNKNOWN_FIELD = "unknown_field", 400, "Unknown field", "A form field the route does not take."
    INVALID_FORM = (
        "invalid_form",
        400,
        "Bad form",
        "The multipart body could not be parsed, or a field came twice.",
    )
    UNSUPPORTED_MEDIA_TYPE = (
        "unsupported_media_type",
        400,
        "Not a form",
        "The body is not multipart/form-data.",
    )
    WASM_AND_MODULE = (
        "wasm_and_module",
        400,
        "Two modules",
        "The form sent both `wasm` and `module`: one or the other.",
    )
    INVALID_MODULE_REFERENCE = (
        "invalid_module_reference",
        400,
        "Bad module reference",
        "`module` is neither `sha256:` and 64 hex digits nor a module name.",
    )
    INVALID_CASES = (
        "invalid_cases",
        400,
        "Bad cases",
        "A batch's `cases` or `defaults` is not valid, or has too many cases; `case` says which.",
    )
    INVALID_REQUEST = (
        "invalid_request",
        422,
        "Invalid request",
        "A query parameter or request field is invalid.",
    )
    INVALID_USAGE_QUERY = (
        "invalid_usage_query",
        422,
        "Bad usage query",
        "A usage query's range, grouping, key, account or cursor is invalid, or too long.",
    )

    # Files
    INVALID_FILE_PATH = (
        "invalid_file_path",
        400,
        "Bad file path",
        "A file's path is empty, absolute, has `..`, a backslash or a control character, "
        "or is too long or too deep.",
    )
    DUPLICATE_FILE_PATH = (
        "duplicate_file_path",
        400,
        "Duplicate file path",
        "Two files have the same path, or a file's path is also a directory of another.",
    )
    FILE_TYPE_NOT_ALLOWED = (
        "file_type_not_allowed",
        400,
        "File type not allowed",
        "An archive member is a link, a device, a FIFO: not a regular file or a directory.",
    )
    TOO_MANY_FILES = (
        "too_many_files",
        400,
        "Too many files",
        "More files and directories than the limit, implied parent directories included.",
    )
    FILES_TOO_LARGE = (
        "files_too_large",
        413,
        "Files too large",
        "The input files are over the limit, counted as an archive is expanded.",
    )
    INVALID_ARCHIVE = (
        "invalid_archive",
        400,
        "Bad archive",
        "`archive` is not a tar, tar.gz or zip, or it is damaged or uses what is not supported.",
    )
    FILES_AND_ARCHIVE = (
        "files_and_archive",
        400,
        "Files and archive",
        "The form sent both `files` and `archive`: one or the other.",
    )
    INVALID_COLLECT = (
        "invalid_collect",
        400,
        "Bad collect",
        "`collect` is not a JSON list of glob patterns.",
    )

    # Credentials and permissions
    UNAUTHORIZED = "unauthorized", 401, "No valid key", "No API key, or one that does not work."
    INVALID_CREDENTIALS = (
        "invalid_credentials",
        401,
        "Wrong credentials",
        "Sign-in: the email or the password is wrong.",
    )
    FORBIDDEN = (
        "forbidden",
        403,
        "Forbidden",
        "The account is deactivated, or not an administrator.",
    )
    INSUFFICIENT_SCOPE = (
        "insufficient_scope",
        403,
        "Missing scope",
        "The key lacks the scope this needs.",
    )
    ACCOUNT_DEACTIVATED = (
        "account_deactivated",
        403,
        "Account deactivated",
        "Sign-in to a deactivated account.",
    )
    CSRF_FAILED = "csrf_failed", 403, "CSRF check failed", "A form came without its CSRF token."
    SIGNUP_CLOSED = "signup_closed", 403, "Sign-up closed", "Web sign-up is closed on this server."

    # Resources and methods
    NOT_FOUND = "not_found", 404, "Not found", "No such route or resource."
    METHOD_NOT_ALLOWED = (
        "method_not_allowed",
        405,
        "Method not allowed",
        "Wrong HTTP method for the route.",
    )
    MODULE_NOT_FOUND = (
        "module_not_found",
        404,
        "Module not found",
        "No stored module of this account (or public runtime) by that id or name.",
    )
    CONFLICT = "conflict", 409, "Conflict", "The resource changed meanwhile; retry."
    EMAIL_TAKEN = "email_taken", 409, "Email taken", "An account with that email exists already."
    TIER_EXISTS = "tier_exists", 409, "Tier exists", "A tier of that name exists already."
    KEY_LIMIT_REACHED = (
        "key_limit_reached",
        409,
        "Key limit reached",
        "The account has its tier's most keys.",
    )

    # Accounts, keys and tiers
    WEAK_PASSWORD = "weak_password", 400, "Weak password", "A new password breaks the rules."
    PASSWORDS_DIFFER = (
        "passwords_differ",
        400,
        "Passwords differ",
        "A form's two copies of a password differ.",
    )
    WRONG_PASSWORD = "wrong_password", 400, "Wrong password", "The current password is wrong."
    INVALID_EMAIL = "invalid_email", 400, "Bad email", "Not an email address."
    SIGNUP_REFUSED = (
        "signup_refused",
        400,
        "Sign-up refused",
        "No account can be made with this email and password.",
    )
    INVALID_INVITE = (
        "invalid_invite",
        400,
        "Bad invite",
        "The invite code is missing, unknown, used or expired.",
    )
    INVALID_NAME = "invalid_name", 400, "Bad key name", "An API key name needs 1 to 100 characters."
    INVALID_EXPIRY = "invalid_expiry", 400, "Bad expiry", "An API key expiry is not in the future."
    INVALID_TIER = (
        "invalid_tier",
        400,
        "Bad tier",
        "No such tier, or a tier's name or limit is bad.",
    )
    INVALID_MODULE_NAME = (
        "invalid_module_name",
        400,
        "Bad module name",
        "A module name needs 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit.",
    )
    STORAGE_QUOTA_EXCEEDED = (
        "storage_quota_exceeded",
        403,
        "Storage quota full",
        "The account keeps its tier's most stored modules, or bytes of them.",
    )
    INVALID_SCOPE = "invalid_scope", 400, "Bad scope", "An unknown scope, or none, for a new key."
    INVALID_KEY_LIMIT = (
        "invalid_key_limit",
        400,
        "Bad key limit",
        "A key's own limit is below 1 or above its account's.",
    )
    BULK_REFUSED = (
        "bulk_refused",
        422,
        "Bulk call refused",
        "An item of a bulk call was refused, so nothing changed; `items` says which and why.",
    )
    DUPLICATE_ID = (
        "duplicate_id",
        422,
        "Duplicate id",
        "A bulk item: the id came earlier in the same call.",
    )
    CURRENT_KEY = (
        "current_key",
        409,
        "Current key",
        "A bulk item: the key making the call cannot revoke itself in bulk.",
    )
    KEY_INACTIVE = (
        "key_inactive",
        409,
        "Key inactive",
        "A bulk item: the key is revoked or expired, so it cannot be updated.",
    )

    # Sizes and time
    REQUEST_TIMEOUT = (
        "request_timeout",
        408,
        "Request timeout",
        "The request did not arrive in time.",
    )
    WASM_TOO_LARGE = "wasm_too_large", 413, "Module too large", "The module is over the limit."
    INPUT_TOO_LARGE = "input_too_large", 413, "Input too large", "The input is over the limit."
    REQUEST_TOO_LARGE = (
        "request_too_large",
        413,
        "Request too large",
        "The body is over the route's limit.",
    )
    HEADER_TOO_LARGE = (
        "header_too_large",
        431,
        "Head too large",
        "The request head is too large or has too many lines.",
    )

    # The module (the engine's refusals: MODULE_REFUSALS)
    EMPTY_WASM = "empty_wasm", 422, "Empty module", "The module is empty."
    INVALID_WASM = (
        "invalid_wasm",
        422,
        "Not WebAssembly",
        "Not a WebAssembly binary or text, or it does not validate.",
    )
    TRUNCATED_WASM = "truncated_wasm", 422, "Truncated module", "A binary that is cut short."
    INVALID_WAT = (
        "invalid_wat",
        422,
        "Bad WebAssembly text",
        "WebAssembly text that does not parse.",
    )
    COMPONENT_NOT_SUPPORTED = (
        "component_not_supported",
        422,
        "Component",
        "A component-model binary, not a core module.",
    )
    UNSUPPORTED_IMPORT = (
        "unsupported_import",
        422,
        "Unsupported import",
        "An import outside WASI preview 1.",
    )
    MISSING_START = "missing_start", 422, "No _start", "No exported `_start` function () -> ()."
    MISSING_MEMORY_EXPORT = (
        "missing_memory_export",
        422,
        "No memory export",
        "WASI imports but no exported `memory`.",
    )
    UNSUPPORTED_FEATURE = (
        "unsupported_feature",
        422,
        "Unsupported proposal",
        "A proposal this server does not enable.",
    )
    DECLARED_MEMORY_TOO_LARGE = (
        "declared_memory_too_large",
        422,
        "Memory too large",
        "The declared minimum memory is over the limit.",
    )
    DECLARED_TABLE_TOO_LARGE = (
        "declared_table_too_large",
        422,
        "Table too large",
        "A declared minimum table size is over the limit.",
    )
    TOO_MANY_FUNCTIONS = (
        "too_many_functions",
        422,
        "Too many functions",
        "More functions than the limit.",
    )
    TOO_MANY_LOCALS = (
        "too_many_locals",
        422,
        "Too many locals",
        "A function declares more locals than the limit.",
    )
    FUNCTION_TOO_LARGE = (
        "function_too_large",
        422,
        "Function too large",
        "A function body is larger than the limit.",
    )
    TOO_MANY_DATA_SEGMENTS = (
        "too_many_data_segments",
        422,
        "Too many data segments",
        "More data segments than the limit.",
    )
    TOO_MANY_TYPES = "too_many_types", 422, "Too many types", "More declared types than the limit."
    TOO_MANY_IMPORTS = (
        "too_many_imports",
        422,
        "Too many imports",
        "More declared imports than the limit.",
    )
    TOO_MANY_EXPORTS = (
        "too_many_exports",
        422,
        "Too many exports",
        "More declared exports than the limit.",
    )
    TOO_MANY_MEMORIES = (
        "too_many_memories",
        422,
        "Too many memories",
        "More declared memories than the limit.",
    )
    TOO_MANY_TABLES = (
        "too_many_tables",
        422,
        "Too many tables",
        "More declared tables than the limit.",
    )
    COMPILE_TIMEOUT = (
        "compile_timeout",
        422,
        "Compile timeout",
        "Compiling the module took more than the limit.",
    )
    COMPILE_MEMORY_LIMIT = (
        "compile_memory_limit",
        422,
        "Compile memory limit",
        "Compiling needed more memory than the limit.",
    )

    # Jobs (docs/jobs.md)
    JOB_NOT_FOUND = "job_not_found", 404, "Job not found", "No job of this account by that id."
    JOB_NOT_CANCELLABLE = (
        "job_not_cancellable",
        409,
        "Job not cancellable",
        "The job is no longer queued: it runs or has ended.",
    )
    JOB_QUEUE_FULL = (
        "job_queue_full",
        429,
        "Job queue full",
        "The account has its tier's most jobs waiting already.",
    )
    JOB_INTERRUPTED = (
        "job_interrupted",
        500,
        "Job interrupted",
        "A failed job's `error.code`: its run was interrupted JOB_MAX_ATTEMPTS times.",
    )
    INVALID_CALLBACK_URL = (
        "invalid_callback_url",
        400,
        "Bad callback_url",
        "`callback_url` is not an http(s) URL the service may call.",
    )

    # Webhooks (docs/webhooks.md)
    WEBHOOK_NOT_FOUND = (
        "webhook_not_found",
        404,
        "Webhook not found",
        "No webhook endpoint (or delivery of it) of this account by that id.",
    )
    WEBHOOK_URL_REFUSED = (
        "webhook_url_refused",
        400,
        "Webhook URL refused",
        "The endpoint's URL is not an http(s) URL the service may call.",
    )
    INVALID_WEBHOOK_EVENTS = (
        "invalid_webhook_events",
        400,
        "Bad webhook events",
        "`events` is empty, or names an event type there is not.",
    )
    TOO_MANY_WEBHOOKS = (
        "too_many_webhooks",
        409,
        "Too many webhooks",
        "The account has the most webhook endpoints allowed; delete one first.",
    )

    # Limits
    RATE_LIMITED = "rate_limited", 429, "Rate limited", "Over the per-minute limit."
    DAILY_QUOTA_EXCEEDED = (
        "daily_quota_exceeded",
        429,
        "Daily quota exceeded",
        "Over the daily quota.",
    )
    TOO_MANY_CONCURRENT = (
        "too_many_concurrent",
        429,
        "Too many concurrent",
        "The most runs in flight already.",
    )
    KEY_CREATION_RATE_LIMITED = (
        "key_creation_rate_limited",
        429,
        "Key creation limited",
        "Too many keys created lately.",
    )
    API_RATE_LIMITED = (
        "api_rate_limited",
        429,
        "API rate limited",
        "Too many requests lately (API calls other than runs, and signed-in pages).",
    )
    COMPILE_BUDGET_EXCEEDED = (
        "compile_budget_exceeded",
        429,
        "Compile budget spent",
        "The compile seconds a minute are spent.",
    )
    TOO_MANY_SIGNUPS = "too_many_signups", 429, "Too many sign-ups", "Too many sign-ups lately."
    TOO_MANY_LOGIN_ATTEMPTS = (
        "too_many_login_attempts",
        429,
        "Too many sign-ins",
        "Too many sign-in attempts lately.",
    )
    TRY_LATER = "try_later", 429, "Try later", "Every password-hashing thread is busy."

    # The server
    INTERNAL_ERROR = "internal_error", 500, "Internal error", "A fault on our side."
    SERVER_BUSY = "server_busy", 503, "Server busy", "No execution slot, memory or connection free."
    RATE_LIMITER_UNAVAILABLE = (
        "rate_limiter_unavailable",
        503,
        "Rate limiter unavailable",
        "Redis is unreachable.",
    )
    DATABASE_UNAVAILABLE = (
        "database_unavailable",
        503,
        "Database unavailable",
        "The database cannot be reached.",
    )
    SHUTTING_DOWN = "shutting_down", 503, "Shutting down", "This instance is draining."


# The codes the engine (wasmwiz.sandbox) refuses a submitted module with.
MODULE_REFUSALS: frozenset[ProblemCode] = frozenset(
    {
        ProblemCode.WASM_TOO_LARGE,
        *(code for code in ProblemCode if code.status == 422),
    }
    - {ProblemCode.INVALID_REQUEST}
)
