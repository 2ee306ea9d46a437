#!/usr/bin/env bash
# Two `rnnedge serve` replicas on loopback ports behind HAProxy (the Debian package: apt-get install haproxy).
#
#   deploy/run_replicas.sh MODEL.onnx [FRONT_PORT] [REPLICA_PORT_1] [REPLICA_PORT_2]     (8765 8766 8767)
#
# Clients connect to ws://127.0.0.1:FRONT_PORT. The replicas share a freshly made token key, so a
# session's state token from one is taken by the other. Prints "ready: ..." once HAProxy sees both
# replicas healthy; SIGTERM or Ctrl-C stops HAProxy and drains the replicas (each hands its sessions
# their state tokens). RNNEDGE names the command to run (default: rnnedge), e.g. "python -m rnnedge.cli.main".
set -euo pipefail
MODEL=${1:?usage: $0 MODEL.onnx [FRONT_PORT] [REPLICA_PORT_1] [REPLICA_PORT_2]}
FRONT=${2:-8765}
P1=${3:-8766}
P2=${4:-8767}
read -r -a RNNEDGE_CMD <<< "${RNNEDGE:-rnnedge}"
HERE=$(cd "$(dirname "$0")" && pwd)
command -v haproxy > /dev/null || { echo "haproxy not found: apt-get install -y haproxy" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rnnedge-replicas.XXXXXX")
PIDS=()

stop() {
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
    rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 0' INT TERM

od -An -N32 -tx1 /dev/urandom | tr -d " \n" > "$WORK/token.key"  # 64 hex digits, shared by both replicas
for port in "$P1" "$P2"; do
    "${RNNEDGE_CMD[@]}" serve "$MODEL" --host 127.0.0.1 --port "$port" --token-key-file "$WORK/token.key" \
        2> "$WORK/replica-$port.log" &
    PIDS+=($!)
done
sed -e "s/@FRONT@/$FRONT/" -e "s/@P1@/$P1/" -e "s/@P2@/$P2/" "$HERE/haproxy.cfg.in" > "$WORK/haproxy.cfg"
haproxy -c -q -f "$WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" 2> "$WORK/haproxy.log" &
PIDS+=($!)

healthy() { # GET /healthz over bash's /dev/tcp: no curl needed
    exec 3<> "/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    grep -q '^HTTP/1.1 200' <&3
    local ok=$?
    exec 3>&-
    return $ok
}
for _ in $(seq 1 300); do
    if healthy "$P1" 2> /dev/null && healthy "$P2" 2> /dev/null && healthy "$FRONT" 2> /dev/null; then
        echo "ready: ws://127.0.0.1:$FRONT -> replicas ws://127.0.0.1:$P1 and ws://127.0.0.1:$P2 (logs in $WORK)"
        wait
        exit 0
    fi
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2> /dev/null || { echo "a process exited early:" >&2; cat "$WORK"/*.log >&2; exit 1; }
    done
    sleep 0.2
done
echo "replicas did not become healthy in 60 s:" >&2
cat "$WORK"/*.log >&2
exit 1
