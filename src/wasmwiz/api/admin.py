"""/api/v1/admin/...: tiers, accounts and usage, for an administrator's `admin` key."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from wasmwiz.api.dependencies import Administrator
from wasmwiz.api.openapi import problem_responses, usage_responses
from wasmwiz.api.usage_tables import (
    RANGE_HELP,
    UsageQuery,
    UsageTableOut,
    csv_response,
)
from wasmwiz.http_common.dependencies import AdminDep, UsageAnalyticsDep
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep, UnitOfWorkRoute
from wasmwiz.persistence.models import SubscriptionTier, User
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.admin import MAX_PER_PAGE

router = APIRouter(tags=["admin"], route_class=UnitOfWorkRoute)

_ADMIN = (
    " Needs an administrator's key with the `admin` scope (403 `insufficient_scope` otherwise)."
)


class TierOut(BaseModel):
    name: str
    requests_per_minute: int = Field(description="Executions a minute, per account.")
    requests_per_day: int = Field(description="Executions a UTC day, per account.")
    max_concurrent_executions: int = Field(description="Runs in flight at once, per account.")
    max_fuel: int | None = Field(description="The most fuel a run may burn; null: no cap.")
    max_api_keys: int = Field(description="Working API keys an account may have.")
    compile_seconds_per_minute: int | None = Field(
        default=None,
        description="CPU seconds a minute of compiling modules no cache holds, per account.",
    )
    max_stored_modules: int | None = Field(
        default=None, description="Modules an account may store (0: none)."
    )
    max_stored_module_bytes: int | None = Field(
        default=None, description="Bytes of stored modules an account may hold (0: none)."
    )
    job_timeout_seconds: int | None = Field(
        default=None, description="A job's wall-clock limit (docs/jobs.md)."
    )
    max_queued_jobs: int | None = Field(
        default=None, description="Jobs an account may have waiting at once."
    )
    job_result_seconds: int | None = Field(
        default=None, description="How long a job's result is kept after it ended."
    )
    api_requests_per_minute: int | None = Field(
        default=None,
        description="API calls (but runs) and pages a minute, per account; "
        "null: the server's API_REQUESTS_PER_MINUTE.",
    )
    api_requests_per_day: int | None = Field(
        default=None,
        description="API calls (but runs) and pages a UTC day, per account; "
        "null: the server's API_REQUESTS_PER_DAY.",
    )

    @classmethod
    def of(cls, tier: SubscriptionTier) -> TierOut:
        return cls.model_validate(tier, from_attributes=True)


class TierList(BaseModel):
    items: list[TierOut]


class TierChange(BaseModel):
    requests_per_minute: int | None = Field(default=None, ge=1)
    requests_per_day: int | None = Field(default=None, ge=1)
    max_concurrent_executions: int | None = Field(default=None, ge=1)
    max_fuel: int | None = Field(default=None, ge=1, description="null: no cap.")
    max_api_keys: int | None = Field(default=None, ge=1)
    compile_seconds_per_minute: int | None = Field(default=None, ge=1)
    max_stored_modules: int | None = Field(default=None, ge=0)
    max_stored_module_bytes: int | None = Field(default=None, ge=0)
    job_timeout_seconds: int | None = Field(default=None, ge=1, le=600)
    max_queued_jobs: int | None = Field(default=None, ge=0)
    job_result_seconds: int | None = Field(default=None, ge=1)
    api_requests_per_minute: int | None = Field(
        default=None, ge=1, description="null: the server's API_REQUESTS_PER_MINUTE."
    )
    api_requests_per_day: int | None = Field(
        default=None, ge=1, description="null: the server's API_REQUESTS_PER_DAY."
    )


class TierCreate(TierChange):
    name: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$", examples=["team"])
    requests_per_minute: int = Field(ge=1)
    requests_per_day: int = Field(ge=1)
    max_concurrent_executions: int = Field(ge=1)
    max_api_keys: int = Field(default=5, ge=1)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    tier: str
    is_active: bool
    is_admin: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            tier=user.tier.name,
            is_active=user.is_active,
            is_admin=user.is_admin,
            created_at=user.created_at,
        )


class UserPageOut(BaseModel):
    items: list[UserOut]
    page: int
    per_page: int
    total: int = Field(description="Accounts in all (deleted ones are not listed).")
    next_page: int | None = Field(description="The next page's number, or null on the last.")


class UserChange(BaseModel):
    tier: str | None = Field(default=None, max_length=32, description="Move to this tier.")
    active: bool | None = Field(
        default=None,
        description="false: deactivate (its keys are refused, its sessions end); true: reactivate.",
    )


@router.get(
    "/api/v1/admin/tiers",
    summary="List tiers",
    description="Every tier with its limits." + _ADMIN,
    response_model=TierList,
)
async def list_tiers(
    principal: Administrator, admin: AdminDep, session: DatabaseSessionDep
) -> TierList:
    tiers = await admin.list_tiers(session)
    return TierList(items=[TierOut.of(tier) for tier in tiers])


@router.post(
    "/api/v1/admin/tiers",
    summary="Create a tier",
    description="A new tier; move accounts to it with PATCH /api/v1/admin/users/{id}." + _ADMIN,
    response_model=TierOut,
    status_code=201,
    responses=problem_responses(
        ProblemCode.INVALID_TIER, ProblemCode.TIER_EXISTS, instance="/api/v1/admin/tiers"
    ),
)
async def create_tier(
    body: TierCreate, principal: Administrator, admin: AdminDep, session: DatabaseSessionDep
) -> TierOut:
    limits = body.model_dump(exclude={"name"}, exclude_unset=True)
    limits.setdefault("max_api_keys", body.max_api_keys)
    tier = await admin.create_tier(session, body.name, limits)
    return TierOut.of(tier)


@router.patch(
    "/api/v1/admin/tiers/{name}",
    summary="Change a tier's limits",
    description="Changes the limits given and leaves the others. Running servers apply them "
    "within API_KEY_CACHE_SECONDS (5 s by default), this one at once." + _ADMIN,
    response_model=TierOut,
    responses=problem_responses(
        ProblemCode.INVALID_TIER, ProblemCode.NOT_FOUND, instance="/api/v1/admin/tiers/{name}"
    ),
)
async def update_tier(
    name: str,
    body: TierChange,
    principal: Administrator,
    admin: AdminDep,
    session: DatabaseSessionDep,
) -> TierOut:
    tier = await admin.update_tier(session, name, body.model_dump(exclude_unset=True))
    return TierOut.of(tier)


@router.get(
    "/api/v1/admin/users",
    summary="List accounts",
    description="Accounts, oldest first, a page at a time." + _ADMIN,
    response_model=UserPageOut,
)
async def list_users(
    principal: Administrator,
    admin: AdminDep,
    session: DatabaseSessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
) -> UserPageOut:
    result = await admin.list_users(session, page=page, per_page=per_page)
    return UserPageOut(
        items=[UserOut.of(user) for user in result.users],
        page=result.page,
        per_page=result.per_page,
        total=result.total,
        next_page=result.page + 1 if result.has_next else None,
    )


@router.patch(
    "/api/v1/admin/users/{user_id}",
    summary="Change an account's tier or deactivate it",
    description="Moves the account to another tier and/or deactivates or reactivates it; "
    "applies to its keys at once on this server, within API_KEY_CACHE_SECONDS elsewhere." + _ADMIN,
    response_model=UserOut,
    responses=problem_responses(
        ProblemCode.INVALID_TIER,
        ProblemCode.NOT_FOUND,
        instance="/api/v1/admin/users/{user_id}",
    ),
)
async def change_user(
    user_id: uuid.UUID,
    body: UserChange,
    principal: Administrator,
    admin: AdminDep,
    session: DatabaseSessionDep,
) -> UserOut:
    user = None
    if body.tier is not None:
        user = await admin.set_tier(session, user_id, body.tier)
    if body.active is not None:
        user = await admin.set_active(session, user_id, body.active, acting=principal.user_id)
    if user is None:
        user = await admin.get_user(session, user_id)
    return UserOut.of(user)


@router.delete(
    "/api/v1/admin/users/{user_id}",
    summary="Delete an account",
    description="Revokes its keys, ends its web sessions and anonymises the account; its "
    "usage records are kept for billing (docs/operations.md)." + _ADMIN,
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Deleted."},
        **problem_responses(ProblemCode.NOT_FOUND, instance="/api/v1/admin/users/{user_id}"),
    },
)
async def delete_user(
    user_id: uuid.UUID, principal: Administrator, admin: AdminDep, session: DatabaseSessionDep
) -> None:
    await admin.delete_user(session, user_id, acting=principal.user_id)


@router.get(
    "/api/v1/admin/usage",
    summary="Usage across accounts",
    description="Every account's runs in a range (or one account's, with `user_id`), grouped "
    "by `group_by`: as `GET /api/v1/usage` with parameters, and `group_by=account` too. "
    + RANGE_HELP
    + _ADMIN,
    response_model=UsageTableOut,
    responses=usage_responses("/api/v1/admin/usage", summary=False),
)
async def usage(
    principal: Administrator,
    analytics: UsageAnalyticsDep,
    session: DatabaseSessionDep,
    query: Annotated[UsageQuery, Depends()],
    user_id: Annotated[
        str | None, Query(max_length=64, description="Only this account's runs.")
    ] = None,
) -> UsageTableOut | Response:
    table = await analytics.admin_usage(session, query.params(user_id=user_id))
    if query.format == "csv":
        return csv_response(table, prefix="wasmwiz-admin-usage")
    return UsageTableOut.of(table)
