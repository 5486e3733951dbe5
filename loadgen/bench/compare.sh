#!/usr/bin/env bash
# Benchmark: loadgen quick mode vs wrk and oha against a static 200
# (nginx-light, one worker, `return 200 "ok";`) on loopback, same run,
# interleaved rounds (wrk, oha, loadgen, wrk, oha, loadgen, ...). Prints each
# run with its CPU time (user+sys from /usr/bin/time), then a table of medians
# and the ratios loadgen/wrk and loadgen/oha.
#
# loadgen runs with full per-endpoint statistics (it has no way to turn them
# off): two HDR histograms per endpoint and for the aggregate, status codes,
# per-second history; its request count is read from its own --json report.
#
# Usage: loadgen/bench/compare.sh [ROUNDS] [DURATION] [CONNECTIONS]
#        (defaults 3, 10s, 32)
# Env:   LOADGEN_ARGS     extra loadgen flags
#        LOADGEN_THREADS  e.g. "2": extra loadgen columns with that many tokio
#                         worker threads (TOKIO_WORKER_THREADS, for loadgen
#                         only), beside loadgen with its default (one thread
#                         fewer than cores for a loopback target)
#        LOADGEN_BASELINE PATH of another loadgen binary (e.g. an older
#                         release): an extra "baseline" column, interleaved
#                         with the others, for before/after comparisons
# Needs: wrk, nginx (nginx-light), python3; optional: oha (cargo install oha).
# Not a test: run it by hand on an otherwise idle machine, under
# `flock /tmp/bench.lock` when the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNS=${3:-32}
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null || true

for tool in wrk nginx python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk nginx-light python3)" >&2; exit 1; }
done
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
[ -x "$OHA" ] || { echo "oha not found (cargo install oha --locked): oha column skipped" >&2; OHA=""; }

cargo build --release -p loadgen >/dev/null 2>&1 || cargo build --release -p loadgen
LOADGEN=target/release/loadgen

TMP=$(mktemp -d)
NGINX_PID=""
cleanup() {
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# A free loopback port, chosen by the kernel.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/logs"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $TMP/nginx.pid;
error_log $TMP/logs/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP; uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$PORT;
    location / { return 200 "ok"; }
  }
}
CONF
nginx -p "$TMP" -c "$TMP/nginx.conf" & NGINX_PID=$!

for _ in $(seq 1 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done
URL="http://127.0.0.1:$PORT/"

# Each runner prints "RPS CPU_SECONDS".
cpu() { awk '{printf "%.2f", $1 + $2}' "$TMP/time"; }
run_wrk() {
  local out; out=$(/usr/bin/time -o "$TMP/time" -f "%U %S" wrk -t1 -c"$CONNS" -d"$DURATION" "$URL")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(cpu)"
}
run_oha() {
  local out; out=$(/usr/bin/time -o "$TMP/time" -f "%U %S" "$OHA" -c "$CONNS" -z "$DURATION" --no-tui "$URL")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(cpu)"
}
run_loadgen() { # [worker threads]
  local env=(RUST_LOG=warn)
  [ -n "${1:-}" ] && env+=(TOKIO_WORKER_THREADS="$1")
  # shellcheck disable=SC2086
  env "${env[@]}" /usr/bin/time -o "$TMP/time" -f "%U %S" "$LOADGEN" "$URL" -u "$CONNS" -t "$DURATION" \
    --headless --json "$TMP/lg.json" ${LOADGEN_ARGS:-} >/dev/null 2>"$TMP/lg.err" || true
  local rps; rps=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
agg = r["stats"][-1]
print("%.2f" % agg["total_rps"] if agg["num_failures"] == 0 else "FAILED:%d" % agg["num_failures"])
' "$TMP/lg.json")
  echo "$rps $(cpu)"
}
run_baseline() { local LOADGEN=$LOADGEN_BASELINE; run_loadgen; }

TOOLS=(wrk)
[ -n "$OHA" ] && TOOLS+=(oha)
TOOLS+=(loadgen)
for n in ${LOADGEN_THREADS:-}; do TOOLS+=("loadgen-${n}t"); done
[ -n "${LOADGEN_BASELINE:-}" ] && TOOLS+=(baseline)
declare -A RPS CPU

echo "target: nginx-light, 1 worker, return 200 \"ok\" on $URL; $(nproc) CPUs"
echo "wrk -t1 -c$CONNS -d$DURATION | oha -c $CONNS -z $DURATION --no-tui | loadgen URL -u $CONNS -t $DURATION --headless ${LOADGEN_ARGS:-}"
wrk -t1 -c"$CONNS" -d2s "$URL" >/dev/null # warm-up
for r in $(seq 1 "$ROUNDS"); do
  for t in "${TOOLS[@]}"; do
    case $t in
      loadgen-*t) n=${t#loadgen-}; read -r rps cpu_s < <(run_loadgen "${n%t}") ;;
      *) read -r rps cpu_s < <("run_$t") ;;
    esac
    RPS[$t]+="$rps "
    CPU[$t]+="$cpu_s "
    printf "round %d  %-8s %12s req/s   CPU %6ss\n" "$r" "$t" "$rps" "$cpu_s"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "medians of $ROUNDS rounds (CPU = user+sys seconds of the tool's process over the run)"
printf "%-12s %14s %8s %10s %10s\n" tool "req/s" "CPU s" "x wrk" "x oha"
W=$(median <<<"${RPS[wrk]}")
O=$([ -n "$OHA" ] && median <<<"${RPS[oha]}" || echo 0)
for t in "${TOOLS[@]}"; do
  m=$(median <<<"${RPS[$t]}")
  c=$(median <<<"${CPU[$t]}")
  printf "%-12s %14s %8s %10s %10s\n" "$t" "$m" "$c" "$(ratio "$m" "$W")" "$(ratio "$m" "$O")"
done
