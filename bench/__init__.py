"""Telemed benchmarks: HTTP throughput, page weight, notification delivery,
slot search and booking under contention, run by `make bench`.

``python -m bench`` starts Telemed in embedded mode in a temporary directory,
loads it from 127.0.0.1, measures what a patient's browser downloads on first
load of each page, then has two Celery workers deliver 10,000 due SMS
notifications on PostgreSQL and Redis (``bench.notifications``), times the
patient's doctor search with 10 and 30 doctors (``bench.slots``), has 32 API
clients book at once beside a bare insert (``bench.booking``), and writes the
figures to docs/benchmarks.md. ``python -m bench --smoke`` is a short check
that writes nothing.
"""
