# One image for every llmb binary: llmb-worker, llmb-coordinator,
# llmb-push and llmb. Built with CMake on Debian bookworm, run as a
# non-root user on bookworm-slim with only the runtime libraries.
#
#   docker build -t llmb .
#   docker run --rm llmb llmb-worker --help

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake gcc make pkg-config libc6-dev \
      libhiredis-dev libev-dev libjansson-dev uuid-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DLLMB_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build --prefix /opt/llmb \
 && install -m 0755 examples/bench-task.sh /opt/llmb/bin/llmb-example-bench-task

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libhiredis0.14 libev4 libjansson4 libuuid1 libcurl4 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin llmb
COPY --from=build /opt/llmb/ /usr/local/
USER llmb
ENV LLMB_REDIS_URL=redis://redis:6379
CMD ["llmb-worker"]
