"""A tiny stand-in model server: after --startup seconds (port closed, like vLLM loading weights)
it serves GET /health (200) and /metrics. Usage: model_server.py PORT STARTUP_SECONDS."""

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            body = f"pid={os.getpid()}".encode()
        elif self.path == "/metrics":
            body = b"vllm:num_requests_waiting 0\n"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


time.sleep(float(sys.argv[2]))
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
