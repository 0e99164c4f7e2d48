"""Benchmarks. They print figures; they are not assertions, and `make test` does not run them.

- `python -m bench.scale` (`make bench`): llm-heartbeat against Prometheus's
  blackbox_exporter at N = 100, 1,000, 5,000 targets (BENCHMARKS.md).
- `python -m bench.transport`: HTTP client CPU per request (the transport choice).
- `python -m bench.render`: /metrics render time, prometheus_client against
  exporter.metrics.exposition.render."""
