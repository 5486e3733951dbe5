#!/usr/bin/env bash
# Benchmarks the market-api release binary the way docs/market-api.md reports
# it: a fresh, seeded database in a temporary folder (default demo data: 120
# products), a token for demo@example.com, then `wrk -t1 -c32` on the product
# retrieve and list routes, the idle RSS, a login storm and the RSS after it.
#
# Usage: market-api/bench/bench.sh [BIN...]
#   BIN: market-api binaries to compare (default: target/release/market-api).
#   With several, the rounds interleave them (A, B, A, B, ...) so that noise
#   from other work on the machine hits every binary alike.
# Env: ROUNDS (3), DURATION (10s), CONNS (32), PORT (18090), LOGIN (1 = run the
#      login storm, 0 = skip), LOGIN_DURATION (5s),
#      DATABASE_URL (postgres://USER:PASS@HOST:PORT/DB: run on PostgreSQL; the
#      database's public schema is dropped and made anew before each start,
#      with psql, so give it a database of its own).
# Columns: req/s of each route, and the CPU each retrieve cost: the API
# process's (µs of user+sys per request, from /proc/PID/stat) and, on
# PostgreSQL, that of every `postgres` process of the machine.
# Wrap it in `flock /tmp/bench.lock` when the machine is shared.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
PORT=${PORT:-18090}
LOGIN=${LOGIN:-1}
LOGIN_DURATION=${LOGIN_DURATION:-5s}
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$root/target/release/market-api")
for b in "${bins[@]}"; do
    [ -x "$b" ] || { echo "not an executable: $b (cargo build --release -p market-api)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

work=$(mktemp -d /tmp/market-api-bench.XXXXXX)
server=""
stop_server() {
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT INT TERM

base="http://127.0.0.1:$PORT"
rss() { awk -v k="$2:" '$1 == k { print $2 / 1024 " MB" }' "/proc/$1/status"; }

DATABASE_URL=${DATABASE_URL:-}
start_server() { # BIN
    rm -f "$work"/m.db*
    local url="sqlite://$work/m.db"
    if [ -n "$DATABASE_URL" ]; then
        url=$DATABASE_URL
        psql -q "$url" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null
    fi
    "$1" serve --bind "127.0.0.1:$PORT" --database-url "$url" \
        >"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 300); do
        curl -fs "$base/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1
}

token() {
    curl -fs -X POST -H 'Content-Type: application/json' \
        -d '{"email":"demo@example.com","password":"Passw0rd!"}' \
        "$base/api/v1/auth/token/" | sed -E 's/.*"access":"([^"]+)".*/\1/'
}

ticks() { # PID... -> user+sys clock ticks, summed
    for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0; done |
        awk '{ t += $1 } END { print t + 0 }'
}
per_request() { # TICKS REQ/S -> µs per request over DURATION
    awk -v t="$1" -v r="$2" -v d="${DURATION%s}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (r > 0) printf "%.1f", t / hz * 1e6 / (r * d); else print "-" }'
}

reqs() { # wrk output -> req/s
    awk '/^Requests\/sec:/ { printf "%.0f", $2 }'
}

cat >"$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"demo@example.com","password":"Passw0rd!"}'
LUA

printf '%-5s %-28s %10s %9s %9s %10s %9s %9s %10s %10s\n' \
    round binary "retrieve" "api_us/r" "db_us/r" "list" idle_rss "logins/s" rss_after hwm
for round in $(seq "$ROUNDS"); do
    for bin in "${bins[@]}"; do
        start_server "$bin"
        tok=$(token)
        sleep 1
        idle=$(rss "$server" VmRSS)
        auth="Authorization: Bearer $tok"
        # Warm-up, so both routes run with prepared statements and pages cached.
        wrk -t1 -c"$CONNS" -d2s -H "$auth" "$base/api/v1/products/" >/dev/null
        db_pids=()
        [ -n "$DATABASE_URL" ] && mapfile -t db_pids < <(pgrep -x postgres || true)
        api0=$(ticks "$server") db0=$(ticks "${db_pids[@]}")
        one=$(wrk -t1 -c"$CONNS" -d"$DURATION" -H "$auth" "$base/api/v1/products/1/" | reqs)
        api_us=$(per_request $(($(ticks "$server") - api0)) "$one")
        db_us=-
        [ -n "$DATABASE_URL" ] && db_us=$(per_request $(($(ticks "${db_pids[@]}") - db0)) "$one")
        list=$(wrk -t1 -c"$CONNS" -d"$DURATION" -H "$auth" "$base/api/v1/products/" | reqs)
        logins=- after=- hwm=-
        if [ "$LOGIN" = 1 ]; then
            logins=$(wrk -t1 -c"$CONNS" -d"$LOGIN_DURATION" -s "$work/login.lua" \
                "$base/api/v1/auth/token/" | reqs)
            sleep 3 # let the queued hashes finish and the threads settle
            after=$(rss "$server" VmRSS)
            hwm=$(rss "$server" VmHWM)
        fi
        printf '%-5s %-28s %10s %9s %9s %10s %9s %9s %10s %10s\n' \
            "$round" "$(basename "$(dirname "$bin")")/$(basename "$bin")" \
            "$one" "$api_us" "$db_us" "$list" "$idle" "$logins" "$after" "$hwm"
        stop_server
    done
done
