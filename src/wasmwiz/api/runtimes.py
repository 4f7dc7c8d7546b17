"""GET /api/v1/runtimes: the public language runtimes every account may run by name."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from wasmwiz.api.dependencies import Executor
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep, UnitOfWorkRoute
from wasmwiz.services.public_runtimes import RuntimeView
from wasmwiz.services.public_runtimes import list_runtimes as list_runtimes_of

router = APIRouter(tags=["modules"], route_class=UnitOfWorkRoute)


class RuntimeOut(BaseModel):
    name: str = Field(description="`module=NAME` on execute runs its newest version.")
    version: str = Field(description="`module=NAME@VERSION` runs this one.")
    id: str = Field(description="The module's id (`sha256:`…): runnable by anyone.")
    language: str
    usage: str = Field(
        description="How a program reaches the runtime: `stdin`, the program is the run's "
        "stdin (its args are the program's own)."
    )
    size: int
    license: str = Field(description="An SPDX expression.")
    published_at: datetime
    latest: bool = Field(description="Whether `module=NAME` runs this version.")

    @classmethod
    def of(cls, view: RuntimeView) -> RuntimeOut:
        return cls(
            name=view.name,
            version=view.version,
            id=view.id,
            language=view.language,
            usage=view.usage,
            size=view.size,
            license=view.license,
            published_at=view.published_at,
            latest=view.latest,
        )


class RuntimeList(BaseModel):
    items: list[RuntimeOut]


@router.get(
    "/api/v1/runtimes",
    summary="List the public runtimes",
    description="Language runtimes (WebAssembly interpreters) every account may run without "
    "uploading them: `module=lua` or `module=quickjs` on `POST /api/v1/execute` or a batch, "
    "with the program on stdin. Every published version, newest first within a name.",
    response_model=RuntimeList,
)
async def list_runtimes(principal: Executor, session: DatabaseSessionDep) -> RuntimeList:
    views = await list_runtimes_of(session)
    return RuntimeList(items=[RuntimeOut.of(view) for view in views])
