"""The live stream of `llmb web` (GET /api/events, docs/web.md) as the
checks of web_api.sh read it."""
import http.client
import json


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
