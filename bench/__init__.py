"""Benchmarks: the transport micro-benchmark (`python -m bench.transport`) and the scale
benchmark against Prometheus's blackbox_exporter (`python -m bench.scale`, `make bench`).

They print figures; they are not assertions, and `make test` does not run them."""
