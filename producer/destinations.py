"""Where webhooks may go: the guard against server-side request forgery.

A webhook sender makes requests to URLs its users type, so by default it
refuses destinations that are, or resolve to, addresses of the operator's
own network: loopback, private, link-local, shared (CGNAT), multicast,
unspecified and reserved ranges, their IPv4-mapped, NAT64 and 6to4 forms,
and cloud metadata addresses. ``WEBHOOKS_ALLOWED_CIDRS`` opens chosen ranges;
every refusal says so.

At registration, an IP literal is checked, and a host name is resolved (for
at most ``lookup_timeout`` seconds): a name resolving to a refused address is
refused, one that does not resolve (yet) is accepted. Names are resolved
again at send time, as they can change: every address is checked, and the
connection goes to the address that was checked (the URL's host is replaced
by it, with the original ``Host`` header and TLS server name kept), so a
second DNS answer cannot slip in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from producer.errors import ValidationError

__all__ = [
    "BlockedDestination",
    "DestinationPolicy",
    "GuardedTransport",
    "Resolver",
    "ip_literal",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; the default asks the system resolver. A name
that does not resolve raises ``OSError`` (``socket.gaierror``)."""

LOOKUP_TIMEOUT = 2.0
"""How long registration waits for a host name to resolve, in seconds."""

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_6TO4 = ipaddress.ip_network("2002::/16")
_METADATA = {
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
}


class BlockedDestination(httpx.TransportError):
    """A delivery's destination is refused by the guard; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (all A and AAAA records)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def how_to_open(ip: IPAddress) -> str:
    """What opens a refused address: its range in ``WEBHOOKS_ALLOWED_CIDRS``,
    and for loopback also the development switch of ``webhooks serve``."""
    network = ipaddress.ip_network(f"{ip}/{ip.max_prefixlen}")
    hint = f"to deliver there, add its range to WEBHOOKS_ALLOWED_CIDRS (e.g. {network})"
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    if ip.is_loopback or (mapped is not None and mapped.is_loopback):
        hint += ", or run `webhooks serve --dev` to open loopback for local development"
    return hint


def _why_forbidden(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination, or None if it is one."""
    if ip in _METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped
        if embedded is None and (ip in _NAT64 or ip in _NAT64_LOCAL):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip in _6TO4:
            embedded = ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
        if embedded is not None:
            inner = _why_forbidden(embedded)
            return f"{inner} (embedded in {ip})" if inner else None
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


_IPV4_PART = re.compile(r"^(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` names when it is an IP literal in any spelling a
    resolver accepts, or None for a host name.

    Besides the canonical forms, ``inet_aton`` (which ``getaddrinfo`` and
    browsers follow) reads one to four dot-separated numbers, each decimal,
    octal (``0177``) or hex (``0x7f``), the last filling the remaining bytes:
    ``127.1``, ``2130706433``, ``0x7f000001`` and ``0177.0.0.1`` are all
    127.0.0.1. A trailing dot (a fully qualified name) reads the same.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not 1 <= len(labels) <= 4 or not all(_IPV4_PART.match(label) for label in labels):
        return None
    numbers = [_ipv4_number(label) for label in labels]
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (5 - len(numbers))):
        return None
    value = last
    for i, n in enumerate(leading):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int:
    """One part of an ``inet_aton`` address: hex after ``0x``, octal after a
    leading ``0``, else decimal."""
    if label[:2].lower() == "0x":
        return int(label[2:], 16)
    if label.startswith("0"):
        return int(label, 8)
    return int(label)


