"""Grafana dashboards for llm-heartbeat, generated from code (see `python -m grafana.generate`)."""
