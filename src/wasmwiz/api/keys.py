"""/api/v1/keys: the caller's own API keys (list, create, revoke, bulk); `keys:write`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from wasmwiz.api.dependencies import KeysWriter
from wasmwiz.api.openapi import problem_responses
from wasmwiz.http_common.dependencies import ApiKeysDep
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep, UnitOfWorkRoute
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.key_bulk import KEEP, MAX_BULK_KEYS, BulkAction, BulkItem, KeyChanges
from wasmwiz.services.key_listing import MAX_PER_PAGE, ListedKey, list_key_page
from wasmwiz.services.principals import DEFAULT_KEY_SCOPES, KeyLimits, Scope, stored_scopes

router = APIRouter(tags=["keys"], route_class=UnitOfWorkRoute)

_LIMIT_DESCRIPTION = "The key's own limit, at most the account's; null: the account's alone."


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str = Field(description="`active`, `expired` or `revoked`.")
    scopes: list[Scope] = Field(description="What the key may do.")
    requests_per_minute: int | None = Field(description=_LIMIT_DESCRIPTION)
    requests_per_day: int | None = Field(description=_LIMIT_DESCRIPTION)
    max_concurrent_executions: int | None = Field(description=_LIMIT_DESCRIPTION)

    @classmethod
    def of(cls, listed: ListedKey) -> ApiKeyOut:
        key = listed.key
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            status=listed.status,
            scopes=[scope for scope in Scope if scope in stored_scopes(key.scopes)],
            requests_per_minute=key.requests_per_minute,
            requests_per_day=key.requests_per_day,
            max_concurrent_executions=key.max_concurrent_executions,
        )


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    page: int
    per_page: int
    next_page: int | None = Field(description="The next page's number, or null on the last.")


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["ci"])
    # Aware only: a naive time has no instant to compare with (it was a 500).
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the key stops working (RFC 3339, with a zone)."
    )
    scopes: list[Scope] = Field(
        default=sorted(DEFAULT_KEY_SCOPES),
        max_length=len(Scope),
        description="What the new key may do; at most the scopes of the key making it. "
        "`admin` only for an administrator's key.",
    )
    requests_per_minute: int | None = Field(default=None, ge=1, description=_LIMIT_DESCRIPTION)
    requests_per_day: int | None = Field(default=None, ge=1, description=_LIMIT_DESCRIPTION)
    max_concurrent_executions: int | None = Field(
        default=None, ge=1, description=_LIMIT_DESCRIPTION
    )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key. It is shown only in this response.")


class RevokedAll(BaseModel):
    revoked: int = Field(description="How many keys were still working and are revoked now.")


class KeyChangesIn(BaseModel):
    """What a bulk update sets on every key; a field left out stays as each key has it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the keys stop working (RFC 3339, with a zone); null: never."
    )
    scopes: list[Scope] | None = Field(
        default=None,
        min_length=1,
        max_length=len(Scope),
        description="What the keys may do; at most the scopes of the key making the call.",
    )
    requests_per_minute: int | None = Field(default=None, ge=1, description=_LIMIT_DESCRIPTION)
    requests_per_day: int | None = Field(default=None, ge=1, description=_LIMIT_DESCRIPTION)
    max_concurrent_executions: int | None = Field(
        default=None, ge=1, description=_LIMIT_DESCRIPTION
    )

    @model_validator(mode="after")
    def _name_and_scopes_not_null(self) -> KeyChangesIn:
        for field in ("name", "scopes"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"`{field}` cannot be null; leave it out to keep it")
        return self

    def changes(self) -> KeyChanges:
        """A field sent is a change (null clears the expiry or a limit); one left out, KEEP."""
        given = self.model_fields_set
        return KeyChanges(
            name=self.name if self.name is not None else KEEP,
            scopes=frozenset(self.scopes) if self.scopes is not None else KEEP,
            expires_at=self.expires_at if "expires_at" in given else KEEP,
            requests_per_minute=(
                self.requests_per_minute if "requests_per_minute" in given else KEEP
            ),
            requests_per_day=self.requests_per_day if "requests_per_day" in given else KEEP,
            max_concurrent_executions=(
                self.max_concurrent_executions if "max_concurrent_executions" in given else KEEP
            ),
        )


