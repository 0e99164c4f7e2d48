"""The blackbox driver: what Prometheus would do for blackbox_exporter, calling
/probe?target=...&module=... for every target and check once per interval, evenly spread,
with the same concurrency bound as our exporter. Run: python -m bench.bbdriver --spec FILE.

SIGUSR1 notes the counters (the harness's window marks); SIGTERM writes --out and exits.
Its CPU is reported separately from blackbox_exporter's."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

__all__ = ["main"]

_SUCCESS = re.compile(rb"^probe_success (\S+)$", re.M)
_DURATION = re.compile(rb"^probe_duration_seconds (\S+)$", re.M)


class Driver:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.completed = 0
        self.successes = 0
        self.marks: list[dict[str, float]] = []
        self.delay_samples: list[tuple[float, str, float, bool]] = []

    def mark(self) -> None:
        self.marks.append(
            {"time": time.time(), "probes": self.completed, "successes": self.successes}
        )

    async def run(self, stop: asyncio.Event) -> None:
        jobs = [
            (url, check, module, bool(delay))
            for url, delay in self.spec["targets"]
            for check, module in self.spec["modules"].items()
        ]
        interval = float(self.spec["interval"])
        sem = asyncio.Semaphore(int(self.spec["max_concurrency"]))
        base = f"http://127.0.0.1:{self.spec['blackbox_port']}/probe"
        connector = aiohttp.TCPConnector(limit=int(self.spec["max_concurrency"]))
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": "10"}
        start = time.monotonic() + 0.2
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def loop(i: int, url: str, check: str, module: str, delay: bool) -> None:
                tick = start + interval * i / len(jobs)
                probe_url = f"{base}?module={module}&target={quote(url + self.spec['paths'][check], safe='')}"
                while True:
                    await asyncio.sleep(max(0.0, tick - time.monotonic()))
                    async with sem:
                        t = time.time()
                        try:
                            async with session.get(probe_url) as resp:
                                body = await resp.read()
                        except aiohttp.ClientError:
                            body = b""
                    m = _SUCCESS.search(body)
                    ok = bool(m and m.group(1) == b"1")
                    self.completed += 1
                    self.successes += ok
                    if delay:
                        d = _DURATION.search(body)
                        if d:
                            self.delay_samples.append((t, check, float(d.group(1)), ok))
                    tick += interval
                    while tick < time.monotonic():  # a missed tick is skipped, as Prometheus does
                        tick += interval

            tasks = [asyncio.create_task(loop(i, *job)) for i, job in enumerate(jobs)]
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _main(spec: dict[str, Any], out: Path) -> None:
    driver = Driver(spec)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, driver.mark)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await driver.run(stop)
    out.write_text(json.dumps({"marks": driver.marks, "delay_samples": driver.delay_samples}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_main(json.loads(args.spec.read_text()), args.out))


if __name__ == "__main__":
    main()
