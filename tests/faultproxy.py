"""A loopback HTTP proxy that injects faults in front of an OpenAI-compatible server.

    proxy = FaultProxy("http://127.0.0.1:8000", rate=0.2).start()   # proxy.base_url
    ...
    proxy.stop(); proxy.injected   # Counter of faults by kind

POST requests are faulted at `rate`, with a fault drawn from KINDS, once `healthy` requests
have been answered successfully by the upstream server (a refused response format does not
count); GETs (model listing) always pass, except the `hidden` paths, answered 404 (a server
that does not describe its API). Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("429-retry-after", "429", "500", "503", "reset", "timeout", "truncated", "invalid-json")


class FaultProxy:
    def __init__(self, upstream: str, *, rate: float, seed: int = 0, kinds=KINDS,
                 healthy: int = 0, hang: float = 6.0, hidden: tuple[str, ...] = ()) -> None:
        self.upstream = upstream.rstrip("/")
        self.hidden = hidden
        self.rate = rate
        self.kinds = kinds
        self.healthy = healthy
        self.hang = hang  # how long a "timeout" fault keeps the client waiting
        self.injected: Counter = Counter()
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path in proxy.hidden:
                    self.send_error(404)
                else:
                    proxy._forward(self, None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                proxy._handle(self, body)

        ThreadingHTTPServer.request_queue_size = 128
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _pick(self) -> str | None:
        with self._lock:
            if self.healthy > 0:
                return None
            if self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            self.injected[kind] += 1
            return kind

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        kind = self._pick()
        if kind is None:
            self._forward(handler, body)
        elif kind.startswith("429") or kind in ("500", "503"):
            code = int(kind[:3])
            handler.send_response(code)
            if kind == "429-retry-after":
                handler.send_header("retry-after", "1")
            payload = b'{"error": {"message": "injected fault"}}'
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        elif kind == "reset":
            handler.close_connection = True
            handler.connection.close()
        elif kind == "timeout":
            time.sleep(self.hang)
            handler.close_connection = True
            handler.connection.close()
        else:  # a 200 whose body is cut short, or is not JSON at all
            status, headers, data = self._upstream(handler, body)
            data = data[: len(data) // 2] if kind == "truncated" else b"{not json at all"
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)

    def _upstream(self, handler: BaseHTTPRequestHandler, body: bytes | None):
        request = urllib.request.Request(self.upstream + handler.path, data=body,
                                         method=handler.command,
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as reply:
                return reply.status, dict(reply.headers), reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        status, headers, data = self._upstream(handler, body)
        with self._lock:
            self.forwarded += 1
            if body is not None and status < 300:
                self.healthy = max(0, self.healthy - 1)
        handler.send_response(status)
        handler.send_header("content-type", headers.get("Content-Type", "application/json"))
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
