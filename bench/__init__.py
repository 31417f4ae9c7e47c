"""Telemed benchmarks: HTTP throughput and page weight, run by `make bench`.

``python -m bench`` starts Telemed in embedded mode in a temporary directory,
loads it from 127.0.0.1, measures what a patient's browser downloads on first
load of each page, and writes the figures to docs/benchmarks.md.
``python -m bench --smoke`` is a few-second check that writes nothing.
"""
