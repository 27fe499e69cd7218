"""The address policy and the endpoint URL checks: which hosts a hook may reach.

Pure functions, no I/O but a numeric-only getaddrinfo: ``config.py`` reads
SSRF_ALLOWED_NETWORKS with parse_networks, ``hook_settings.py`` checks URLs at
save time with endpoint_problems (validate_endpoint_url words them in
English), and the sender's guarded connections (webapp.delivery.pools) judge
every address they connect to with address_refusal. Importing this module
loads neither the sender nor urllib3's pools (urllib3 is imported only inside
validate_endpoint_url for non-ASCII hosts).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

import idna

from webapp.validation import Problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The longest endpoint URL accepted.
MAX_URL_LENGTH = 2000
#: Ends every refusal message: what to do about it.
SSRF_HINT = "Formhooks does not send to internal addresses (see SSRF_ALLOWED_NETWORKS)."

# --------------------------------------------------------------------------
# Address policy
# --------------------------------------------------------------------------


def _rules(*pairs: tuple[str, str]) -> list[tuple[IPNetwork, str]]:
    return [(ipaddress.ip_network(net), reason) for net, reason in pairs]


# Explicit tables: ipaddress's is_private/is_global differ between Python patch
# releases (3.11.7 calls fec0::1 and ::127.0.0.1 global), so they are only a
# last safety net here.
_V4_RULES = _rules(
    ("0.0.0.0/32", "an unspecified address"),
    ("0.0.0.0/8", "a reserved ('this network') address"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("100.64.0.0/10", "a shared (CGNAT, 100.64.0.0/10) address"),
    ("169.254.0.0/16", "a link-local address"),
    ("192.0.0.0/24", "a reserved (IETF protocol) address"),
    ("192.0.2.0/24", "a reserved (documentation) address"),
    ("198.51.100.0/24", "a reserved (documentation) address"),
    ("203.0.113.0/24", "a reserved (documentation) address"),
    ("198.18.0.0/15", "a reserved (benchmarking) address"),
    ("192.88.99.0/24", "a reserved (6to4 relay) address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "a broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_V6_RULES = _rules(
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "a reserved (IPv4-compatible) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("fc00::/7", "a private (unique local) address"),
    ("ff00::/8", "a multicast address"),
    ("64:ff9b:1::/48", "a private (local-use NAT64) address"),
    ("100::/64", "a reserved (discard-only) address"),
    ("2001:db8::/32", "a reserved (documentation) address"),
    ("3fff::/20", "a reserved (documentation) address"),
    ("2001::/23", "a reserved (IETF protocol) address"),
    ("5f00::/16", "a reserved (segment routing) address"),
    ("::/8", "a reserved address"),
)
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def parse_networks(text: str) -> list[IPNetwork]:
    """Parse comma- or space-separated CIDRs ("127.0.0.0/8, fd00::/8").

    A bare address means that one address; host bits are ignored
    (10.1.2.3/8 is 10.0.0.0/8). An empty text gives []. Raises ValueError
    naming the first bad entry.
    """
    networks: list[IPNetwork] = []
    for entry in re.split(r"[\s,]+", text.strip()):
        if entry:
            networks.append(_parse_network(entry))
    return networks


def _parse_network(entry: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(
            f"Invalid network {entry!r}: expected an address or a CIDR "
            "such as 127.0.0.0/8 or fd00::/8."
        ) from None


def coerce_networks(allowed: str | Sequence[object]) -> tuple[IPNetwork, ...]:
    """Networks from a text for parse_networks, or from networks and CIDR strings."""
    if isinstance(allowed, str):
        return tuple(parse_networks(allowed))
    networks = []
    for item in allowed:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
        else:
            networks.append(_parse_network(str(item)))
    return tuple(networks)


def _embedded_ipv4(
    ip: ipaddress.IPv6Address,
) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """The IPv4 address(es) an IPv6 transition form carries, with its name."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _MAPPED:
        return "IPv4-mapped", [low32]
    if ip in _TRANSLATED:
        return "IPv4-translated", [low32]
    if ip in _NAT64:
        return "NAT64", [low32]
    if ip in _SIX_TO_FOUR:
        return "6to4", [ip.sixtofour]
    if ip in _TEREDO:
        server, client = ip.teredo
        return "Teredo", [client, server]
    return None


