#!/usr/bin/env python3
"""Open N keep-alive connections to HOST:PORT, complete one request on each, then hold them idle.

Prints one line ("held N connections" or what failed) once every connection is idle, then waits until stdin
closes, it is killed, or HOLD seconds pass, whichever is first, and closes everything. Loopback only.

    idle_conns.py HOST PORT N HOLD
"""
import ipaddress
import selectors
import socket
import sys
import time


def main() -> int:
    host, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    if not ipaddress.ip_address(host).is_loopback:
        print(f"refusing non-loopback target {host}", flush=True)
        return 2
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    socks = []
    deadline = time.monotonic() + 60
    try:
        for _ in range(count):
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(request)
            socks.append(s)
            # Read answers in batches so the kernel backlog never holds thousands of unread responses.
            if len(socks) % 500 == 0:
                drain(socks[-500:], deadline)
        drain(socks[len(socks) - len(socks) % 500:], deadline)
    except OSError as e:
        print(f"failed after {len(socks)} connections: {e}", flush=True)
        return 1
    print(f"held {len(socks)} connections", flush=True)
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    sel.select(timeout=hold)
    for s in socks:
        s.close()
    return 0


def drain(socks, deadline):
    """Reads one complete response (headers + Content-Length body) from each socket."""
    for s in socks:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk or time.monotonic() > deadline:
                raise OSError("connection closed before a complete response")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed inside a response body")
            body += chunk


if __name__ == "__main__":
    sys.exit(main())
