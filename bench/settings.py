"""Telemed's settings for the booking benchmark's server: the product's,
with a URL configuration that adds one bench-only endpoint (``bench.urls``).
Never used by the product; only ``bench.booking`` starts Daphne with it."""

from telemed.settings import *  # noqa: F403  # the product's settings, unchanged but for the URLs

ROOT_URLCONF = "bench.urls"
