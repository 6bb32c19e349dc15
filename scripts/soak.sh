#!/usr/bin/env bash
# make soak: a bounded soak of `tiyn serve` on a fresh PostgreSQL database.
#
# `tiyn simulate --platform` plays payments at a steady rate for
# SOAK_DURATION; every SOAK_SAMPLE seconds the script samples the server's
# resident memory (VmRSS), its goroutines (go_goroutines on /metrics) and
# the callbacks served and their latency in that interval (p50/p99 from the
# tiyn_http_request_duration_seconds histogram). At the end it prints the
# table, the simulator's report and the ledger check, and compares the
# first sample with the last: growth beyond the bounds is reported plainly
# and fails the run (exit 1), as do balance mismatches or an unhealthy
# ledger.
#
# Settings (environment):
#   SOAK_DURATION              load time, a Go duration (default 5m)
#   SOAK_RATE                  payments per second (default 100)
#   SOAK_CONCURRENCY           simulator workers (default 8)
#   SOAK_SAMPLE                seconds between samples (default 10)
#   SOAK_RSS_GROWTH_MAX_PCT    allowed RSS growth, first to last sample (default 50)
#   SOAK_GOROUTINE_GROWTH_MAX  allowed goroutine growth (default 50)
#   TIYN_TEST_POSTGRES_URL     admin URL of the PostgreSQL to create the database on
#                              (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
#   BIN                        the tiyn binary (default ./bin/tiyn; make soak builds it)
# Loopback only; bounded in time (the load, plus at most 5 minutes of retries).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-./bin/tiyn}
DURATION=${SOAK_DURATION:-5m}
RATE=${SOAK_RATE:-100}
CONCURRENCY=${SOAK_CONCURRENCY:-8}
SAMPLE=${SOAK_SAMPLE:-10}
RSS_MAX_PCT=${SOAK_RSS_GROWTH_MAX_PCT:-50}
GOROUTINE_MAX=${SOAK_GOROUTINE_GROWTH_MAX:-50}
ADMIN_URL=${TIYN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
# Bounds of the waits below.
READY_TRIES=300       # × 0.1 s for the server to be ready
DRAIN_SECONDS=300     # the simulator may retry this long after the load

die() { echo "soak: $*" >&2; exit 2; }
[ -x "$BIN" ] || die "$BIN not found: run make build (or make soak)"
command -v psql >/dev/null || die "psql not found: it creates and drops the soak database"
command -v curl >/dev/null || die "curl not found"

# seconds parses a Go duration made of h, m and s parts (5m, 90s, 1h30m).
seconds() {
  local d=$1 total=0 n unit
  [[ $d =~ ^([0-9]+[hms])+$ ]] || die "SOAK_DURATION=$d: use a Go duration such as 5m, 90s or 1h30m"
  while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
  done
  echo "$total"
}
load_seconds=$(seconds "$DURATION")
[ "$load_seconds" -gt 0 ] || die "SOAK_DURATION must be positive"

dir=$(mktemp -d)
db="tiyn_soak_$(date +%s)_$$"
db_url=$(printf '%s' "$ADMIN_URL" | sed -E "s#^(postgres(ql)?://[^/?]+)(/[^?]*)?#\1/$db#")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18282)
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
pid="" sim=""

cleanup() {
  [ -n "$sim" ] && kill "$sim" 2>/dev/null || true
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

psql -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null || die "cannot create database on $ADMIN_URL"

export TIYN_LISTEN=127.0.0.1:$port TIYN_DATABASE_URL=$db_url TIYN_LOG_LEVEL=warn TIYN_LOG_FORMAT=json
export TIYN_API_TOKENS=soak:write:$token TIYN_MONETIX_PROJECTS=1234=$secret
"$BIN" serve >"$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 "$READY_TRIES"); do
  curl -fsS "http://$TIYN_LISTEN/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/serve.log"; die "tiyn serve exited"; }
  sleep 0.1
done
curl -fsS "http://$TIYN_LISTEN/readyz" >/dev/null || die "tiyn serve not ready"

echo "soak: tiyn serve (pid $pid) on http://$TIYN_LISTEN, PostgreSQL database $db"
echo "soak: $DURATION at $RATE payments/s, $CONCURRENCY workers, a sample every ${SAMPLE}s"
"$BIN" simulate --platform --no-progress --duration "$DURATION" --rate "$RATE" --concurrency "$CONCURRENCY" \
  --customers 100 >"$dir/sim.txt" 2>&1 &
sim=$!

