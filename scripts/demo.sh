#!/usr/bin/env bash
# make demo: serve on a temporary SQLite file, play a few thousand payments
# through the Monetix protocol against it — 5% of them with callbacks that
# never come, which tiyn's status poller recovers by asking the simulator's
# Gate — and print the summary. Loopback only; bounded in time (the
# recovery wait by DEMO_RECOVERY_TIMEOUT). Exits non-zero on any mismatch
# or lost payment.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin/tiyn}
PAYMENTS=${DEMO_PAYMENTS:-3000}
CONCURRENCY=${DEMO_CONCURRENCY:-16}
DROP=${DEMO_DROP_CALLBACKS:-0.05}
POLL_AFTER=${DEMO_POLL_AFTER:-10s}
POLL_RATE=${DEMO_POLL_RATE:-10}
RECOVERY_TIMEOUT=${DEMO_RECOVERY_TIMEOUT:-90s}

freeport() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo "$1"
}
dir=$(mktemp -d)
port=$(freeport 18181)
gport=$(freeport 18182)
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export TIYN_LISTEN=127.0.0.1:$port
export TIYN_DATABASE_URL=sqlite:$dir/demo.db
export TIYN_API_TOKENS=demo:write:$token
export TIYN_MONETIX_PROJECTS=1234=$secret
export TIYN_LOG_LEVEL=warn
# The status poller asks the simulator's Gate (plain HTTP is accepted on a
# loopback host only) about every deposit pending for POLL_AFTER.
export TIYN_MONETIX_GATE_URL=http://127.0.0.1:$gport
export TIYN_STATUS_POLL_AFTER=$POLL_AFTER
export TIYN_STATUS_POLL_RATE=$POLL_RATE

"$BIN" serve >"$dir/serve.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://$TIYN_LISTEN/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
  sleep 0.1
done
echo "tiyn serve is up on http://$TIYN_LISTEN (SQLite $dir/demo.db); simulating $PAYMENTS payments at concurrency $CONCURRENCY"
echo "the simulator is the Gate on $TIYN_MONETIX_GATE_URL and drops the callbacks of $DROP of the payments;"
echo "the status poller asks about deposits pending for $TIYN_STATUS_POLL_AFTER, at most $TIYN_STATUS_POLL_RATE requests per second (TIYN_STATUS_POLL_RATE)"
"$BIN" simulate --url "http://$TIYN_LISTEN" --customers 50 --payments "$PAYMENTS" --concurrency "$CONCURRENCY" \
  --gate-listen "127.0.0.1:$gport" --drop-callbacks "$DROP" --recovery-timeout "$RECOVERY_TIMEOUT"