def address_refusal(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why Formhooks must not send to ``ip``, or None when it may.

    The reason is a phrase such as "a loopback address" or "a private address".
    An address inside one of the ``allowed`` networks is allowed whatever it is.
    Otherwise private, loopback, link-local, CGNAT, multicast, unspecified and
    reserved addresses are refused; IPv6 forms that carry an IPv4 address
    (IPv4-mapped, NAT64, 6to4, Teredo) are judged by that IPv4 address.
    """
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if ip.version == 6:
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, carried = embedded
            for v4 in carried:
                reason = address_refusal(v4, allowed)
                if reason is not None:
                    return f"{reason} ({v4}) in {form} form"
            return None
    for net, reason in _V6_RULES if ip.version == 6 else _V4_RULES:
        if ip in net:
            return reason
    return None if ip.is_global else "a reserved address"


# --------------------------------------------------------------------------
# URL checks (save time)
# --------------------------------------------------------------------------

_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def validate_endpoint_url(
    url: str, *, allowed_networks: Sequence[IPNetwork] | None = None
) -> list[str]:
    """endpoint_problems() in English: the sender's reasons to refuse a URL."""
    return [p.message() for p in endpoint_problems(url, allowed_networks=allowed_networks)]


def endpoint_problems(
    url: str, *, allowed_networks: Sequence[IPNetwork] | None = None
) -> list[Problem]:
    """Problems with an endpoint URL (field "endpoint"); [] when it is usable.

    Checks the form only: http or https, a valid host, no user:password@ (the
    hook's basic auth fields are for that), no spaces or control characters,
    at most MAX_URL_LENGTH characters, a port between 1 and 65535. It does not
    resolve names (that happens at send time). When ``allowed_networks`` is
    given, a host written as an IP address is also checked with address_refusal,
    in any spelling the resolver reads as one (2130706433, 0x7f000001, 127.1).
    """
    if not isinstance(url, str) or not url:
        return [_url_problem("url.required")]
    if len(url) > MAX_URL_LENGTH:
        return [_url_problem("url.too_long", most=MAX_URL_LENGTH)]
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return [_url_problem("url.whitespace")]
    try:
        parts = urlsplit(url)
    except ValueError:
        return [_url_problem("url.unparsable")]
    scheme = parts.scheme.lower()
    if not scheme or not url.lower().startswith(scheme + "://"):
        return [_url_problem("url.no_scheme")]
    if scheme not in ("http", "https"):
        return [_url_problem("url.scheme", scheme=scheme)]
    problems = []
    if "@" in parts.netloc:
        problems.append(_url_problem("url.userinfo"))
    host = parts.hostname
    if not host:
        problems.append(_url_problem("url.no_host"))
    else:
        problems.extend(_host_problems(host, parts.netloc, allowed_networks))
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        problems.append(_url_problem("url.port"))
    return problems


def _url_problem(code: str, **params: object) -> Problem:
    return Problem("endpoint", code, params)


def _host_problems(host: str, netloc: str, allowed: Sequence[IPNetwork] | None) -> list[Problem]:
    ip = ip_literal(host)
    if ip is None and "[" in netloc:
        return [_url_problem("url.bad_ipv6", host=host)]
    if ip is None:
        name = host.rstrip(".")
        try:
            ascii_name = name if name.isascii() else idna.encode(name, uts46=True)
        except (idna.IDNAError, UnicodeError):
            return [_url_problem("url.bad_host", host=host)]
        if isinstance(ascii_name, bytes):
            ascii_name = ascii_name.decode("ascii")
        labels = ascii_name.split(".")
        if len(ascii_name) > 253 or not all(_LABEL.match(lb) for lb in labels):
            return [_url_problem("url.bad_host", host=host)]
        # A name the resolver reads as an address (2130706433, 0x7f.1, 127.1,
        # and after IDNA mapping ①②⑦.0.0.1) is judged by that address.
        address = None if allowed is None else _numeric_address(ascii_name.lower())
        reason = None if address is None else address_refusal(address, allowed)
        if reason is not None:
            return [
                _url_problem("url.internal_spelling", host=host, ip=str(address), reason=reason)
            ]
        if not host.isascii() and not _urllib3_accepts(host):
            return [_url_problem("url.bad_host", host=host)]
        return []
    reason = None if allowed is None else address_refusal(ip, allowed)
    if reason is not None:
        return [_url_problem("url.internal", ip=str(ip), reason=reason)]
    return []


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` is written as (brackets allowed), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _numeric_address(name: str) -> IPAddress | None:
    """The address the resolver reads in ``name`` without any lookup, or None.

    getaddrinfo with AI_NUMERICHOST is the very parser the send-time guard's
    lookup uses (inet_aton forms: decimal, octal, hex, one to four parts), so
    save time and send time cannot read a host differently.
    """
    try:
        infos = socket.getaddrinfo(name, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(infos[0][4][0]) if infos else None


def _urllib3_accepts(host: str) -> bool:
    """urllib3 IDNA-encodes names strictly (no UTS 46 mapping): ｅｘａｍｐｌｅ.org
    or ①②⑦.0.0.1 make every send fail, so they are refused at save."""
    # Imported here: loading the config (parse_networks) must not load urllib3's pools.
    import urllib3.exceptions
    from urllib3.util import parse_url

    try:
        parse_url(f"http://{host}/")
    except urllib3.exceptions.LocationParseError:
        return False
    return True
