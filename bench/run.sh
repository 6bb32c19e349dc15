#!/usr/bin/env bash
# make bench: Tiyn against the database's own limit (a pgbench baseline doing
# one credit's SQL per transaction) and against itself with group commit off,
# on PostgreSQL and SQLite, at several concurrencies. Loopback only; every
# phase is bounded in time. Prints one table (bench/report) and writes it as
# JSON to bench/out/<stamp>/bench.json (and bench/out/latest.json).
#
# Settings (environment):
#   BENCH_PG_URL         admin URL of the PostgreSQL to use (a fresh database
#                        tiyn_bench_<stamp>_<cell> is created per cell and
#                        dropped at the end)
#                        default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
#   BENCH_DURATION       timed phase of every cell, seconds (default 8)
#   BENCH_CONCURRENCIES  default "1 16 64"
#   BENCH_ROWS           which rows to run, default
#                        "pg-pgdriver-gc pg-pgdriver-nogc pg-pgx-gc sqlite-gc sqlite-nogc"
#   BENCH_MODES          default "full callbacks"
#   BENCH_CUSTOMERS      accounts the load spreads over (default 200; the
#                        baseline uses as many)
#   BENCH_BASELINE       1 (default) runs the pgbench baseline; 0 skips it
#   BENCH_PPROF          1 serves /debug/pprof (on a loopback listener of its
#                        own, TIYN_PPROF_LISTEN) and saves a CPU profile of
#                        each timed phase (<row>-<mode>-c<c>.cpu.prof in the
#                        out dir; read it with go tool pprof bin/tiyn FILE)
#                        and one of the simulator (<...>.sim.cpu.prof)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-./bin/tiyn}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
DURATION=${BENCH_DURATION:-8}
CONCURRENCIES=${BENCH_CONCURRENCIES:-"1 16 64"}
ROWS=${BENCH_ROWS:-"pg-pgdriver-gc pg-pgdriver-nogc pg-pgx-gc sqlite-gc sqlite-nogc"}
MODES=${BENCH_MODES:-"full callbacks"}
CUSTOMERS=${BENCH_CUSTOMERS:-200}
BASELINE=${BENCH_BASELINE:-1}
PPROF=${BENCH_PPROF:-0}
# Bounds: a cell's simulate gets its duration plus this much for setup, the
# untimed deposit opening and the balance check; a server this long to start.
readonly SIM_GRACE=90 START_TIMEOUT_TENTHS=300 STOP_TIMEOUT_TENTHS=100
# Callbacks mode needs its deposits opened first: size them from the full
# mode's rate so the timed phase lasts about DURATION, within these bounds.
readonly MIN_PREPARED=500 MAX_PREPARED=200000
# Baseline deposits per concurrency: enough for this many tps (a client
# that runs out aborts, and the report counts it as an error).
readonly BASELINE_MAX_TPS=10000

for tool in "$BIN" psql pgbench curl jq; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 2; }
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 600 ]] || { echo "bench: BENCH_DURATION must be 1..600 seconds" >&2; exit 2; }

# psql and pgbench: no NOTICEs about databases that do not exist yet.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/out/$stamp
mkdir -p "$out"
clk=$(getconf CLK_TCK)
token=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
project=1234
tmp=$(mktemp -d)

# The PostgreSQL URL of database $1 on the server of PG_URL.
pg_db_url() { sed -E "s#^(postgres(ql)?://[^/?]+)(/[^?]*)?#\\1/$1#" <<<"$PG_URL"; }
psql_admin() { psql "$PG_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

servers=() dbs=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  for db in "${dbs[@]}"; do psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

new_db() { # new_db NAME: a fresh PostgreSQL database, dropped at exit
  psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  dbs+=("$1")
}
drop_db() { psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true; }

# cpu_ticks PID: utime+stime of the process, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# pg_ticks: CPU of every local PostgreSQL process (utime+stime), plus what
# the postmaster reaped from exited backends (cutime+cstime), in clock
# ticks; 0 when no postgres runs here (a remote BENCH_PG_URL).
pg_ticks() {
  local t=0 pid f
  for pid in $(pgrep -x postgres 2>/dev/null); do
    f=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) && t=$((t + f))
  done
  echo "$t"
}
# hwm_kib PID: peak resident set size (VmHWM), KiB.
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# batch_metrics: "name value" lines of the server's tiyn_group_commit_*
# counters (zeros when group commit is off).
batch_metrics() {
  local m; m=$(curl -fsS "$server_url/metrics" 2>/dev/null || true)
  for k in batches_total items_total restarts_total exec_seconds_total commit_seconds_total read_ahead_total; do
    awk -v k="tiyn_group_commit_$k" -v n="$k" '$1 == k { v = $2 } END { print n, v + 0 }' <<<"$m"
  done
}