# sample prints one table row and keeps the histogram for the next one.
prev="$dir/buckets.prev"
: >"$prev"
sample() {
  local t=$1 phase=$2 rss goroutines metrics cur="$dir/buckets.cur"
  rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || echo "?")
  metrics=$(curl -fsS --max-time 5 "http://$TIYN_LISTEN/metrics" 2>/dev/null || true)
  goroutines=$(printf '%s\n' "$metrics" | awk '$1 == "go_goroutines" {print $2}')
  printf '%s\n' "$metrics" | awk '/^tiyn_http_request_duration_seconds_bucket\{/ && /route="\/v1\/monetix\/callbacks"/ && /method="POST"/ {
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); print le, $NF }' >"$cur"
  # Quantiles of the interval: bucket deltas, linear within a bucket.
  awk -v t="$t" -v rss="$rss" -v g="${goroutines:-?}" -v sample="$SAMPLE" '
    FNR == NR { prev[$1] = $2; next }
    { le[n] = $1; d[n] = $2 - (($1 in prev) ? prev[$1] : 0); n++ }
    function q(p,   i, target, lo, hi, below) {
      total = d[n - 1]; if (total <= 0) return "-"
      target = p * total; below = 0; lo = 0
      for (i = 0; i < n; i++) {
        if (d[i] >= target) {
          if (le[i] == "+Inf") return ">" lo * 1000
          hi = le[i] + 0; inb = d[i] - below
          return sprintf("%.2f", (lo + (hi - lo) * (inb > 0 ? (target - below) / inb : 1)) * 1000)
        }
        below = d[i]; lo = le[i] + 0
      }
      return "-"
    }
    END { total = (n > 0) ? d[n - 1] : 0
          printf "  %6s  %8s  %10s  %11.1f  %8s  %8s\n", t, rss, g, total / sample, q(0.50), q(0.99) }
  ' "$prev" "$cur" | tee "$dir/row.txt"
  mv "$cur" "$prev"
  echo "$rss ${goroutines:-0} $(awk '{print $4}' "$dir/row.txt") $phase" >>"$dir/samples.txt"
}

printf '  %6s  %8s  %10s  %11s  %8s  %8s\n' "t (s)" "RSS MiB" "goroutines" "callbacks/s" "p50 ms" "p99 ms"
start=$(date +%s)
next=$((start + SAMPLE))
while kill -0 "$sim" 2>/dev/null; do
  now=$(date +%s)
  if [ "$now" -ge "$next" ]; then
    sample $((now - start)) load
    next=$((next + SAMPLE))
  fi
  [ $((now - start)) -le $((load_seconds + DRAIN_SECONDS)) ] || { kill "$sim"; die "simulate still running ${DRAIN_SECONDS}s after the load"; }
  sleep 1
done
set +e
wait "$sim"
sim_rc=$?
sim=""
set -e
sample $(($(date +%s) - start)) after

echo
cat "$dir/sim.txt"
check=$(curl -fsS -H "Authorization: Bearer $token" "http://$TIYN_LISTEN/v1/ledger/check" || echo '{}')
echo "  ledger check  $check"

# Compare the first sample under load (after the accounts are opened) with
# the last one under load: memory held after the load is not growth.
read -r rss0 g0 < <(awk '$4 == "load" && $3 > 0 {print $1, $2; exit}' "$dir/samples.txt")
read -r rss1 g1 < <(awk '$4 == "load" && $3 > 0 {last = $1 " " $2} END {print last}' "$dir/samples.txt")
if [ -z "${rss0:-}" ] || [ -z "${rss1:-}" ]; then
  read -r rss0 g0 < <(head -1 "$dir/samples.txt")
  read -r rss1 g1 < <(tail -1 "$dir/samples.txt")
fi
verdict=0
growth=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN { if (a > 0) printf "%.1f", (b - a) / a * 100; else print "?" }')
echo
echo "  RSS          ${rss0} MiB at the first sample under load, ${rss1} MiB at the last: ${growth}% (bound ${RSS_MAX_PCT}%)"
echo "  goroutines   ${g0} at the first sample under load, ${g1} at the last: $((g1 - g0)) (bound ${GOROUTINE_MAX})"
if awk -v g="$growth" -v m="$RSS_MAX_PCT" 'BEGIN { exit !(g == "?" || g > m) }'; then
  echo "  RSS GREW BEYOND THE BOUND: ${growth}% > ${RSS_MAX_PCT}% over $DURATION — look for a leak (pprof: TIYN_PPROF_LISTEN=127.0.0.1:6060)"
  verdict=1
fi
if [ $((g1 - g0)) -gt "$GOROUTINE_MAX" ]; then
  echo "  GOROUTINES GREW BEYOND THE BOUND: +$((g1 - g0)) > ${GOROUTINE_MAX} over $DURATION — a goroutine leak"
  verdict=1
fi
if [ "$sim_rc" -ne 0 ]; then
  echo "  SIMULATION FAILED (exit $sim_rc): see the mismatches and errors above"
  verdict=1
fi
if ! printf '%s' "$check" | grep -q '"healthy":true'; then
  echo "  LEDGER CHECK NOT HEALTHY"
  verdict=1
fi
if grep -qi panic "$dir/serve.log"; then
  echo "  THE SERVER LOG MENTIONS A PANIC:"
  grep -i panic "$dir/serve.log" | head -5
  verdict=1
fi
[ "$verdict" -eq 0 ] && echo "  soak passed: no growth beyond the bounds, balances as expected, ledger healthy"
exit "$verdict"
