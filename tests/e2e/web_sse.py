"""The live stream of `llmb web` (GET /api/events, docs/web.md) as the
checks of web_api.sh read it."""
import http.client
import json


def events(port, timeout=60):
    """Opens the stream of the server on port of 127.0.0.1 and returns an
    iterator of its messages as (event, data) pairs, data decoded from
    JSON. Asserts that it answered 200 and, when read on, that it did not
    end; a read waits at most timeout seconds."""
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=timeout)
    c.request("GET", "/api/events")
    r = c.getresponse()
    assert r.status == 200, r.status

    def read():
        ev = None
        while True:
            line = r.fp.readline().decode()
            assert line, "the stream ended"
            if line.startswith("event: "):
                ev = line[7:].strip()
            elif line.startswith("data: "):
                yield ev, json.loads(line[6:])
    return read()
