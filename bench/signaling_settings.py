"""Telemed's settings with the channel layer that the signaling benchmark
proposes for channels-redis (``bench.signaling``'s "proposed pool" set-ups),
to compare with the product's as they are. Never used by the product.

- ``socket_timeout`` above the layer's 5 s ``BZPOPMIN``: redis-py 8 reads
  with a 5 s socket timeout by default, so an idle consumer's receive
  raises ``TimeoutError`` and Daphne closes its socket (1011);
- ``max_connections`` 1000: redis-py's pool allows 100 connections in use
  per process and raises ``MaxConnectionsError`` beyond (one per Redis
  command in flight: hundreds of sockets sending at once);
- ``capacity`` 1000: all of a process's sockets share one Redis inbox, and
  a ``group_send`` to an inbox holding ``capacity`` messages is dropped
  silently.
"""

from telemed.settings import *  # noqa: F403  # the product's settings, but for the channel layer

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 1000}],  # noqa: F405
            "capacity": 1000,
        },
    }
}
