"""Views of the monitor for Prometheus: the collectors and a fast text exposition."""