class BulkKeysRequest(BaseModel):
    action: BulkAction = Field(description="`revoke` or `update`.")
    ids: list[uuid.UUID] = Field(
        min_length=1,
        max_length=MAX_BULK_KEYS,
        description=f"The keys, 1 to {MAX_BULK_KEYS} of your own.",
    )
    changes: KeyChangesIn | None = Field(
        default=None, description="For `update` (and only for it): what to set on every key."
    )

    @model_validator(mode="after")
    def _changes_with_update_only(self) -> BulkKeysRequest:
        if (self.changes is not None) != (self.action is BulkAction.UPDATE):
            raise ValueError("`changes` goes with the `update` action, and only with it")
        return self


class BulkItemOut(BaseModel):
    id: uuid.UUID
    ok: bool = Field(description="Whether the item is done (or, in a refusal, would have been).")
    changed: bool = Field(
        description="Whether it changed the key: false for a key that was so already."
    )
    code: str | None = Field(description="Why the item was refused: a stable problem code.")
    detail: str | None = Field(description="Why the item was refused, for people.")

    @classmethod
    def of(cls, item: BulkItem) -> BulkItemOut:
        return cls.model_validate(item.as_dict())


class BulkKeysResult(BaseModel):
    action: BulkAction
    changed: int = Field(description="How many keys changed.")
    items: list[BulkItemOut] = Field(description="One per id, in the order given.")


@router.get(
    "/api/v1/keys",
    summary="List your API keys",
    description="The authenticated key's account's keys, newest first, a page at a time. "
    "Needs the `keys:write` scope.",
    response_model=ApiKeyPage,
)
async def list_keys(
    principal: KeysWriter,
    api_keys: ApiKeysDep,
    session: DatabaseSessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 20,
) -> ApiKeyPage:
    result = await list_key_page(api_keys, session, principal.user_id, page=page, per_page=per_page)
    return ApiKeyPage(
        items=[ApiKeyOut.of(listed) for listed in result.keys],
        page=result.page,
        per_page=result.per_page,
        next_page=result.page + 1 if result.has_next else None,
    )


@router.post(
    "/api/v1/keys",
    summary="Create an API key",
    description="Creates a key for the authenticated key's account, with at most that key's "
    "scopes (by default `execute` and `usage:read`) and, if given, limits of its own below "
    "the account's. The full key is in this response only; store it now. Needs the "
    "`keys:write` scope. Each tier caps the account's working keys (409 "
    "`key_limit_reached`), and creating keys is rate limited per account "
    "(429 `key_creation_rate_limited`).",
    response_model=ApiKeyCreated,
    status_code=201,
    responses=problem_responses(
        ProblemCode.INVALID_NAME,
        ProblemCode.INVALID_EXPIRY,
        ProblemCode.INVALID_KEY_LIMIT,
        ProblemCode.KEY_LIMIT_REACHED,
        ProblemCode.KEY_CREATION_RATE_LIMITED,
        instance="/api/v1/keys",
    ),
)
async def create_key(
    body: ApiKeyCreate,
    principal: KeysWriter,
    api_keys: ApiKeysDep,
    session: DatabaseSessionDep,
    response: Response,
) -> ApiKeyCreated:
    created = await api_keys.create(
        session,
        principal.user_id,
        name=body.name,
        expires_at=body.expires_at,
        scopes=frozenset(body.scopes),
        limits=KeyLimits(
            requests_per_minute=body.requests_per_minute,
            requests_per_day=body.requests_per_day,
            max_concurrent_executions=body.max_concurrent_executions,
        ),
        granting=principal.scopes,
    )
    response.headers["Cache-Control"] = "no-store"
    listed = ApiKeyOut.of(ListedKey(created.key, "active"))
    return ApiKeyCreated(**listed.model_dump(), key=created.plaintext)


