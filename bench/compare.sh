#!/usr/bin/env bash
# Runs every benchmark mode against every peer with the same generator, on this machine, and
# prints the tables of BENCHMARKS.md (medians over RUNS runs).
#
#   bench/compare.sh                      # everything, 3 runs each
#   RUNS=1 PEERS="livehtml bun" MODES="burst" ENGINES=tokio bench/compare.sh
#
# ENGINES: lhbench's client engines, each run against every peer (default both: `mio`, every
# client of a worker on one poll; `tokio`, a task per client on tokio-tungstenite's defaults).
# WORKERS: the clients' worker processes (default: lhbench's, 2 here); WORKERS=1 with
# ENGINES=tokio is the outside probe's configuration (every client on one tokio thread).
#
# Installs what the peers need: Debian's Go and gorilla/websocket and libuv1 (apt-get), the
# JavaScript peers from bench/peers/package-lock.json (npm), the Python peers into
# bench/.venv (PyPI). Loopback only; every run is bounded by lhbench's timeouts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

RUNS=${RUNS:-3}
PEERS=${PEERS:-"livehtml bare-rust uws bun node-ws socketio go fastapi tornado socketify"}
MODES=${MODES:-"closed-1000 closed-5000 burst-1000 idle-10000 capacity-19900"}
# Server-Sent Events: streams at GET /sse, the sender POSTs to /post (SSE_PEERS="" to skip).
SSE_PEERS=${SSE_PEERS-"livehtml bun node go fastapi"}
SSE_MODES=${SSE_MODES:-"closed-1000 burst-1000 idle-10000"}
ENGINES=${ENGINES:-"mio tokio"}
WORKERS=${WORKERS:-}
OUT=${OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

# --- install and build
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/gorilla/websocket ] || ! ldconfig -p | grep -q libuv.so.1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-github-gorilla-websocket-dev libuv1 >/dev/null
fi
(cd bench/peers && npm ci --no-audit --no-fund --loglevel=error)
[ -x bench/.venv/bin/pip ] || python3 -m venv bench/.venv
bench/.venv/bin/pip install --quiet --disable-pip-version-check -r bench/peers/requirements.txt
cargo build --release -p livehtml-bench -p peer-livehtml -p peer-rust-bare
(cd bench/peers/go && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$root/target/release/peer-go" .)
(cd bench/peers/go-sse && GO111MODULE=off go build -o "$root/target/release/peer-go-sse" .)

# Up to the hard limit of open files (20,000 here): for the server and the workers.
ulimit -n "$(ulimit -Hn)"

py=$root/bench/.venv/bin/python
peers=$root/bench/peers
peer_cmd() {
  case $1 in
    livehtml) echo "htmx $root/target/release/peer-livehtml" ;;
    bare-rust) echo "htmx $root/target/release/peer-rust-bare" ;;
    uws) echo "json node $peers/uws/server.mjs" ;;
    bun) echo "json $peers/node_modules/.bin/bun $peers/bun/server.mjs" ;;
    # Bun and uWebSockets.js sending livehtml's fragment byte for byte (the payload held equal).
    bun-html) echo "htmx env PAYLOAD=html $peers/node_modules/.bin/bun $peers/bun/server.mjs" ;;
    uws-html) echo "htmx env PAYLOAD=html node $peers/uws/server.mjs" ;;
    node-ws) echo "json node $peers/node-ws/server.mjs" ;;
    socketio) echo "socketio node $peers/socketio/server.mjs" ;;
    go) echo "json $root/target/release/peer-go" ;;
    fastapi) echo "json $py $peers/fastapi/app.py" ;;
    tornado) echo "json $py $peers/tornado/server.py" ;;
    socketify) echo "json $py $peers/socketify/server.py" ;;
    *) echo "unknown peer $1" >&2; exit 2 ;;
  esac
}
sse_peer_cmd() {
  case $1 in
    livehtml) echo "$root/target/release/peer-livehtml" ;;
    bun) echo "$peers/node_modules/.bin/bun $peers/bun-sse/server.mjs" ;;
    node) echo "node $peers/node-sse/server.mjs" ;;
    go) echo "$root/target/release/peer-go-sse" ;;
    fastapi) echo "$py $peers/fastapi-sse/app.py" ;;
    *) echo "unknown SSE peer $1" >&2; exit 2 ;;
  esac
}

for run in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    kind=${mode%-*}
    clients=${mode#*-}
    case $kind in
      closed) extra=(--messages $([ "$clients" -gt 1000 ] && echo 100 || echo 200)) ;;
      burst) extra=(--messages 1000) ;;
      *) extra=() ;;
    esac
    for engine in $ENGINES; do
      for peer in $PEERS; do
        read -r dialect cmd <<<"$(peer_cmd "$peer")"
        echo "== run $run: $peer $mode ($engine)" >&2
        # shellcheck disable=SC2086
        target/release/lhbench run --mode "$kind" --engine "$engine" --name "$peer" --dialect "$dialect" \
          --clients "$clients" "${extra[@]}" ${WORKERS:+--workers "$WORKERS"} --timeout 120 --out "$OUT/$peer-$mode-$engine-$run.json" -- $cmd >/dev/null \
          || echo "!! $peer $mode ($engine) run $run failed" >&2
      done
    done
  done
done

for run in $(seq 1 "$RUNS"); do
  for mode in $SSE_MODES; do
    kind=${mode%-*}
    clients=${mode#*-}
    case $kind in
      closed) extra=(--messages 200) ;;
      burst) extra=(--messages 1000) ;;
      *) extra=() ;;
    esac
    for engine in $ENGINES; do
      for peer in $SSE_PEERS; do
        cmd=$(sse_peer_cmd "$peer")
        echo "== run $run: $peer sse $mode ($engine)" >&2
        # shellcheck disable=SC2086
        target/release/lhbench run --mode "$kind" --engine "$engine" --name "$peer" --dialect sse \
          --clients "$clients" "${extra[@]}" ${WORKERS:+--workers "$WORKERS"} --timeout 120 --out "$OUT/$peer-sse-$mode-$engine-$run.json" -- $cmd >/dev/null \
          || echo "!! $peer sse $mode ($engine) run $run failed" >&2
      done
    done
  done
done

target/release/lhbench table "$OUT"/*.json | tee "$OUT/tables.md"