# start_server LOG DBURL ENV... : starts tiyn serve, sets $server_pid and $server_url.
start_server() {
  local log=$1 db=$2; shift 2
  local port pport=""; port=$(free_port)
  # pprof has a loopback listener of its own (never the main one).
  [[ $PPROF == 1 ]] && pport=$(free_port)
  env TIYN_LISTEN=127.0.0.1:$port TIYN_DATABASE_URL="$db" TIYN_API_TOKENS="bench:write:$token" \
    TIYN_MONETIX_PROJECTS="$project=$secret" TIYN_LOG_LEVEL=warn TIYN_PPROF_LISTEN=${pport:+127.0.0.1:$pport} \
    "$@" "$BIN" serve >"$log" 2>&1 &
  server_pid=$!
  servers+=("$server_pid")
  server_url=http://127.0.0.1:$port
  pprof_url=${pport:+http://127.0.0.1:$pport}
  for ((i = 0; i < START_TIMEOUT_TENTHS; i++)); do
    curl -fsS "$server_url/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: tiyn serve did not become ready; its log:" >&2
  cat "$log" >&2
  exit 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT_TENTHS; i++)); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

# simulate NAME MODE C [PAYMENTS]: one timed simulate run against $server_url,
# with the server's CPU ticks and peak RSS around it, into $out/NAME.*.
simulate() {
  local name=$1 mode=$2 c=$3 payments=${4:-0}
  local args=(--url "$server_url" --duration "${DURATION}s" --concurrency "$c" --customers "$CUSTOMERS"
    --mode "$mode" --json --no-progress --seed "$RANDOM")
  [[ $payments -gt 0 ]] && args+=(--payments "$payments")
  local t0 m0 p0; t0=$(cpu_ticks "$server_pid") m0=$(batch_metrics) p0=$(pg_ticks)
  if [[ $PPROF == 1 ]]; then
    # Profile the middle of the timed phase (accounts open in the first
    # second or so).
    (sleep 2; curl -fsS -o "$out/$name.cpu.prof" "$pprof_url/debug/pprof/profile?seconds=$((DURATION > 4 ? DURATION - 3 : 1))" 2>/dev/null) &
  fi
  [[ $PPROF == 1 ]] && args+=(--cpuprofile "$out/$name.sim.cpu.prof")
  local rc=0 simcpu
  # The load generator shares the machine: its own CPU (user sys) too.
  simcpu=$( { TIMEFORMAT='%U %S'; time TIYN_SIMULATE_TOKEN=$token TIYN_SIMULATE_PROJECT=$project TIYN_SIMULATE_SECRET=$secret \
    timeout $((DURATION + SIM_GRACE)) "$BIN" simulate "${args[@]}" >"$out/$name.sim.json" 2>"$out/$name.sim.err" || rc=$?; } 2>&1 )
  local t1 m1 p1; t1=$(cpu_ticks "$server_pid") m1=$(batch_metrics) p1=$(pg_ticks)
  {
    echo "cpu_seconds=$(awk -v a="$t0" -v b="$t1" -v hz="$clk" 'BEGIN { printf "%.3f", (b - a) / hz }')"
    echo "pg_cpu_seconds=$(awk -v a="$p0" -v b="$p1" -v hz="$clk" 'BEGIN { printf "%.3f", (b - a) / hz }')"
    echo "sim_cpu_seconds=$(awk '{ printf "%.3f", $1 + $2 }' <<<"$simcpu")"
    echo "rss_hwm_kib=$(hwm_kib "$server_pid")"
    # Group commit during the phase: batches, items, exec and commit seconds.
    paste <(echo "$m0") <(echo "$m1") | awk '{ printf "gc_%s=%.6f\n", $1, $4 - $2 }'
    echo "exit_code=$rc"
  } >"$out/$name.meta"
  if ! jq -e .mode "$out/$name.sim.json" >/dev/null 2>&1; then
    echo "bench: simulate $name failed (exit $rc):" >&2
    cat "$out/$name.sim.err" >&2
  fi
}

