"""Token buckets per client key, for public endpoints (sign-in, the web form, the survey page), and
the client key itself: who a request comes from, as far as the hub can trust it.

The key is the client's address, IPv6 clients by their /64: one household or server gets a /64 (or
more) and picks any address in it, so per address it could try as often as it likes. Behind a
reverse proxy every request comes from the proxy; the client is then read from X-Forwarded-For, but
only when the peer is a proxy the settings list (trusted_proxies), and only as far as the chain of
listed proxies goes: anyone can send the header, so an address a client wrote there itself is never
believed (it could pose as anyone, to get more tries or to lock others out).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_PREFIX = 64  # what one customer line or server is given; addresses within it cost nothing
MAX_FORWARDED_HOPS = 32  # a longer chain is read no further (a proxy loop or a header stuffed by a client)


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None):
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, per_minute))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float:
        """0.0 if allowed (and counted), else the seconds until the next request is allowed."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > 100_000:  # bounded memory under a spray of client keys
                    self._buckets.clear()
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Networks from "10.0.0.0/8", "2001:db8::/32", "192.0.2.7" (one address); ValueError names a bad one."""
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{cidr!r} is not an IP address or network (e.g. 10.0.0.0/8, 2001:db8::/32): {exc}") from None
    return tuple(out)


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    value = text.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443", as some proxies write it
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:5678"
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(value.partition("%")[0])
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client of a dual-stack socket
            return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_address(peer: str | None, forwarded_for: Sequence[str] = (), trusted: Sequence[Network] = ()) -> Address | None:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest address in
    X-Forwarded-For (read from the right) that is not itself a trusted proxy. A malformed entry
    ends the walk at the last address a trusted proxy vouched for. None when the peer is unknown
    (a Unix socket)."""
    current = _address(peer)
    if current is None or not trusted or not _trusted(current, trusted):
        return current
    hops = [h for header in forwarded_for for h in header.split(",")]
    for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
        address = _address(hop)
        if address is None:
            return current
        current = address
        if not _trusted(current, trusted):
            return current
    return current


def client_key(address: Address | None) -> str:
    """What the rate limits count by: an IPv4 address, or the /64 network of an IPv6 one."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(address) >> (128 - IPV6_PREFIX) << (128 - IPV6_PREFIX), IPV6_PREFIX)))
    return str(address)
