# One image for every llmb binary: llmb-worker, llmb-coordinator,
# llmb-push and llmb. Built with CMake on Debian bookworm, run as a
# non-root user on bookworm-slim with only the runtime libraries.
#
#   docker build -t llmb:0.1 .
#   docker run --rm llmb:0.1 llmb-worker --help
#
# BASE names the Debian bookworm image of both stages; the image test
# (tests/e2e/image_build.sh) builds one from Debian's archive with
# debootstrap and passes it here, as Docker Hub is not always reachable.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake gcc make pkg-config libc6-dev \
      libhiredis-dev libev-dev libjansson-dev libcurl4-openssl-dev \
      libjs-chart.js libmicrohttpd-dev nettle-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DLLMB_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build --prefix /opt/llmb \
 && install -m 0755 examples/bench-task.sh /opt/llmb/bin/llmb-example-bench-task

FROM ${BASE}
# The runtime libraries the binaries link (ldd: hiredis, libev, jansson,
# nettle), and libmicrohttpd and libcurl, which the binaries load at run
# time when they serve or speak HTTP: libmicrohttpd for the coordinator's
# /metrics and `llmb web`, libcurl for llmb-worker's llm executor and
# `llmb health --coordinator`, the compose and k8s probes. The llmb user
# gets a real home: exec handlers inherit HOME, and tools such as pip, git
# or an SDK's cache write under it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libhiredis0.14 libev4 libjansson4 libnettle8 libmicrohttpd12 libcurl4 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home \
      --home-dir /home/llmb --shell /usr/sbin/nologin llmb
COPY --from=build /opt/llmb/ /usr/local/
USER llmb
WORKDIR /home/llmb
ENV HOME=/home/llmb \
    LLMB_REDIS_URL=redis://redis:6379
# The coordinator's /metrics and /healthz (with LLMB_METRICS_ADDR=0.0.0.0:9464).
EXPOSE 9464
# Redis reachable and running the llmb library: right for every binary.
# compose.yaml and deploy/k8s probe the coordinator and the workers more
# closely (llmb health --coordinator URL, --worker ID; docs/cli.md).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["llmb", "health", "--timeout-ms", "3000"]
CMD ["llmb-worker"]
