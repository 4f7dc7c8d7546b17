"""GET/POST /api/v1/keys and DELETE /api/v1/keys/{id}: the caller's own API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from wasmwiz.api.dependencies import PrincipalDep, ServicesDep
from wasmwiz.api.openapi import problem_responses
from wasmwiz.services.key_listing import MAX_PER_PAGE, ListedKey, list_key_page

router = APIRouter(tags=["keys"])


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str = Field(description="`active`, `expired` or `revoked`.")

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
        )


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    page: int
    per_page: int
    next_page: int | None = Field(description="The next page's number, or null on the last.")


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["ci"])
    expires_at: datetime | None = Field(
        default=None, description="When the key stops working (RFC 3339, with a zone)."
    )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key. It is shown only in this response.")


@router.get(
    "/api/v1/keys",
    summary="List your API keys",
    description="The authenticated key's user's keys, newest first, a page at a time.",
    response_model=ApiKeyPage,
)
async def list_keys(
    principal: PrincipalDep,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 20,
) -> ApiKeyPage:
    async with services.database.session() as session:
        result = await list_key_page(
            services.api_keys, session, principal.user_id, page=page, per_page=per_page
        )
    return ApiKeyPage(
        items=[ApiKeyOut.of(listed) for listed in result.keys],
        page=result.page,
        per_page=result.per_page,
        next_page=result.page + 1 if result.has_next else None,
    )


@router.post(
    "/api/v1/keys",
    summary="Create an API key",
    description="Creates a key for the authenticated key's user. The full key is in this "
    "response only; store it now.",
    response_model=ApiKeyCreated,
    status_code=201,
    responses=problem_responses("invalid_name", "invalid_expiry", instance="/api/v1/keys"),
)
async def create_key(
    body: ApiKeyCreate, principal: PrincipalDep, services: ServicesDep, response: Response
) -> ApiKeyCreated:
    async with services.database.session() as session:
        created = await services.api_keys.create(
            session, principal.user_id, name=body.name, expires_at=body.expires_at
        )
        await session.commit()
    response.headers["Cache-Control"] = "no-store"
    listed = ApiKeyOut.of(ListedKey(created.key, "active"))
    return ApiKeyCreated(**listed.model_dump(), key=created.plaintext)


@router.delete(
    "/api/v1/keys/{key_id}",
    summary="Revoke an API key",
    description="Revokes one of your keys at once; requests with it get 401 from then on "
    "(on other replicas of the service within API_KEY_CACHE_SECONDS, 5 s by default). "
    "404 if it is not yours.",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Revoked."},
        **problem_responses("not_found", instance="/api/v1/keys/{key_id}"),
    },
)
async def revoke_key(key_id: uuid.UUID, principal: PrincipalDep, services: ServicesDep) -> None:
    async with services.database.session() as session:
        await services.api_keys.revoke(session, key_id, user_id=principal.user_id)
        await session.commit()
