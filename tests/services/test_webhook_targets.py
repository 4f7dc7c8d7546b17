"""What a webhook may call: the address rules, URL parsing, and the resolver seam."""

from __future__ import annotations

import ipaddress

import pytest

from wasmwiz.services.webhooks.targets import (
    TargetPolicy,
    TargetRefused,
    address_refusal,
    parse_target,
)

pytestmark = pytest.mark.anyio

ALWAYS_REFUSED = [
    "0.0.0.0",
    "::",
    "169.254.169.254",
    "fd00:ec2::254",
    "169.254.1.1",
    "fe80::1",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "192.0.2.1",
    "100.100.100.200",
    "::ffff:169.254.169.254",
]
PRIVATE = [
    "127.0.0.1",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "fd12::1",
    "::ffff:10.0.0.1",
    "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
]
PUBLIC = ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_these_are_refused_even_with_private_targets_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip, allow_private=False) is not None
    assert address_refusal(ip, allow_private=True) is not None


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_only_where_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip, allow_private=False) is not None
    assert address_refusal(ip, allow_private=True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_called(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_private=False) is None


@pytest.mark.parametrize(
    "url",
    ["ftp://x.example/", "http://", "x.example", "http://u:p@x.example/", "http://x.example/#f"],
)
def test_urls_that_are_not_ours_to_call(url: str) -> None:
    with pytest.raises(TargetRefused):
        parse_target(url)


async def test_every_address_a_name_resolves_to_is_checked() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example", 443)
        return ["93.184.215.14", "fe80::1%eth0"]

    policy = TargetPolicy(allow_private=True, resolver=resolver)
    with pytest.raises(TargetRefused, match="link-local"):
        await policy.check("https://hooks.example/in")


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(TargetRefused, match="does not resolve"):
        await TargetPolicy(allow_private=False, resolver=resolver).check("http://nowhere.example/")
