#!/usr/bin/env python3
"""mock-llm: an OpenAI-compatible LLM server for llmb's tests, demos and
benchmarks. Python 3 standard library only; runs under `python3 -S`.

It serves POST /v1/chat/completions and POST /v1/completions, streaming
(Server-Sent Events over chunked HTTP/1.1, keep-alive) and not, on
127.0.0.1 (--host to change). Every response is synthetic: token i of
a stream is sent at TTFT + i * ITL after the request arrived, and
`usage` comes in a last chunk when the request asks for it with
stream_options.include_usage.
Faults are opt-in: an error rate, 429s (random, over an in-flight limit,
or the first N attempts of a key), stalls, broken streams and garbage.

Every command-line setting (see --help) can be overridden per request by
an object "mock" in the request body, with the flag's name in snake case:
    {"model": "m", "messages": [...], "mock": {"ttft_ms": 200, "tokens": 5}}
so one server can play many parts in one test run (an llm payload sends
it in its "extra_body").

Introspection for tests: GET /mock/stats returns what the server saw
(requests, statuses, peak concurrency, Authorization values, arrival
times, connections that carried a completion request) and what it
really sent (per stream its TTFT and mean gap, per whole answer its
time: a loaded machine makes them miss the settings);
POST /mock/reset clears it. --log-sends writes the time of every content
chunk. GET /health and GET /v1/models answer
too. With --port 0 the kernel picks the port; the first line on stdout is
always "mock-llm listening on HOST:PORT".
"""

import argparse
import asyncio
import json
import random
import signal
import socket
import sys
import time

SETTINGS = {
    # name: (type, default, help)
    "ttft_ms": (float, 50.0, "time to the first content token"),
    "itl_ms": (float, 10.0, "gap between content tokens"),
    "tokens": (int, 16,
               "content tokens per response when the request has no "
               "max_tokens (a request's max_tokens wins, unless the "
               "per-request override sets tokens)"),
    "jitter": (float, 0.0,
               "each delay is multiplied by a uniform factor in "
               "[1-J, 1+J]"),
    "error_rate": (float, 0.0,
                   "fraction of requests answered with --error-status"),
    "error_status": (int, 500, "status of --error-rate answers"),
    "rate_limit_rate": (float, 0.0,
                        "fraction of requests answered 429"),
    "max_inflight": (int, 0,
                     "answer 429 while this many requests are running "
                     "(0 = no limit)"),
    "retry_after": (int, 0, "Retry-After seconds sent with a 429"),
    "fail_times": (int, 0,
                   "answer the first N requests of each fail_key with "
                   "fail_status (per-request override)"),
    "fail_status": (int, 429, "status of fail_times answers"),
    "fail_key": (str, "", "key that fail_times counts under"),
    "stall_after": (int, -1,
                    "stop sending after this many tokens (-1 = never)"),
    "stall_ms": (float, 3600000.0, "how long a stall lasts"),
    "pause_every": (int, 0,
                    "every Nth gap between content tokens (before tokens "
                    "N, 2N, ...) lasts --pause-ms instead of --itl-ms "
                    "(0 = never): a periodic decode stall"),
    "pause_ms": (float, 80.0, "length of a --pause-every gap"),
    "break_after": (int, -1,
                    "close the connection abruptly after this many "
                    "tokens (-1 = never)"),
    "garbage_after": (int, -1,
                      "send a data line that is not JSON after this many "
                      "tokens (-1 = never)"),
    "usage": (bool, True,
              "send usage (streaming: only when include_usage is asked)"),
    "done": (bool, True, "end streams with data: [DONE]"),
    "fragment": (int, 0,
                 "write streamed bytes in pieces of at most N bytes, each "
                 "sent on its own (0 = whole events)"),
    "delay_ms": (float, 0.0, "wait this long before the response headers"),
    "long_error_header": (bool, False,
                          "error answers carry a Content-Type line of over "
                          "2 KiB"),
    "drop_kept": (bool, False,
                  "close a kept connection (one that answered a completion "
                  "before) on its next completion request, unanswered: a "
                  "server whose keep-alive timeout struck as the request "
                  "came"),
}

