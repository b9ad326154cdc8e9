#!/usr/bin/env bash
# Runs livehtml as a cluster of processes on one broker (Redis, NATS) under lhbench, and the
# single process beside it, and prints the tables of BENCHMARKS.md's cluster section.
#
#   bench/cluster.sh                        # both brokers, every mode, 1 run each
#   BROKERS=redis MODES="closed-10000" bench/cluster.sh
#
# Needs redis-server on 127.0.0.1:6379 and nats-server -js on 127.0.0.1:4222 (as CI starts
# them). Each run uses a namespace of its own. Loopback only; every run is bounded by lhbench's
# timeouts.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-1}
NODES=${NODES:-6}
BROKERS=${BROKERS:-"redis nats"}
MODES=${MODES:-"capacity-100000 closed-100000 closed-10000 burst-10000"}
OUT=${OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)-cluster}
mkdir -p "$OUT"
cargo build --release -p livehtml-bench -p peer-livehtml
ulimit -n "$(ulimit -Hn)"

for run in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    kind=${mode%-*}
    clients=${mode#*-}
    case $kind in
      closed) extra=(--messages $([ "$clients" -gt 10000 ] && echo 20 || echo 100)) ;;
      burst) extra=(--messages 200) ;;
      *) extra=() ;;
    esac
    for broker in $BROKERS; do
      case $broker in
        redis) url=redis://127.0.0.1:6379 pid=$(pgrep -x redis-server | head -1) ;;
        nats) url=nats://127.0.0.1:4222 pid=$(pgrep -x nats-server | head -1) ;;
      esac
      echo "== run $run: $broker $mode on $NODES processes" >&2
      LIVEHTML_PUBSUB=$url LIVEHTML_PUBSUB_NAMESPACE="lhbench-$run-$mode-$$" \
        target/release/lhbench run --mode "$kind" --name "livehtml-$NODES-on-$broker" --dialect htmx \
        --clients "$clients" --nodes "$NODES" --broker-pid "$pid" --timeout 300 "${extra[@]}" \
        --out "$OUT/$broker-$mode-$run.json" -- target/release/peer-livehtml || echo "failed: $broker $mode" >&2
    done
    # One process, no broker, where it can hold the clients (under 20,000 open files).
    if [ "$clients" -le 19000 ]; then
      echo "== run $run: one process $mode" >&2
      target/release/lhbench run --mode "$kind" --name livehtml-alone --dialect htmx --clients "$clients" \
        --timeout 300 "${extra[@]}" --out "$OUT/alone-$mode-$run.json" -- target/release/peer-livehtml \
        || echo "failed: alone $mode" >&2
    fi
  done
done
target/release/lhbench table "$OUT"/*.json
