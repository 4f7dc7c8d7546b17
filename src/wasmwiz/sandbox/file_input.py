"""Placeholder until the input module lands: the entry type only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputEntry:
    path: str
    data: bytes | None
