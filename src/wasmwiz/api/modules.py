"""/api/v1/modules: stored modules (upload once, run by id or name); the `execute` scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from wasmwiz.api.dependencies import Executor
from wasmwiz.api.openapi import RATE_LIMIT_HEADERS, problem_responses
from wasmwiz.http_common.app_state import app_state
from wasmwiz.http_common.module_form import MODULE_FORM_SCHEMA
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep, UnitOfWorkRoute
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.stored_modules import MAX_PAGE_SIZE, StoredModuleView

router = APIRouter(tags=["modules"], route_class=UnitOfWorkRoute)

_REFERENCE = Path(
    description="The module's id (`sha256:` and 64 hex digits) or one of your names for it.",
    examples=["grader"],
)
_NAME = Path(description="1 to 64 of a-z 0-9 . _ -, starting with a letter or digit.")


class ModuleImportOut(BaseModel):
    module: str
    name: str
    kind: str = Field(description="`func`, `memory`, `table` or `global`.")


class ModuleExportOut(BaseModel):
    name: str
    kind: str = Field(description="`func`, `memory`, `table` or `global`.")


class StoredModuleOut(BaseModel):
    id: str = Field(description="`sha256:` and the SHA-256 of the bytes as uploaded.")
    size: int = Field(description="The module's size in bytes, as uploaded.")
    created_at: datetime
    names: list[str] = Field(description="Your names that point at this module.")
    imports: list[ModuleImportOut]
    exports: list[ModuleExportOut]
    is_command: bool = Field(description="A WASI command (exports `_start` and its memory).")

    @classmethod
    def of(cls, view: StoredModuleView) -> StoredModuleOut:
        return cls(
            id=view.id,
            size=view.size,
            created_at=view.created_at,
            names=list(view.names),
            imports=[
                ModuleImportOut(module=i.module, name=i.name, kind=i.kind) for i in view.imports
            ],
            exports=[ModuleExportOut(name=e.name, kind=e.kind) for e in view.exports],
            is_command=view.is_command,
        )


class StoredModulePage(BaseModel):
    items: list[StoredModuleOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )


class ModuleNameTarget(BaseModel):
    module: str = Field(
        description="The module the name should point at: its id or another of your names.",
        examples=["sha256:" + "0" * 64],
    )


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": MODULE_FORM_SCHEMA}},
    }
}
_UPLOAD_REFUSALS = problem_responses(
    ProblemCode.MISSING_WASM,
    ProblemCode.INVALID_MODULE_NAME,
    ProblemCode.UNKNOWN_FIELD,
    ProblemCode.INVALID_FORM,
    ProblemCode.UNSUPPORTED_MEDIA_TYPE,
    ProblemCode.STORAGE_QUOTA_EXCEEDED,
    ProblemCode.REQUEST_TIMEOUT,
    ProblemCode.WASM_TOO_LARGE,
    ProblemCode.REQUEST_TOO_LARGE,
    ProblemCode.INVALID_WASM,
    ProblemCode.UNSUPPORTED_IMPORT,
    ProblemCode.MISSING_START,
    ProblemCode.RATE_LIMITED,
    ProblemCode.COMPILE_BUDGET_EXCEEDED,
    ProblemCode.SERVER_BUSY,
    instance="/api/v1/modules",
)
_NOT_FOUND = problem_responses(ProblemCode.MODULE_NOT_FOUND, instance="/api/v1/modules/grader")


@router.post(
    "/api/v1/modules",
    summary="Store a module",
    description="Validates and compiles the module (as an execution would, charged to the "
    "account's compile budget) and stores it for runs by reference: `module=` on "
    "`POST /api/v1/execute`. An upload counts as one request against the account's rate "
    "limits. 201 with the stored module; 200 if the account had stored these bytes "
    "before. The tier's storage quota bounds how many modules, and how many bytes, an "
    "account keeps (403 `storage_quota_exceeded`).",
    status_code=201,
    response_model=StoredModuleOut,
    responses={
        200: {
            "description": "The account had stored these bytes already.",
            "model": StoredModuleOut,
        },
        201: {"headers": dict(RATE_LIMIT_HEADERS)},
        **_UPLOAD_REFUSALS,
    },
    openapi_extra=_UPLOAD_BODY,
)
async def upload_module(
    request: Request, principal: Executor, session: DatabaseSessionDep
) -> Response:
    state = app_state(request)
    state.module_form.refuse_declared_oversize(request)
    uploaded = await state.modules.upload(
        session, principal, lambda: state.module_form.read(request)
    )
    body = StoredModuleOut.of(uploaded.module).model_dump_json() + "\n"
    return Response(
        body,
        status_code=201 if uploaded.created else 200,
        media_type="application/json",
        headers=uploaded.headers,
    )


@router.get(
    "/api/v1/modules",
    summary="List your stored modules",
    description="Newest first, a page at a time (`cursor` from the previous page).",
    response_model=StoredModulePage,
)
async def list_modules(
    request: Request,
    principal: Executor,
    session: DatabaseSessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> StoredModulePage:
    page = await app_state(request).modules.list(session, principal, limit=limit, cursor=cursor)
    return StoredModulePage(
        items=[StoredModuleOut.of(view) for view in page.modules], next_cursor=page.next_cursor
    )


@router.get(
    "/api/v1/modules/{reference}",
    summary="Show a stored module",
    description="What upload answered: its id, size, names, imports and exports.",
    response_model=StoredModuleOut,
    responses=_NOT_FOUND,
)
async def get_module(
    request: Request,
    principal: Executor,
    session: DatabaseSessionDep,
    reference: Annotated[str, _REFERENCE],
) -> StoredModuleOut:
    view = await app_state(request).modules.get(session, principal, reference)
    return StoredModuleOut.of(view)


@router.delete(
    "/api/v1/modules/{reference}",
    summary="Delete a stored module",
    description="Its names go with it; its bytes too, unless another account stored the same.",
    status_code=204,
    responses=_NOT_FOUND,
)
async def delete_module(
    request: Request,
    principal: Executor,
    session: DatabaseSessionDep,
    reference: Annotated[str, _REFERENCE],
) -> Response:
    await app_state(request).modules.delete(session, principal, reference)
    return Response(status_code=204)


@router.put(
    "/api/v1/modules/names/{name}",
    summary="Point a name at a stored module",
    description="Creates the name or moves it, like a registry tag; runs by this name take "
    "the module it points at from then on.",
    response_model=StoredModuleOut,
    responses={
        **_NOT_FOUND,
        **problem_responses(ProblemCode.INVALID_MODULE_NAME, instance="/api/v1/modules/names/x"),
    },
)
async def set_module_name(
    request: Request,
    principal: Executor,
    session: DatabaseSessionDep,
    name: Annotated[str, _NAME],
    target: ModuleNameTarget,
) -> StoredModuleOut:
    view = await app_state(request).modules.set_name(session, principal, name, target.module)
    return StoredModuleOut.of(view)


@router.delete(
    "/api/v1/modules/names/{name}",
    summary="Remove a name",
    description="The name only: the module stays.",
    status_code=204,
    responses={
        **_NOT_FOUND,
        **problem_responses(ProblemCode.INVALID_MODULE_NAME, instance="/api/v1/modules/names/x"),
    },
)
async def delete_module_name(
    request: Request, principal: Executor, session: DatabaseSessionDep, name: Annotated[str, _NAME]
) -> Response:
    await app_state(request).modules.delete_name(session, principal, name)
    return Response(status_code=204)
