"""llm-heartbeat: a Prometheus exporter that proves LLM inference servers really answer."""

__version__ = "0.1.0"
__all__ = ["__version__"]
