"""Where a webhook may point (server-side request forgery), and the signature."""

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import signing, targets


def _resolving_to(*addresses):
    def resolver(host, port, type=None):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return resolver


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.9", "private"),
    ("172.16.5.5", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
])
def test_internal_addresses_are_refused_unless_allowed(address, why):
    with pytest.raises(targets.TargetRefused, match=why):
        targets.resolve("https://hooks.example.com/x", allow_private=False, resolver=_resolving_to(address))
    assert targets.resolve("https://hooks.example.com/x", allow_private=True,
                           resolver=_resolving_to(address)).address == address


def test_a_host_with_one_internal_address_among_public_ones_is_refused():
    with pytest.raises(targets.TargetRefused, match="10.0.0.7"):
        targets.resolve("http://mixed.example.com", False, resolver=_resolving_to("93.184.216.34", "10.0.0.7"))


def test_the_delivery_connects_to_the_checked_address_and_keeps_the_name_for_tls():
    target = targets.resolve("https://hooks.example.com:8443/in?team=recs", False,
                             resolver=_resolving_to("93.184.216.34"))
    assert (target.scheme, target.host, target.port, target.path, target.address) == (
        "https", "hooks.example.com", 8443, "/in?team=recs", "93.184.216.34")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x", "example.com/hook",
                                 "http://", "https://example.com:99999/"])
def test_anything_but_an_http_url_is_refused(url):
    with pytest.raises(targets.TargetRefused):
        targets.resolve(url, allow_private=True, resolver=_resolving_to("93.184.216.34"))


@given(st.text(min_size=16, max_size=64), st.binary(max_size=2000))
def test_a_signature_verifies_only_the_exact_body_with_the_same_secret(secret, body):
    header = signing.signature(secret, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signing.verify(secret, body, header)
    assert not signing.verify(secret + "x", body, header)
    assert not signing.verify(secret, body + b" ", header)
