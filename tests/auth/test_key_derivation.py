"""Per-purpose keys from the one secret: HKDF as RFC 5869 defines it, and independent keys."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from wasmwiz.auth import HashScheme, Purpose, candidate_hashes, derive_key, hash_api_key
from wasmwiz.auth.key_derivation import hkdf_sha256

SECRET = "a-test-secret-" + "y" * 40
PLAINTEXT = "ww_" + "k" * 43


def test_hkdf_matches_rfc_5869_test_case_1() -> None:
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_matches_rfc_5869_test_case_3_with_no_salt_or_info() -> None:
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), salt=b"", info=b"", length=42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_every_purpose_gets_its_own_key() -> None:
    keys = {purpose: derive_key(SECRET, purpose) for purpose in Purpose}
    assert all(len(key) == 32 for key in keys.values())
    assert len(set(keys.values())) == len(Purpose)
    assert SECRET.encode() not in keys.values()
    # Deterministic: the same secret gives the same keys in every process and replica.
    assert keys == {purpose: derive_key(SECRET, purpose) for purpose in Purpose}
    # Another secret: every key changes.
    assert not set(keys.values()) & {derive_key(SECRET + "!", purpose) for purpose in Purpose}


def test_the_labels_never_change() -> None:
    # A changed label would silently invalidate every API key, CSRF token and artifact.
    assert {purpose.name: purpose.value for purpose in Purpose} == {
        "API_KEY_HASH": "wasmwiz/v1/api-key-hash",
        "CSRF": "wasmwiz/v1/csrf",
        "ARTIFACT_MAC": "wasmwiz/v1/compiled-artifact-mac",
        "RESULT_CACHE": "wasmwiz/v1/result-cache",
        "WEBHOOK_SIGNING": "wasmwiz/v1/webhook-signing",
    }


def test_an_empty_secret_derives_nothing() -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        derive_key("", Purpose.CSRF)


def test_api_key_hashes_under_each_scheme() -> None:
    legacy = hmac.new(SECRET.encode(), PLAINTEXT.encode(), hashlib.sha256).hexdigest()
    derived_key = derive_key(SECRET, Purpose.API_KEY_HASH)
    derived = hmac.new(derived_key, PLAINTEXT.encode(), hashlib.sha256).hexdigest()

    assert hash_api_key(PLAINTEXT, SECRET, HashScheme.LEGACY) == legacy
    assert hash_api_key(PLAINTEXT, SECRET) == derived != legacy
    assert list(candidate_hashes(PLAINTEXT, SECRET).items()) == [
        (derived, HashScheme.DERIVED),
        (legacy, HashScheme.LEGACY),
    ]


def test_the_configured_scheme_comes_first() -> None:
    order = list(candidate_hashes(PLAINTEXT, SECRET, HashScheme.LEGACY).values())
    assert order == [HashScheme.LEGACY, HashScheme.DERIVED]