# cell ROW C: a fresh server on a fresh database, then each mode.
cell() {
  local row=$1 c=$2 db env=()
  case $row in
    pg-pgdriver-gc) env=(TIYN_PG_DRIVER=pgdriver TIYN_GROUP_COMMIT=true) ;;
    pg-pgdriver-nogc) env=(TIYN_PG_DRIVER=pgdriver TIYN_GROUP_COMMIT=false) ;;
    pg-pgx-gc) env=(TIYN_PG_DRIVER=pgx TIYN_GROUP_COMMIT=true) ;;
    pg-pgx-nogc) env=(TIYN_PG_DRIVER=pgx TIYN_GROUP_COMMIT=false) ;;
    sqlite-gc) env=(TIYN_GROUP_COMMIT=true) ;;
    sqlite-nogc) env=(TIYN_GROUP_COMMIT=false) ;;
    *) echo "bench: unknown row $row" >&2; exit 2 ;;
  esac
  local dbname=
  if [[ $row == pg-* ]]; then
    dbname=tiyn_bench_${stamp,,}_${row//-/_}_c$c
    new_db "$dbname"
    db=$(pg_db_url "$dbname")
  else
    db=sqlite:$tmp/$row-c$c.db
  fi
  start_server "$out/$row-c$c.serve.log" "$db" "${env[@]}"
  local full_rate=0
  for mode in $MODES; do
    local name=$row-$mode-c$c
    printf 'bench: %-18s %-9s c=%-3s ' "$row" "$mode" "$c" >&2
    if [[ $mode == callbacks ]]; then
      local n
      n=$(awk -v r="$full_rate" -v d="$DURATION" -v c="$c" -v lo=$MIN_PREPARED -v hi=$MAX_PREPARED \
        'BEGIN { if (r <= 0) r = (c == 1 ? 150 : 600); n = int(r * d * 1.5); if (n < lo) n = lo; if (n > hi) n = hi; print n }')
      simulate "$name" callbacks "$c" "$n"
    else
      simulate "$name" full "$c"
      full_rate=$(jq -r '.payments_per_sec // 0' "$out/$name.sim.json" 2>/dev/null || echo 0)
    fi
    jq -r '"\(.payments_per_sec|floor) payments/s, \(.callbacks_per_sec|floor) callbacks/s, mismatches \(.mismatches|length), errors \(.errors)"' \
      "$out/$name.sim.json" >&2 2>/dev/null || echo "failed" >&2
  done
  stop_server
  [[ -n $dbname ]] && drop_db "$dbname"
  rm -f "$tmp/$row-c$c.db"*
}

# baseline C: pgbench with bench/credit.pgbench on a fresh database with the
# Tiyn schema, pending deposits and CUSTOMERS accounts.
baseline() {
  local c=$1 dbname=tiyn_bench_${stamp,,}_baseline_c$1
  local deposits=$((BASELINE_MAX_TPS * DURATION))
  printf 'bench: %-18s %-9s c=%-3s ' baseline pgbench "$c" >&2
  new_db "$dbname"
  TIYN_DATABASE_URL=$(pg_db_url "$dbname") "$BIN" migrate >/dev/null
  psql "$(pg_db_url "$dbname")" -X -q -v ON_ERROR_STOP=1 -v accounts="$CUSTOMERS" -v deposits="$deposits" \
    -f bench/baseline_setup.sql >/dev/null
  local threads=$((c < 2 ? 1 : 2)) p0 p1
  p0=$(pg_ticks)
  pgbench "$(pg_db_url "$dbname")" -n -f bench/credit.pgbench -c "$c" -j "$threads" -T "$DURATION" \
    -D seq=-1 -D clients="$c" >"$out/baseline-c$c.pgbench.txt" 2>&1 || true
  p1=$(pg_ticks)
  awk -v a="$p0" -v b="$p1" -v hz="$clk" 'BEGIN { printf "pg_cpu_seconds=%.3f\n", (b - a) / hz }' >"$out/baseline-c$c.meta"
  # Exactly-once check of the baseline itself: one credit per settled deposit.
  psql "$(pg_db_url "$dbname")" -X -Atq -c "SELECT (SELECT count(*) FROM deposits WHERE status = 'succeeded'),
      (SELECT count(*) FROM transfers), (SELECT coalesce(sum(balance_minor), 0) FROM accounts),
      (SELECT coalesce(sum(amount_minor), 0) FROM postings WHERE account_id LIKE 'acc%')" \
    >"$out/baseline-c$c.check.txt" 2>&1 || true
  drop_db "$dbname"
  awk '/^tps/ { print int($3) " tps" }' "$out/baseline-c$c.pgbench.txt" >&2
}

echo "bench: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(psql_admin -Atc 'SHOW server_version'), ${DURATION}s per phase, out $out" >&2
{
  echo "stamp=$stamp"
  echo "duration_seconds=$DURATION"
  echo "customers=$CUSTOMERS"
  echo "cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "cores=$(nproc)"
  echo "mem_kib=$(awk '/MemTotal/ { print $2 }' /proc/meminfo)"
  echo "postgres=$(psql_admin -Atc 'SHOW server_version')"
  echo "tiyn=$("$BIN" version 2>/dev/null | head -1)"
  echo "go=$(go version 2>/dev/null | awk '{ print $3 }')"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

# settle: every measurement starts with PostgreSQL's dirty pages written
# out, so that one cell's checkpoint (the baseline's setup inserts tens of
# thousands of rows) is not paid on the next cell's time.
settle() { psql_admin -c CHECKPOINT >/dev/null 2>&1 || true; sync; }

for c in $CONCURRENCIES; do
  if [[ $BASELINE == 1 ]]; then settle; baseline "$c"; fi
  for row in $ROWS; do settle; cell "$row" "$c"; done
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

go run ./bench/report -dir "$out" -json "$out/bench.json"
cp "$out/bench.json" bench/out/latest.json
