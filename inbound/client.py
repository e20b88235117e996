"""Facts about the client of a request that the plugin may keep: a truncated IP (P4) and a rate key."""

import hashlib
import ipaddress
from dataclasses import dataclass

from django.core.cache import cache
from django.utils.translation import get_language

from . import conf


def client_ip(request):
    """The client's IP address, honouring X-Forwarded-For only when configured to."""
    if conf.get("INBOUND_TRUST_X_FORWARDED_FOR"):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


def truncate_ip(address):
    """IPv4 to /24 and IPv6 to /48 (P4). Anything unparsable becomes the empty string."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except (ValueError, AttributeError):
        return ""
    prefix = 24 if ip.version == 4 else 48
    network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    return str(network)


@dataclass(frozen=True)
class ClientInfo:
    ip_truncated: str
    language: str

    @classmethod
    def from_request(cls, request):
        return cls(ip_truncated=truncate_ip(client_ip(request)), language=(get_language() or "de")[:8])


def hit_rate_limit(scope, key, limit, window_seconds=3600):
    """Count one hit for (scope, key); True once more than `limit` hits fall in the window.

    Keys are hashed, so no address or IP is stored in the cache in the clear.
    """
    digest = hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()[:32]
    cache_key = f"inbound:rate:{scope}:{digest}"
    cache.add(cache_key, 0, window_seconds)
    try:
        hits = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, window_seconds)
        hits = 1
    return hits > limit
