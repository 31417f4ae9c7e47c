"""The channel layer's configuration for channels-redis, shared by the
settings and the tests that start their own servers."""

from __future__ import annotations

from typing import Any

# channels-redis blocks on BZPOPMIN for 5 s; redis-py's default socket
# timeout is 5 s as well, so an idle receive would fail with a timeout and
# Daphne would close the consult socket (1011). Comfortably above.
SOCKET_TIMEOUT_S = 30


def redis_channel_layer(*, url: str, max_connections: int, capacity: int, prefix: str = "asgi") -> dict[str, Any]:
    """``max_connections``: redis-py's pool per process (its default, 100,
    fails under hundreds of sockets sending at once). ``capacity``: the
    messages one process's inbox holds, shared by all its sockets (the
    default, 100, drops messages beyond it silently)."""
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": SOCKET_TIMEOUT_S, "max_connections": max_connections}],
            "capacity": capacity,
            "prefix": prefix,
        },
    }