ARRIVALS_KEPT = 100000


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.requests = 0
        self.connections = 0  # that carried a completion request
        self.dropped = 0  # completion requests unanswered (drop_kept)
        self.inflight = 0
        self.max_inflight_seen = 0
        self.statuses = {}
        self.authorization = {}
        self.arrivals = []
        self.streams = []  # (ttft_ms, mean gap ms) as sent, per stream
        self.bodies = []   # ms from reading to writing a whole answer
        self.paths = {}
        self.fail_counts = {}
        self.started = time.monotonic()

    def as_json(self):
        return {
            "requests": self.requests,
            "connections": self.connections,
            "dropped": self.dropped,
            "inflight": self.inflight,
            "max_inflight_seen": self.max_inflight_seen,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "authorization": self.authorization,
            "paths": self.paths,
            "arrivals_s": self.arrivals,
            "ttfts_ms": [t for t, _ in self.streams],
            "gaps_ms": [g for _, g in self.streams if g is not None],
            "bodies_ms": self.bodies,
        }


class Mock:
    def __init__(self, args):
        self.defaults = {name: getattr(args, name) for name in SETTINGS}
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.quiet = args.quiet
        self.read_delay_ms = args.read_delay_ms
        self.max_body_bytes = args.max_body_bytes
        self.keep_alive_ms = args.keep_alive_ms
        self.log = open(args.log_requests, "a") if args.log_requests \
            else None
        self.sends = open(args.log_sends, "a") if args.log_sends else None
        self.seq = 0

    # -- settings --------------------------------------------------------
    def settings_for(self, body):
        s = dict(self.defaults)
        over = body.get("mock") if isinstance(body, dict) else None
        if isinstance(over, dict):
            for k, v in over.items():
                if k not in SETTINGS:
                    raise ValueError('unknown mock setting "%s"' % k)
                typ = SETTINGS[k][0]
                if typ is bool:
                    if not isinstance(v, bool):
                        raise ValueError('mock setting "%s" must be a '
                                         'boolean' % k)
                    s[k] = v
                else:
                    s[k] = typ(v)
        return s

    def delay(self, s, ms):
        j = s["jitter"]
        if j > 0:
            ms *= self.rng.uniform(1.0 - j, 1.0 + j)
        return max(ms, 0.0) / 1000.0

    def gap(self, s, i):
        """Seconds between content tokens i and i + 1: --pause-ms for every
        --pause-every-th gap, else --itl-ms (both jittered)."""
        pe = s["pause_every"]
        return self.delay(s, s["pause_ms"] if pe > 0 and (i + 1) % pe == 0
                          else s["itl_ms"])

    # -- HTTP ------------------------------------------------------------
    async def handle(self, reader, writer):
        sock = writer.get_extra_info("socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.max_body_bytes > 0:
                # a body over the limit must not fit in the buffers
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        except (OSError, AttributeError):
            pass
        conn = {"counted": False}
        try:
            while True:
                keep = await self.one_request(reader, writer, conn)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # the server is shutting down
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def one_request(self, reader, writer, conn):
        if self.keep_alive_ms > 0 and conn.get("served"):
            try:
                line = await asyncio.wait_for(reader.readline(),
                                              self.keep_alive_ms / 1000.0)
            except asyncio.TimeoutError:
                return False  # idle too long: closed
        else:
            line = await reader.readline()
        conn["served"] = True
        if not line:
            return False
        try:
            method, path, version = line.decode("latin-1").split()
        except ValueError:
            await self.send_json(writer, 400, {"error": {
                "message": "bad request line", "type": "invalid_request"}},
                close=True)
            return False
        headers = {}
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        n = int(headers.get("content-length", "0") or "0")
        if self.max_body_bytes > 0 and n > self.max_body_bytes:
            # at once, the body unread, and the connection closed on it
            # after a moment (a lingering close: the client gets to read)
            self.stats.statuses[413] = self.stats.statuses.get(413, 0) + 1
            await self.send_json(writer, 413, {"error": {
                "message": "request body too large",
                "type": "invalid_request"}}, close=True)
            await asyncio.sleep(0.2)
            return False
        if n > 0 and self.read_delay_ms > 0:
            await asyncio.sleep(self.read_delay_ms / 1000.0)
        raw = await reader.readexactly(n) if n > 0 else b""
        close = (headers.get("connection", "").lower() == "close" or
                 version == "HTTP/1.0")
        path = path.split("?", 1)[0]
        if method == "GET" and path == "/mock/stats":
            await self.send_json(writer, 200, self.stats.as_json(), close)
        elif method == "POST" and path == "/mock/reset":
            self.stats.reset()
            await self.send_json(writer, 200, {"ok": True}, close)
        elif method == "GET" and path == "/health":
            await self.send_json(writer, 200, {"ok": True}, close)
        elif method == "GET" and path == "/v1/models":
            await self.send_json(writer, 200, {"object": "list", "data": [
                {"id": "mock", "object": "model", "owned_by": "llmb"}]},
                close)
        elif method == "POST" and path in ("/v1/chat/completions",
                                           "/v1/completions"):
            if conn["counted"]:
                try:
                    body = json.loads(raw)
                    drop = self.settings_for(body)["drop_kept"]
                except ValueError:
                    drop = False
                if drop:
                    self.stats.dropped += 1
                    return False
            else:
                conn["counted"] = True
                self.stats.connections += 1
            return await self.completion(writer, path, headers, raw, close)
        else:
            await self.send_json(writer, 404, {"error": {
                "message": "no route %s %s" % (method, path),
                "type": "not_found"}}, close)
        return not close

    async def send_json(self, writer, status, obj, close=False,
                        extra=None, ctype_pad=0):
        body = json.dumps(obj).encode()
        head = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status")),
                "Content-Type: application/json" +
                ("; pad=" + "a" * ctype_pad if ctype_pad > 0 else ""),
                "Content-Length: %d" % len(body)]
        if close:
            head.append("Connection: close")
        for k, v in (extra or {}).items():
            head.append("%s: %s" % (k, v))
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    # -- completions -----------------------------------------------------
    async def completion(self, writer, path, headers, raw, close):
        t0 = time.monotonic()
        st = self.stats
        st.requests += 1
        st.arrivals.append(round(t0 - st.started, 6))
        if len(st.arrivals) > ARRIVALS_KEPT:
            del st.arrivals[0]
        st.paths[path] = st.paths.get(path, 0) + 1
        auth = headers.get("authorization", "")
        st.authorization[auth] = st.authorization.get(auth, 0) + 1
        st.inflight += 1
        st.max_inflight_seen = max(st.max_inflight_seen, st.inflight)
        status = 200
        try:
            status = await self.completion_inner(writer, path, raw, close,
                                                 t0)
        finally:
            st.inflight -= 1
            st.statuses[status] = st.statuses.get(status, 0) + 1
        return not close and status >= 0

    async def fail(self, writer, status, message, close, s=None):
        extra = {}
        if status == 429:
            extra["Retry-After"] = str(s["retry_after"] if s else 0)
        await self.send_json(writer, status, {"error": {
            "message": message, "type": "mock_error", "code": status}},
            close, extra,
            ctype_pad=2048 if s and s["long_error_header"] else 0)
        return status

    async def completion_inner(self, writer, path, raw, close, t0):
        try:
            body = json.loads(raw.decode() or "null")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            s = self.settings_for(body)
        except (ValueError, UnicodeDecodeError) as e:
            return await self.fail(writer, 400, str(e), close)
        chat = path.endswith("/chat/completions")
        if "model" not in body:
            return await self.fail(writer, 400, "model is required", close)
        if chat and not isinstance(body.get("messages"), list):
            return await self.fail(writer, 400, "messages must be a list",
                                   close)
        if not chat and "prompt" not in body:
            return await self.fail(writer, 400, "prompt is required", close)
        if s["delay_ms"] > 0:
            await asyncio.sleep(self.delay(s, s["delay_ms"]))
        if s["max_inflight"] > 0 and self.stats.inflight > s["max_inflight"]:
            return await self.fail(writer, 429, "too many requests in "
                                   "flight", close, s)
        if s["fail_times"] > 0:
            k = s["fail_key"]
            n = self.stats.fail_counts.get(k, 0)
            if n < s["fail_times"]:
                self.stats.fail_counts[k] = n + 1
                return await self.fail(writer, s["fail_status"],
                                       "failing on purpose (%d of %d)" %
                                       (n + 1, s["fail_times"]), close, s)
        if s["rate_limit_rate"] > 0 and \
                self.rng.random() < s["rate_limit_rate"]:
            return await self.fail(writer, 429, "rate limited", close, s)
        if s["error_rate"] > 0 and self.rng.random() < s["error_rate"]:
            return await self.fail(writer, s["error_status"],
                                   "mock server error", close, s)

        ntok = s["tokens"]
        over = body.get("mock") if isinstance(body.get("mock"), dict) else {}
        if "tokens" not in over:
            for k in ("max_tokens", "max_completion_tokens"):
                if isinstance(body.get(k), int) and body[k] > 0:
                    ntok = body[k]
                    break
        prompt_tokens = count_prompt_tokens(body, chat)
        if self.log is not None:
            self.log_request(body, chat, prompt_tokens)
        self.seq += 1
        rid = "cmpl-mock-%d" % self.seq
        model = body.get("model")
        if body.get("stream") is True:
            opts = body.get("stream_options")
            want_usage = isinstance(opts, dict) and \
                opts.get("include_usage") is True
            return await self.stream(writer, s, chat, rid, model, ntok,
                                     prompt_tokens,
                                     want_usage and s["usage"], close, t0)
        # Non-streaming: the whole answer after TTFT and the n-1 gaps.
        total = self.delay(s, s["ttft_ms"]) + \
            sum(self.gap(s, i) for i in range(max(ntok - 1, 0)))
        await sleep_until(t0 + total)
        text = "".join(token_text(i) for i in range(ntok))
        if chat:
            choice = {"index": 0, "finish_reason": "length",
                      "message": {"role": "assistant", "content": text}}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "finish_reason": "length", "text": text}
            obj = "text_completion"
        out = {"id": rid, "object": obj, "created": int(time.time()),
               "model": model, "choices": [choice]}
        if s["usage"]:
            out["usage"] = {"prompt_tokens": prompt_tokens,
                            "completion_tokens": ntok,
                            "total_tokens": prompt_tokens + ntok}
        await self.send_json(writer, 200, out, close)
        self.stats.bodies.append(round((time.monotonic() - t0) * 1000.0, 3))
        if len(self.stats.bodies) > ARRIVALS_KEPT:
            del self.stats.bodies[0]
        return 200

    def log_request(self, body, chat, prompt_tokens):
        """One line per request of --log-requests: what it asked for."""
        if chat:
            msgs = body.get("messages") or []
            last = msgs[-1] if msgs and isinstance(msgs[-1], dict) else {}
            text = last.get("content")
        else:
            text = body.get("prompt")
        self.log.write(json.dumps({
            "api": "chat" if chat else "completions", "prompt": text,
            "messages": len(body.get("messages") or []) if chat else 0,
            "max_tokens": body.get("max_tokens"),
            "ignore_eos": body.get("ignore_eos"),
            "prompt_tokens": prompt_tokens}) + "\n")
        self.log.flush()

    async def stream(self, writer, s, chat, rid, model, ntok, prompt_tokens,
                     usage, close, t0):
        head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream",
                "Cache-Control: no-cache", "Transfer-Encoding: chunked"]
        if close:
            head.append("Connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(delta_text, finish=None, role=False):
            if chat:
                delta = {}
                if role:
                    delta["role"] = "assistant"
                if delta_text is not None:
                    delta["content"] = delta_text
                c = {"index": 0, "delta": delta, "finish_reason": finish}
            else:
                c = {"index": 0, "text": delta_text or "",
                     "finish_reason": finish}
            return {"id": rid, "object": obj, "created": created,
                    "model": model, "choices": [c]}

        async def send(event):
            data = event if isinstance(event, bytes) else \
                ("data: " + json.dumps(event, separators=(",", ":")) +
                 "\n\n").encode()
            frag = s["fragment"]
            pieces = [data] if frag <= 0 else \
                [data[i:i + frag] for i in range(0, len(data), frag)]
            for p in pieces:
                # With TCP_NODELAY each write is its own segment; yielding
                # between them lets the client read them apart.
                writer.write(b"%x\r\n" % len(p) + p + b"\r\n")
                await writer.drain()
                if frag > 0:
                    await asyncio.sleep(0)

        if chat:
            await send(chunk("", role=True))
        due = t0 + self.delay(s, s["ttft_ms"])
        sent = []  # when each content chunk was written, for --log-sends
        for i in range(ntok):
            if i == s["stall_after"]:
                await asyncio.sleep(s["stall_ms"] / 1000.0)
            if i == s["break_after"]:
                writer.transport.abort()
                return -1
            if i == s["garbage_after"]:
                await send(b"data: {this is not json\n\n")
            await sleep_until(due)
            await send(chunk(token_text(i)))
            sent.append(time.monotonic())
            due += self.gap(s, i)
        if self.sends is not None:
            self.sends.write(json.dumps({"sent_s": sent}) + "\n")
            self.sends.flush()
        if sent:
            st = self.stats
            st.streams.append((
                round((sent[0] - t0) * 1000.0, 3),
                round((sent[-1] - sent[0]) * 1000.0 / (len(sent) - 1), 3)
                if len(sent) > 1 else None))
            if len(st.streams) > ARRIVALS_KEPT:
                del st.streams[0]
        if ntok == s["stall_after"]:
            await asyncio.sleep(s["stall_ms"] / 1000.0)
        if ntok == s["break_after"]:
            writer.transport.abort()
            return -1
        await send(chunk("" if chat else "", finish="length"))
        if usage:
            await send({"id": rid, "object": obj, "created": created,
                        "model": model, "choices": [],
                        "usage": {"prompt_tokens": prompt_tokens,
                                  "completion_tokens": ntok,
                                  "total_tokens": prompt_tokens + ntok}})
        if s["done"]:
            await send(b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return 200


REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized",
           404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}


def token_text(i):
    return "tok%d " % i


def count_prompt_tokens(body, chat):
    """Words of the prompt: a stand-in for a tokenizer."""
    if chat:
        words = 0
        for m in body.get("messages") or []:
            c = m.get("content") if isinstance(m, dict) else None
            if isinstance(c, str):
                words += len(c.split())
        return words
    p = body.get("prompt")
    if isinstance(p, str):
        return len(p.split())
    if isinstance(p, list):
        return sum(len(x.split()) if isinstance(x, str) else 1 for x in p)
    return 0


async def sleep_until(t):
    d = t - time.monotonic()
    if d > 0:
        await asyncio.sleep(d)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="mock-llm",
        description="An OpenAI-compatible mock LLM server on 127.0.0.1 "
                    "for tests, demos and benchmarks. Each setting can be "
                    "overridden per request with a \"mock\" object in the "
                    "request body (snake_case names).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8000,
                   help="TCP port (0 = any free one; printed on stdout)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the random faults and jitter")
    p.add_argument("--log-requests", metavar="FILE",
                   help="append one JSON line per completion request: "
                        "its prompt (a chat's last message), max_tokens, "
                        "ignore_eos and prompt tokens (words)")
    p.add_argument("--log-sends", metavar="FILE",
                   help="append one JSON line per streamed response that "
                        "sent all its tokens: {\"sent_s\": [...]}, when "
                        "each content chunk was written (monotonic "
                        "seconds), the gaps a client should measure")
    p.add_argument("--quiet", action="store_true",
                   help="print nothing but the listening line")
    p.add_argument("--read-delay-ms", type=float, default=0.0,
                   help="wait this long after a request's headers before "
                        "reading its body (a client's send of a large body "
                        "then fills the socket's buffers and waits)")
    p.add_argument("--keep-alive-ms", type=float, default=0.0,
                   help="close a connection idle this long after a "
                        "response (0 = never)")
    p.add_argument("--max-body-bytes", type=int, default=0,
                   help="answer 413 to a request whose body is larger, as "
                        "soon as its headers are in, and close the "
                        "connection 200 ms later without reading the body "
                        "(0 = no limit)")
    for name, (typ, default, help_text) in SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        if typ is bool:
            p.add_argument(flag, dest=name, action="store_true",
                           default=default, help=help_text)
            p.add_argument("--no-" + name.replace("_", "-"), dest=name,
                           action="store_false")
        else:
            p.add_argument(flag, dest=name, type=typ, default=default,
                           help="%s (default %s)" % (help_text, default))
    return p.parse_args(argv)


async def main_async(args):
    mock = Mock(args)
    server = await asyncio.start_server(mock.handle, args.host, args.port,
                                        backlog=4096, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    print("mock-llm listening on %s:%d" % (args.host, port), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv):
    args = parse_args(argv)
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
