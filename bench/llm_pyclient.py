#!/usr/bin/env python3
"""A typical Python asyncio streaming client, for comparison in
bench/llm_clock.sh (aiohttp and httpx are not in the image, so raw asyncio
streams, the way a small load generator is written): N requests at once,
each timed from just before its request is written to the first content
chunk read. Prints one JSON line: the TTFTs in ms, the chunks read and the
process's CPU seconds.

    python3 -S bench/llm_pyclient.py --port P --n 128
"""
import argparse
import asyncio
import json
import resource
import time

BODY = json.dumps({'model': 'm', 'stream': True, 'max_tokens': 16,
                   'messages': [{'role': 'user', 'content': 'bench'}]}).encode()


async def one(port, out):
    r, w = await asyncio.open_connection('127.0.0.1', port)
    req = (b'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n'
           b'Content-Type: application/json\r\nAccept: text/event-stream\r\n'
           b'Content-Length: %d\r\n\r\n%s' % (len(BODY), BODY))
    t0 = time.monotonic()
    w.write(req)
    await w.drain()
    first = None
    chunks = 0
    while True:
        line = await r.readline()
        if not line:
            break
        if line.startswith(b'data: {') and b'"content"' in line:
            chunks += 1
            if first is None:
                first = time.monotonic()
        if line.startswith(b'data: [DONE]'):
            break
    w.close()
    out.append(((first - t0) * 1000.0 if first else None, chunks))


async def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--n', type=int, default=1)
    a = p.parse_args()
    out = []
    await asyncio.gather(*(one(a.port, out) for _ in range(a.n)))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({'ttft_ms': [x for x, _ in out if x is not None],
                      'chunks': sum(c for _, c in out),
                      'cpu_s': ru.ru_utime + ru.ru_stime}))


if __name__ == '__main__':
    asyncio.run(main())
