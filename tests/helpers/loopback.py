"""A plain ``http.server`` on 127.0.0.1 in a daemon thread, for the test servers that answer from synchronous
code (the openssl-backed OCSP responder and TSA)."""

from __future__ import annotations

import http.server
import socket
import threading

__all__ = ["reply", "serve_in_thread", "shut_down"]


def serve_in_thread(
    handler: type[http.server.BaseHTTPRequestHandler], name: str, port: int = 0
) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    """``handler`` served on 127.0.0.1:``port`` (0: a free one) by a daemon thread named ``name``; it accepts
    connections when this returns."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    with socket.create_connection(("127.0.0.1", int(server.server_address[1])), timeout=5):
        pass
    return server, thread


def shut_down(server: http.server.ThreadingHTTPServer, thread: threading.Thread | None) -> None:
    """Stop ``server`` and close its socket (the port refuses connections from then on)."""
    server.shutdown()
    server.server_close()
    assert thread is not None
    thread.join(timeout=5)


def reply(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    """Answer the request ``handler`` serves with ``status`` and ``body``."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