@router.post(
    "/api/v1/keys/revoke-all",
    summary="Revoke every API key",
    description="Revokes every key of the account, the one making this request included: "
    "nothing works with them from then on (on other replicas of the service within "
    "API_KEY_CACHE_SECONDS, 5 s by default). Make a new key on the web pages. Needs the "
    "`keys:write` scope.",
    response_model=RevokedAll,
)
async def revoke_all_keys(
    principal: KeysWriter, api_keys: ApiKeysDep, session: DatabaseSessionDep
) -> RevokedAll:
    revoked = await api_keys.revoke_all(session, principal.user_id)
    return RevokedAll(revoked=revoked)


@router.post(
    "/api/v1/keys/bulk",
    summary="Revoke or update many API keys",
    description="Revokes, or sets the same `changes` on, up to "
    f"{MAX_BULK_KEYS} of your keys in one transaction: all of them or none. The answer "
    "has one item per id, in order. If any item is refused, nothing changes and the "
    "answer is 422 `bulk_refused`, whose `items` say which were refused and why: "
    "`not_found` (unknown, or not yours), `duplicate_id` (the id came earlier), "
    "`current_key` (revoke: the key making the call; revoke it alone with DELETE), "
    "`key_inactive` (update: a revoked or expired key). Revoking a key revoked already is "
    "an item done with `changed: false`. Revoked keys stop working as with DELETE, and each "
    "sends the `key.revoked` webhook event. Needs the `keys:write` scope; an update gives "
    "at most the scopes of the key making the call.",
    response_model=BulkKeysResult,
    responses=problem_responses(
        ProblemCode.INVALID_NAME,
        ProblemCode.INVALID_EXPIRY,
        ProblemCode.INVALID_KEY_LIMIT,
        ProblemCode.INSUFFICIENT_SCOPE,
        ProblemCode.INVALID_REQUEST,
        ProblemCode.BULK_REFUSED,
        instance="/api/v1/keys/bulk",
    ),
)
async def bulk_keys(
    body: BulkKeysRequest,
    principal: KeysWriter,
    api_keys: ApiKeysDep,
    session: DatabaseSessionDep,
) -> BulkKeysResult:
    if body.changes is None:
        items = await api_keys.revoke_many(
            session, principal.user_id, body.ids, current_key_id=principal.api_key_id
        )
    else:
        items = await api_keys.update_many(
            session,
            principal.user_id,
            body.ids,
            body.changes.changes(),
            granting=principal.scopes,
        )
    return BulkKeysResult(
        action=body.action,
        changed=sum(item.changed for item in items),
        items=[BulkItemOut.of(item) for item in items],
    )


@router.delete("/api/v1/keys/revoke-all", include_in_schema=False)
@router.delete("/api/v1/keys/bulk", include_in_schema=False)
async def post_only_by_delete() -> None:
    """Before `/api/v1/keys/{key_id}`, which would take this DELETE as a malformed key id
    (422): like any other method but POST on these addresses, it is a 405."""
    raise StarletteHTTPException(405, headers={"Allow": "POST"})


@router.delete(
    "/api/v1/keys/{key_id}",
    summary="Revoke an API key",
    description="Revokes one of your keys at once; requests with it get 401 from then on "
    "(on other replicas of the service within API_KEY_CACHE_SECONDS, 5 s by default). "
    "Revoking a key that is revoked already changes nothing and also answers 204. "
    "404 if it is not yours. Needs the `keys:write` scope.",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Revoked."},
        **problem_responses(ProblemCode.NOT_FOUND, instance="/api/v1/keys/{key_id}"),
    },
)
async def revoke_key(
    key_id: uuid.UUID, principal: KeysWriter, api_keys: ApiKeysDep, session: DatabaseSessionDep
) -> None:
    await api_keys.revoke(session, key_id, user_id=principal.user_id)
