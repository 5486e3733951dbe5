#!/usr/bin/env bash
# Memory per client connection: the balancer vs nginx (issue 10, item 14).
# Both proxy one static-200 nginx-light backend on loopback, on one worker.
# For each N (default 5000 10000) and each proxy: RSS at rest, RSS with N
# keep-alive client connections open that have each sent two GETs (read
# whole), the cost per connection, and RSS again 3 s after all of them closed.
# Memory, not throughput: wrk is not used, and one client process (python3
# asyncio) opens the connections in batches of 500 so neither listen queue
# overflows.
#
# Usage: balancer/bench/conn_rss.sh [N...]          (default: 5000 10000)
# Env:   BALANCER=PATH uses that binary instead of building the release one.
# Needs: nginx (apt-get install -y nginx-light), python3, `ulimit -n` of
#        at least 2N+100 (raised here if the hard limit allows).
# Not a test: run it by hand on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(5000 10000)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
BACKEND_PORT=18110
NGINX_PORT=18111
BAL_PORT=18112

for tool in nginx python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y nginx-light)" >&2; exit 1; }
done
if [ -z "${BALANCER:-}" ]; then
  cargo build --release -p balancer >/dev/null 2>&1 || cargo build --release -p balancer
  BALANCER=target/release/balancer
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

common="access_log off; client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP; uwsgi_temp_path $TMP; scgi_temp_path $TMP; keepalive_requests 1000000; keepalive_timeout 300s;"
cat >"$TMP/backend.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $TMP/backend.pid;
error_log $TMP/backend-error.log crit;
events { worker_connections 1024; }
http { $common server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 "ok\n"; } } }
CONF
cat >"$TMP/proxy.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $TMP/proxy.pid;
worker_rlimit_nofile 65536;
error_log $TMP/proxy-error.log crit;
events { worker_connections 30000; }
http {
  $common
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=511;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF

wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "port $1 did not open" >&2; return 1
}

nginx -p "$TMP" -c "$TMP/backend.conf" & PIDS+=($!)
wait_port $BACKEND_PORT || exit 1

# Fresh proxies for every N: memory a process keeps after its clients close
# (allocator free lists) must not count as the next N's starting point.
start_proxies() {
  nginx -p "$TMP" -c "$TMP/proxy.conf" & NGINX_PID=$!; PIDS+=($NGINX_PID)
  RUST_LOG=warn "$BALANCER" --listen 127.0.0.1:$BAL_PORT --upstream 127.0.0.1:$BACKEND_PORT \
    --workers 1 --keepalive-timeout 300s >/dev/null & BAL_PID=$!; PIDS+=($BAL_PID)
  wait_port $NGINX_PORT && wait_port $BAL_PORT || exit 1
}
stop_proxies() {
  kill "$NGINX_PID" "$BAL_PID" 2>/dev/null || true
  wait "$NGINX_PID" "$BAL_PID" 2>/dev/null || true
}

echo "RSS per keep-alive client connection (two GETs each, then held open); one worker each"
printf "%-9s %6s %12s %14s %12s %14s\n" proxy N "at rest" "with N open" "per conn" "after close"
for n in "${SIZES[@]}"; do
  start_proxies
  for contender in "nginx $NGINX_PORT $NGINX_PID" "balancer $BAL_PORT $BAL_PID"; do
    set -- $contender
    python3 - "$1" "$2" "$3" "$n" <<'PY'
import asyncio, sys, time
name, port, pid, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

async def get(r, w):
    w.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    head = await r.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await r.readexactly(length)

async def one():
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await get(r, w)
    await get(r, w)
    return w

async def main():
    rest = rss_kb()
    conns = []
    for start in range(0, n, 500):
        conns += await asyncio.gather(*(one() for _ in range(min(500, n - start))))
    # The balancer releases an idle connection's buffers after 2 s.
    await asyncio.sleep(4)
    held = rss_kb()
    for w in conns:
        w.close()
    await asyncio.sleep(3)
    after = rss_kb()
    per = (held - rest) * 1024 / n / 1000
    print(f"{name:<9} {n:>6} {rest/1000:>9.1f} MB {held/1000:>11.1f} MB {per:>9.2f} kB {after/1000:>11.1f} MB")

asyncio.run(main())
PY
  done
  stop_proxies
done
