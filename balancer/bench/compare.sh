#!/usr/bin/env bash
# Benchmark: the balancer vs nginx (and HAProxy, if installed) proxying one
# fast backend (nginx-light returning a static 200, one worker), with
# `wrk -t1 -c32 -d10s --latency` on loopback, each proxy on one worker.
# The proxies are measured interleaved (nginx, balancer, haproxy, then again)
# for ROUNDS rounds, and the medians and the balancer/peer ratios printed, so
# that machine noise hits every contender alike. Then RSS of the balancer with
# 1,000 idle client connections.
#
# Usage: balancer/bench/compare.sh [DURATION] [ROUNDS]   (default 10s 5)
# Env: LTO=1 also measures a build with fat LTO and one codegen unit
#      ("balancer-lto", built into target/bench: a separate target dir, the
#      workspace profile is untouched); LTO_BIN=PATH uses that binary instead
#      of building it.
# Needs: wrk, nginx (nginx-light), python3; optional: haproxy.
# Not a test: run it by hand on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${1:-10s}
ROUNDS=${2:-5}
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null || true
BACKEND_PORT=18100
NGINX_PORT=18101
BAL_PORT=18102
HAPROXY_PORT=18103
LTO_PORT=18104

for tool in wrk nginx python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk nginx-light)" >&2; exit 1; }
done

cargo build --release -p balancer >/dev/null 2>&1 || cargo build --release -p balancer
BALANCER=target/release/balancer
LTO_BAL=""
if [ "${LTO:-0}" = 1 ]; then
  LTO_BAL=${LTO_BIN:-}
  if [ -z "$LTO_BAL" ]; then
    CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
      cargo build --release -p balancer --target-dir target/bench
    LTO_BAL=target/bench/release/balancer
  fi
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/logs"


cat >"$TMP/backend.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $TMP/backend.pid;
error_log $TMP/logs/backend-error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP; uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$BACKEND_PORT;
    location / { return 200 "ok\n"; }
  }
}
CONF

cat >"$TMP/proxy.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $TMP/proxy.pid;
error_log $TMP/logs/proxy-error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP; uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  keepalive_requests 1000000;
  upstream backend {
    server 127.0.0.1:$BACKEND_PORT;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF

cat >"$TMP/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 2000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$BACKEND_PORT
CONF

wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "port $1 did not open" >&2; return 1
}

nginx -p "$TMP" -c "$TMP/backend.conf" & PIDS+=($!)
nginx -p "$TMP" -c "$TMP/proxy.conf" & PIDS+=($!)
RUST_LOG=warn "$BALANCER" --listen 127.0.0.1:$BAL_PORT --upstream 127.0.0.1:$BACKEND_PORT --workers 1 >/dev/null & BAL_PID=$!; PIDS+=($BAL_PID)
if [ -n "$LTO_BAL" ]; then
  RUST_LOG=warn "$LTO_BAL" --listen 127.0.0.1:$LTO_PORT --upstream 127.0.0.1:$BACKEND_PORT --workers 1 >/dev/null & PIDS+=($!)
fi
HAVE_HAPROXY=0
if command -v haproxy >/dev/null; then
  haproxy -f "$TMP/haproxy.cfg" -db >"$TMP/logs/haproxy.log" 2>&1 & PIDS+=($!)
  HAVE_HAPROXY=1
fi
wait_port $BACKEND_PORT && wait_port $NGINX_PORT && wait_port $BAL_PORT || exit 1
if [ -n "$LTO_BAL" ]; then wait_port $LTO_PORT || exit 1; fi
if [ $HAVE_HAPROXY = 1 ]; then wait_port $HAPROXY_PORT || { cat "$TMP/logs/haproxy.log"; HAVE_HAPROXY=0; }; fi

RESULTS="$TMP/results"
run() { # name port
  wrk -t1 -c32 -d2s "http://127.0.0.1:$2/" >/dev/null # warm-up
  local out; out=$(wrk -t1 -c32 -d"$DURATION" --latency "http://127.0.0.1:$2/")
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf "%-10s %12s req/s   p50 %8s   p99 %8s   %s\n" "$1" "$rps" "$p50" "$p99" "$errs"
  echo "$1 $rps $p99" >>"$RESULTS"
}

echo "wrk -t1 -c32 -d$DURATION --latency, static 200 backend (nginx, 1 worker), each proxy on 1 worker, $ROUNDS rounds"
run direct $BACKEND_PORT
: >"$RESULTS"
for r in $(seq 1 "$ROUNDS"); do
  echo "-- round $r"
  run nginx $NGINX_PORT
  run balancer $BAL_PORT
  if [ $HAVE_HAPROXY = 1 ]; then run haproxy $HAPROXY_PORT; fi
  if [ -n "$LTO_BAL" ]; then run balancer-lto $LTO_PORT; fi
done

# Medians (p99 normalised to ms) and ratios of the medians.
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, p99 = line.split()
    v = float(p99[:-2]) if p99.endswith("ms") else float(p99[:-2]) / 1000 if p99.endswith("us") else float(p99[:-1]) * 1000
    rows.setdefault(name, []).append((float(rps), v))
med = {n: (statistics.median(r for r, _ in v), statistics.median(p for _, p in v)) for n, v in rows.items()}
print("medians:")
for n, (rps, p99) in med.items():
    print(f"  {n:<10} {rps:>10.0f} req/s   p99 {p99:.2f} ms")
for ours in ("balancer", "balancer-lto"):
    for peer in ("nginx", "haproxy"):
        if ours in med and peer in med:
            b, q = med[ours], med[peer]
            print(f"  {ours}/{peer}: throughput {b[0] / q[0]:.2f}x, p99 {b[1] / q[1]:.2f}x")
PY

rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$1/status"; }
echo "balancer RSS after the runs: $(rss $BAL_PID)"
# 1,000 idle client connections (opened, nothing sent).
python3 - "$BAL_PORT" "$BAL_PID" <<'PY'
import resource, socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return line.split()[1] + " kB"
before = rss()
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
time.sleep(1.0)
print(f"balancer RSS: {before} before, {rss()} with {len(socks)} idle client connections")
for s in socks:
    s.close()
PY
