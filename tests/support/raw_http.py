"""HTTP/1.1 as a misbehaving client speaks it, on raw sockets: an HTTP library would neither
send a 96 MiB header nor wait to see what the server does with half a request."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

HEAD_START = b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Filler: "


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection within `seconds`."""
    received = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def has_answered(sock: socket.socket) -> bool:
    """Whether the server has sent something (or closed), without waiting."""
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        sock.recv(1, socket.MSG_PEEK)  # a byte, or b"" when closed
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(timeout)
    return True


def send_oversized_head(url: str, total: int) -> tuple[bytes, int, bool]:
    """Sends a header `total` bytes long, a MiB at a time, stopping once the server answers or
    closes (as a client reading its socket would). What the server sent, how many bytes of the
    header went, and whether the server closed within 5 s of the last."""
    chunk, sent = b"a" * (1024 * 1024), 0
    with connect(url) as sock:
        sock.sendall(HEAD_START)
        while sent < total and not has_answered(sock):
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        received, closed = read_until_closed(sock, 5)
    return received, sent, closed
