# syntax=docker/dockerfile:1
# llm-heartbeat exporter (also runs the simulator: `llm-heartbeat simulate`).
# Small: python slim, a wheel-only virtualenv copied into a clean stage, no compilers.
# Runs as an unprivileged user (uid 10001).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY exporter ./exporter
RUN python -m venv /opt/llm-heartbeat \
 && /opt/llm-heartbeat/bin/pip install --no-compile . \
 && find /opt/llm-heartbeat -name '__pycache__' -type d -prune -exec rm -rf {} +

FROM python:3.11-slim
LABEL org.opencontainers.image.title="llm-heartbeat" \
      org.opencontainers.image.description="Prometheus exporter that proves LLM inference servers really answer" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 llmhb \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/llm-heartbeat llmhb \
 && mkdir -p /var/lib/llm-heartbeat /etc/llm-heartbeat \
 && chown 10001:10001 /var/lib/llm-heartbeat
COPY --from=build /opt/llm-heartbeat /opt/llm-heartbeat
ENV PATH=/opt/llm-heartbeat/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /var/lib/llm-heartbeat
USER 10001:10001
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/-/healthy', timeout=4)"]
ENTRYPOINT ["llm-heartbeat"]
CMD ["run", "--config", "/etc/llm-heartbeat/llm-heartbeat.yml"]
