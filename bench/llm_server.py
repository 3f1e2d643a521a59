#!/usr/bin/env python3
"""A streaming OpenAI-style server on a known schedule, for bench/llm_clock.sh
(--server py; the default is its C twin, bench/llm_server.c).

Independent of examples/mock-llm: every response streams --tokens content
chunks, the first --first-ms after the request was read in full, then one
every --itl-ms, each on an absolute schedule (recv + first + k * itl), and
logs the true send time of each (time.monotonic_ns right after the write
to the socket). That log is the ground truth the clients' TTFT is held to:
GET /stats returns, per request, the server's TTFT (first chunk sent minus
request read) and how late each chunk left against its schedule; POST
/reset clears it. Loopback only; standard library only.

    python3 -S bench/llm_server.py --port 0 --first-ms 50 --itl-ms 100 --tokens 16
"""
import argparse
import asyncio
import json
import socket
import time

CHUNK = (b'data: {"object":"chat.completion.chunk","choices":[{"index":0,'
         b'"delta":{"content":"tok"}}]}\n\n')
FINISH = (b'data: {"object":"chat.completion.chunk","choices":[{"index":0,'
          b'"delta":{},"finish_reason":"length"}]}\n\n')
DONE = b'data: [DONE]\n\n'


def framed(data):
    return b'%x\r\n%s\r\n' % (len(data), data)


class Server:
    def __init__(self, args):
        self.args = args
        self.reset()

    def reset(self):
        self.ttft_ns = []      # first chunk sent - request read, per request
        self.late_ns = []      # each chunk's send time - its schedule
        self.chunks = 0


class Conn(asyncio.Protocol):
    def __init__(self, srv):
        self.srv = srv
        self.buf = b''
        self.t = None

    def connection_made(self, transport):
        self.t = transport
        sock = transport.get_extra_info('socket')
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b'\r\n\r\n')
            if end < 0:
                return
            head = self.buf[:end].decode('latin-1')
            length = 0
            for line in head.split('\r\n')[1:]:
                k, _, v = line.partition(':')
                if k.strip().lower() == 'content-length':
                    length = int(v.strip())
            if len(self.buf) < end + 4 + length:
                return
            recv = time.monotonic_ns()
            self.buf = self.buf[end + 4 + length:]
            line = head.split('\r\n', 1)[0]
            if line.startswith('GET /stats'):
                self.reply(json.dumps({
                    'ttft_ns': self.srv.ttft_ns,
                    'late_ns': self.srv.late_ns,
                    'chunks': self.srv.chunks}).encode())
            elif line.startswith('POST /reset'):
                self.srv.reset()
                self.reply(b'{}')
            else:
                self.stream(recv)

    def reply(self, body):
        self.t.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
                     b'Content-Length: %d\r\n\r\n%s' % (len(body), body))

    def stream(self, recv):
        a = self.srv.args
        loop = asyncio.get_running_loop()
        self.t.write(b'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n'
                     b'Transfer-Encoding: chunked\r\n\r\n')
        base = recv / 1e9 + a.first_ms / 1000.0

        def send(k):
            if self.t.is_closing():
                return
            due_ns = recv + int((a.first_ms + k * a.itl_ms) * 1e6)
            self.t.write(framed(CHUNK))
            now = time.monotonic_ns()
            self.srv.chunks += 1
            self.srv.late_ns.append(now - due_ns)
            if k == 0:
                self.srv.ttft_ns.append(now - recv)
            if k + 1 < a.tokens:
                loop.call_at(base + (k + 1) * a.itl_ms / 1000.0, send, k + 1)
            else:
                self.t.write(framed(FINISH) + framed(DONE) + b'0\r\n\r\n')

        loop.call_at(base, send, 0)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--first-ms', type=float, default=50)
    p.add_argument('--itl-ms', type=float, default=100)
    p.add_argument('--tokens', type=int, default=16)
    a = p.parse_args()
    srv = Server(a)
    loop = asyncio.get_running_loop()
    # asyncio's call_at uses time.monotonic(), the clock of the log.
    server = await loop.create_server(lambda: Conn(srv), '127.0.0.1', a.port,
                                      backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print('listening on 127.0.0.1:%d' % port, flush=True)
    await server.serve_forever()


if __name__ == '__main__':
    asyncio.run(main())
