"""The disk cache reuses an artifact only under the rules it was accepted under.

A disk hit skips every check, so the fingerprint that keys artifacts covers the engine's
features, WasmWiz's version and a digest of its validation rules: change any of them and
the module is checked and compiled again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from wasmwiz.sandbox import InspectionLimits, Outcome, RunRequest, Sandbox, load_example
from wasmwiz.sandbox.compiler import _cache_fingerprint
from wasmwiz.sandbox.engine import DEFAULT_FEATURES
from wasmwiz.sandbox.validation import RULES_VERSION

KEY = hashlib.sha256(b"the fingerprint tests' MAC key").digest()
MiB = 1024 * 1024


def fingerprint(**changes: object) -> str:
    arguments: dict[str, object] = {
        "max_module_bytes": 10 * MiB,
        "max_memory_bytes": 128 * MiB,
        "inspection": InspectionLimits(),
        "features": DEFAULT_FEATURES,
        "metered": False,
        "version": "1.2.3",
        "rules_version": RULES_VERSION,
    }
    arguments.update(changes)
    return _cache_fingerprint(**arguments)  # type: ignore[arg-type]


def test_the_fingerprint_covers_features_metering_version_and_rules() -> None:
    variants = {
        "base": fingerprint(),
        "features": fingerprint(features=DEFAULT_FEATURES | {"exceptions"}),
        "fuel metering": fingerprint(metered=True),
        "version": fingerprint(version="1.2.4"),
        "rules version": fingerprint(rules_version=RULES_VERSION + 1),
        "an inspection bound": fingerprint(inspection=InspectionLimits(max_types=9_999)),
        "the memory limit": fingerprint(max_memory_bytes=64 * MiB),
    }

    assert fingerprint() == variants["base"]  # stable for the same rules
    assert len(set(variants.values())) == len(variants)


def compiles_and_hits(cache_dir: Path, **options: object) -> tuple[int, int]:
    with Sandbox(cache_dir=cache_dir, cache_mac_key=KEY, max_concurrency=1, **options) as sandbox:  # type: ignore[arg-type]
        result = sandbox.run(sandbox.prepare(load_example("hello")), RunRequest())
        assert result.outcome is Outcome.SUCCESS
        stats = sandbox.stats()
    return stats.compiles, stats.disk_cache_hits


def test_a_changed_feature_set_or_rule_misses_the_disk_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"

    assert compiles_and_hits(cache) == (1, 0)
    assert compiles_and_hits(cache) == (0, 1)  # the same rules: a hit
    assert compiles_and_hits(cache, extra_features={"exceptions"}) == (1, 0)
    assert compiles_and_hits(cache, inspection=InspectionLimits(max_exports=100)) == (1, 0)
    assert compiles_and_hits(cache) == (0, 1)  # the first rules' artifact is still there
