#!/usr/bin/env bash
# make fuzz: run every `func Fuzz…` target of the repository for FUZZTIME
# each, one after the other (go test -run='^$' -fuzz='^Name$'), then keep
# a few of the new interesting inputs the fuzzer found: the smallest
# FUZZ_KEEP new entries of each target's corpus in the Go cache are copied
# into the package's testdata/fuzz/<Name>/, where every plain `go test`
# replays them (commit them). A failing input is written there by go test
# itself and fails the run.
#
# Usage: scripts/fuzz.sh [FUZZTIME]   (default $FUZZTIME or 30s; "1000x" counts runs)
# Settings: FUZZ_KEEP (default 4) new entries kept per target and run,
#           FUZZ_MAX_KEPT (default 32) entries a target's testdata may hold in all,
#           FUZZ_TARGETS (default all) a regexp of target names to run.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${1:-${FUZZTIME:-30s}}
KEEP=${FUZZ_KEEP:-4}
MAX_KEPT=${FUZZ_MAX_KEPT:-32}
ONLY=${FUZZ_TARGETS:-.}
# Each target is bounded by FUZZTIME; this bounds go test around it
# (building, the seed corpus, minimizing a crasher).
TIMEOUT=${FUZZ_TIMEOUT:-15m}
cache="$(go env GOCACHE)/fuzz"

mapfile -t files < <(git ls-files -co --exclude-standard -- '*_test.go' | xargs grep -lE '^func Fuzz[A-Za-z0-9_]*\(' | sort)
[ "${#files[@]}" -gt 0 ] || { echo "fuzz: no Fuzz targets found"; exit 1; }

failed=0 ran=0
summary=()
for file in "${files[@]}"; do
  dir=$(dirname "$file")
  pkg=$(go list "./$dir")
  for name in $(grep -oE '^func Fuzz[A-Za-z0-9_]*\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(/\1/'); do
    [[ $name =~ $ONLY ]] || continue
    corpus="$cache/$pkg/$name"
    before=$(mktemp)
    ls "$corpus" 2>/dev/null | sort >"$before" || true
    echo "== $pkg $name ($FUZZTIME)"
    status=ok
    # pipefail: the pipeline fails when go test does.
    log=$(mktemp)
    if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" -timeout="$TIMEOUT" "./$dir" 2>&1 | tee "$log" | tail -n 25; then
      status=FAILED
    fi
    execs=$( (grep -oE 'execs: [0-9]+' "$log" || echo "execs: ?") | tail -n 1 | awk '{print $2}')
    rm -f "$log"
    ran=$((ran + 1))
    kept=0
    if [ -d "$corpus" ]; then
      dest="$dir/testdata/fuzz/$name"
      have=$( (ls "$dest" 2>/dev/null || true) | wc -l)
      room=$((MAX_KEPT - have))
      [ "$room" -lt "$KEEP" ] || room=$KEEP
      if [ "$room" -gt 0 ]; then
        # The smallest new entries: cheap to replay, easy to read.
        while read -r entry; do
          [ -n "$entry" ] || continue
          mkdir -p "$dest"
          if [ ! -e "$dest/$entry" ]; then
            cp "$corpus/$entry" "$dest/$entry"
            kept=$((kept + 1))
          fi
        done < <(comm -13 "$before" <(ls "$corpus" | sort) | while read -r e; do
          printf '%s %s\n' "$(wc -c <"$corpus/$e")" "$e"; done | sort -n | head -n "$room" | awk '{print $2}')
      fi
    fi
    rm -f "$before"
    [ "$status" = ok ] || failed=$((failed + 1))
    summary+=("$(printf '  %-8s %-62s %10s execs, kept %d new corpus entries' "$status" "$pkg.$name" "$execs" "$kept")")
  done
done

echo
echo "fuzz: $ran targets, $FUZZTIME each"
printf '%s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
  echo "fuzz: $failed targets FAILED; their crashing inputs are under testdata/fuzz (go test replays them)"
  exit 1
fi
