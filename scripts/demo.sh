#!/usr/bin/env bash
# make demo: serve on a temporary SQLite file, play a few thousand payments
# through the Monetix protocol against it, print the summary. Loopback only;
# bounded in time. Exits non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin/tiyn}
PAYMENTS=${DEMO_PAYMENTS:-3000}
CONCURRENCY=${DEMO_CONCURRENCY:-16}

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18181)
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export TIYN_LISTEN=127.0.0.1:$port
export TIYN_DATABASE_URL=sqlite:$dir/demo.db
export TIYN_API_TOKENS=demo:write:$token
export TIYN_MONETIX_PROJECTS=1234=$secret
export TIYN_LOG_LEVEL=warn

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
"$BIN" simulate --url "http://$TIYN_LISTEN" --customers 50 --payments "$PAYMENTS" --concurrency "$CONCURRENCY"