@dataclass(frozen=True)
class DestinationPolicy:
    """Which destinations are allowed (pure, apart from the resolver call).

    ``resolver`` serves both registration and delivery, so a test that
    replaces it decides both; ``lookup_timeout`` bounds a registration's wait
    for a name to resolve.
    """

    allowed: tuple[IPNetwork, ...] = ()
    https_only: bool = False
    resolver: Resolver = field(default=system_resolver, compare=False)
    lookup_timeout: float = LOOKUP_TIMEOUT

    @classmethod
    def from_settings(
        cls, allowed_cidrs: Iterable[str], https_only: bool, resolver: Resolver | None = None
    ) -> DestinationPolicy:
        """Build from ``WEBHOOKS_ALLOWED_CIDRS`` / ``WEBHOOKS_HTTPS_ONLY`` values."""
        networks = tuple(ipaddress.ip_network(c.strip(), strict=False) for c in allowed_cidrs)
        return cls(networks, https_only, resolver or system_resolver)

    def reason(self, address: str | IPAddress) -> str | None:
        """Why an address is refused, or None when it may be used."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if any(ip in net for net in self.allowed if net.version == ip.version):
            return None
        why = _why_forbidden(ip)
        if why is None:
            return None
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in net for net in self.allowed if net.version == 4):
            return None
        return f"{ip} is {why}"

    def refusal(self, addresses: Iterable[str | IPAddress], host: str | None = None) -> str | None:
        """Why a destination with these addresses is refused and what would
        open it, or None when every address may be used (a mixed answer is
        refused: an attacker controls which one a later lookup would pick).
        ``host`` names the host name the addresses were resolved from."""
        for address in addresses:
            ip = ipaddress.ip_address(address) if isinstance(address, str) else address
            why = self.reason(ip)
            if why is not None:
                named = why if host is None else f"{host} -> {why}"
                return f"{named}; {how_to_open(ip)}"
        return None

    def check_url(self, url: str, field: str = "url") -> None:
        """Registration-time check: the scheme, and the host's addresses: the IP
        literal, or what the name resolves to within ``lookup_timeout``.
        Refusals are errors of ``field`` (a token or proxy URL is checked too).

        A name that does not resolve, or not in time, is accepted: it may be
        created later, and delivery checks every address again.
        """
        parts = urlsplit(url)
        if self.https_only and parts.scheme != "https":
            raise ValidationError.for_field(field, "must use https (WEBHOOKS_HTTPS_ONLY is set)")
        host = parts.hostname or ""
        ip = ip_literal(host)
        if ip is not None:
            refusal = self.refusal([ip])
        else:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            refusal = self.refusal(self.lookup(host, port), host)
        if refusal is not None:
            raise ValidationError.for_field(field, f"destination refused: {refusal}")

    def lookup(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, for a synchronous caller; ``[]``
        when it does not resolve within ``lookup_timeout`` seconds.

        The resolver runs on its own event loop in a daemon thread: the caller
        may be inside a running loop, and a lookup that hangs must neither
        hold the caller past the timeout nor keep the process from exiting.
        """
        answer: list[str] = []
        failure: list[Exception] = []

        async def resolve() -> list[str]:
            # Any awaitable the resolver returns, not only a coroutine.
            return await self.resolver(host, port)

        def run() -> None:
            try:
                answer.extend(asyncio.run(resolve()))
            except (OSError, UnicodeError):
                pass  # does not resolve (yet): accepted, delivery checks again
            except Exception as exc:  # a broken resolver is the caller's to see
                failure.append(exc)

        thread = threading.Thread(target=run, name=f"lookup {host}", daemon=True)
        thread.start()
        thread.join(self.lookup_timeout)
        if thread.is_alive():
            return []
        if failure:
            raise failure[0]
        return answer

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host``; raises BlockedDestination if
        any address it resolves to is refused."""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self.resolver(host, port)
            except OSError as exc:
                raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
            if not addresses:
                raise httpx.ConnectError(f"cannot resolve {host}: no addresses")
        refusal = self.refusal(addresses, None if literal is not None else host)
        if refusal is not None:
            raise BlockedDestination(refusal)
        return addresses[0]


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks and pins the destination address."""

    def __init__(self, policy: DestinationPolicy, inner: httpx.AsyncBaseTransport) -> None:
        self.policy = policy
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if self.policy.https_only and url.scheme != "https":
            raise BlockedDestination("plain http is refused (WEBHOOKS_HTTPS_ONLY)")
        port = url.port or (443 if url.scheme == "https" else 80)
        address = await self.policy.resolve(url.host, port)
        if address != url.host:
            # Connect to the checked address; the Host header (already set)
            # and the TLS server name keep naming the original host.
            request.url = url.copy_with(host=address)
            request.extensions = {**request.extensions, "sni_hostname": url.host}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
