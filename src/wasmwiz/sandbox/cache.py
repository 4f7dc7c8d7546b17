"""A size-bounded LRU of compiled modules that never compiles the same bytes twice at once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

from wasmwiz.sandbox.compiler import CompiledModule

CacheKey = tuple[str, bool]  # the module's SHA-256, and whether compiled for metered runs


class ModuleCache:
    """Compiled modules keyed by the SHA-256 of the submitted bytes and the engine they
    were compiled for (metered or not): one engine's module is never the other's.

    Concurrent requests for the same key share one compilation: the first caller
    compiles, the others wait for its result (or its ModuleRefused). Rejections are not
    kept here: the Compiler remembers only compile-limit refusals by digest, so any other
    rejected module costs a fresh validation next time.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, CompiledModule] = OrderedDict()
        self._pending: dict[CacheKey, Future[CompiledModule]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def entries(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def get_or_compile(
        self, key: CacheKey, compile_: Callable[[], CompiledModule]
    ) -> CompiledModule:
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return cached
            pending = self._pending.get(key)
            if pending is None:
                self.misses += 1
                mine: Future[CompiledModule] = Future()
                self._pending[key] = mine
            else:
                self.hits += 1
        if pending is not None:
            return pending.result()
        try:
            compiled = compile_()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            mine.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._insert(key, compiled)
        mine.set_result(compiled)
        return compiled

    def _insert(self, key: CacheKey, compiled: CompiledModule) -> None:
        if compiled.cost > self._max_bytes:
            return  # would evict everything and still not fit
        self._entries[key] = compiled
        self._bytes += compiled.cost
        while self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.cost
