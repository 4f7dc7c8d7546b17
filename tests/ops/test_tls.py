"""`wasmwiz serve --certfile --keyfile` serves HTTPS itself, with HSTS."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from tests.ops.process import serve_process

pytestmark = pytest.mark.slow


def test_serve_https_with_a_throwaway_certificate(
    tmp_path: Path, migrated_database_url: str
) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(str(certfile))
    certificate.private_key_pem.write_to_path(str(keyfile))
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    args = ("--certfile", str(certfile), "--keyfile", str(keyfile))
    with serve_process(
        tmp_path, migrated_database_url, args=args, scheme="https", verify=client_context
    ) as (_, url):
        assert url.startswith("https://")
        response = httpx.get(f"{url}/health/ready", verify=client_context)
        assert response.status_code == 200
        assert response.headers["strict-transport-security"] == (
            "max-age=31536000; includeSubDomains"
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "server" not in response.headers
        # Plain HTTP on the TLS port is not served.
        with pytest.raises(httpx.TransportError):
            httpx.get(url.replace("https://", "http://") + "/health/live")
