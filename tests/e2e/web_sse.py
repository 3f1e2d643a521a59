#!/usr/bin/env python3
"""The HTTP of llmb's servers as the e2e checks read it: the live stream
of `llmb web` (GET /api/events, docs/web.md) for web_api.sh, and raw
sockets, for what http.client hides (a connection that sends nothing, an
answer read to the server's close whatever it holds), for web_api.sh,
web_api.py and cli_health.sh.

usage: web_sse.py PORT PATH LIMIT IDLE [STATUS]
checks the per-address connection limit of the server on PORT of
127.0.0.1 (the coordinator's and `llmb web`'s, LIMIT connections per
address): IDLE idle connections from one address hold their slots;
when IDLE >= LIMIT, one more is closed at once, unanswered; the first and
the last idle one and a connection from another address (127.0.0.2) are
served: GET PATH answers HTTP/1.1, with STATUS when given. Exits 1 with
an AssertionError when not."""
import http.client
import json
import socket
import sys


class Stream:
    """An open stream of the server on port of 127.0.0.1, sent last_id as
    Last-Event-ID when given. Iterating gives its messages as (id, event,
    data) triples, id the message's own (None without one) and data
    decoded from JSON; comment lines are skipped. Asserts that it answered
    200 and, when read on, that it did not end; a read waits at most
    timeout seconds."""

    def __init__(self, port, last_id=None, timeout=60):
        self.conn = http.client.HTTPConnection("127.0.0.1", int(port),
                                               timeout=timeout)
        headers = {} if last_id is None else {"Last-Event-ID": last_id}
        self.conn.request("GET", "/api/events", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.status

    def __iter__(self):
        mid = ev = data = None
        while True:
            line = self.resp.fp.readline().decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if line.startswith("id: "):
                mid = line[4:]
            elif line.startswith("event: "):
                ev = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "":
                if ev is not None:
                    yield mid, ev, data
                mid = ev = data = None

    def close(self):
        self.resp.close()
        self.conn.close()


def events(port, timeout=60):
    """The messages of a new stream as (event, data) pairs (Stream)."""
    return ((ev, data) for _, ev, data in Stream(port, timeout=timeout))


def connect(port, src="127.0.0.1", timeout=20):
    """A connection from src to port of 127.0.0.1 that has sent nothing."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", int(port)))
    return s


def read_to_close(s):
    """Everything s receives until the server closes it (a reset is a
    close too); closes s."""
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except ConnectionResetError:
        pass
    s.close()
    return data


def get(s, path):
    """GET path on connection s: the whole answer (read_to_close)."""
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Connection: close\r\n\r\n")
    return read_to_close(s)


def check_conns_per_ip(port, path, limit, idle, status=None):
    """The check of the usage above; status a string like "200"."""
    ok = b"HTTP/1.1 " + (status.encode() if status else b"")
    held = [connect(port) for _ in range(idle)]  # each sends nothing
    if idle >= limit:
        got = get(connect(port), path)
        assert got == b"", ("connection %d of one address was served"
                            % (idle + 1), got[:80])
    for i in sorted({0, idle - 1}):  # the first and the last held
        got = get(held[i], path)
        assert got.startswith(ok), ("idle connection %d" % i, got[:80])
    got = get(connect(port, "127.0.0.2"), path)
    assert got.startswith(ok), ("another address", got[:80])
    for s in held:
        s.close()


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__.split("\n\n")[1])
    check_conns_per_ip(sys.argv[1], sys.argv[2], int(sys.argv[3]),
                       int(sys.argv[4]), *sys.argv[5:])
