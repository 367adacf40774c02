#!/usr/bin/env bash
# Instructions per proxied request, Rampart against nginx, counted by callgrind: the figure that stays the same
# on a loaded machine, where req/s from proxy.sh swings with every other process. Counts user-space instructions
# only; both proxies make the same four system calls per keep-alive request (two reads, two writes), which
# `strace -c` confirms, so the kernel's share is equal and left out.
#
#   cargo xtask bench l7-instructions     (builds Rampart, then runs this)
#   RAMPART_BIN=target/release/rampart bash benches/l7/instructions.sh
#   Env: REQUESTS (5000, at most 50000), CONNS (10), WAF (off|on: Rampart's WAF engine on, paranoia 1),
#        RAMPART_SHARED as for proxy.sh, KEEP (a path prefix: keep the dumps as KEEP.nginx and KEEP.rampart).
#
# Method: the shared nginx upstream answering 100 bytes; nginx (1 worker, master_process off) and Rampart
# (1 worker) each run under valgrind --tool=callgrind; after a warm-up of REQUESTS/5 requests the counters are
# zeroed, h2load --h1 sends REQUESTS requests over CONNS keep-alive connections, and the counters are dumped.
# Loopback only; every load is bounded by REQUESTS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${RAMPART_BIN:?set RAMPART_BIN to the rampart binary}
REQUESTS=${REQUESTS:-5000}; CONNS=${CONNS:-10}; WAF=${WAF:-off}
[ "$REQUESTS" -le 50000 ] 2>/dev/null || { echo "REQUESTS must be at most 50000"; exit 2; }
case "$WAF" in on) WAF_ON=true ;; off) WAF_ON=false ;; *) echo "WAF must be on or off"; exit 2 ;; esac
SHARED=${RAMPART_SHARED:-}
for c in "$SHARED" "$ROOT/../shared" /work/shared; do [ -n "$c" ] && [ -d "$c/bench/l7/configs" ] && { SHARED=$c; break; }; done
[ -d "$SHARED/bench/l7/configs" ] || { echo "shared bench material not found; set RAMPART_SHARED"; exit 2; }
for t in nginx valgrind callgrind_control h2load curl; do command -v $t >/dev/null || { echo "missing $t"; exit 2; }; done

W=$(mktemp -d /tmp/rampart-cg.XXXX); mkdir -p "$W/t"; PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT INT TERM

UP=18001; NGX=18002; RMP=18040
for f in upstream.nginx.conf proxy.nginx.conf; do sed "s#@W@#$W#g" "$SHARED/bench/l7/configs/$f" > "$W/$f"; done
cat > "$W/rampart.yaml" <<EOF
server: {host: 127.0.0.1, port: $RMP, workers: 1, io: epoll}
proxy: {upstreams: [{name: app, servers: [{host: 127.0.0.1, port: $UP}]}]}
admin: {enabled: false}
waf: {enabled: $WAF_ON}
logging: {level: warn, access_log: {enabled: false}}  # nginx runs with access_log off
xdp: {enabled: false}
EOF
wait_port() { for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 did not open"; cat "$W"/*.log 2>/dev/null; exit 1; }

nginx -c "$W/upstream.nginx.conf" -p "$W" -e "$W/up.err" & PIDS+=($!)
wait_port $UP
valgrind --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file="$W/cg.nginx" \
  nginx -c "$W/proxy.nginx.conf" -p "$W" -e "$W/px.err" -g "master_process off;" > "$W/nginx.log" 2>&1 &
PIDS+=($!); NGINX_PID=$!
valgrind --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file="$W/cg.rampart" \
  "$BIN" run --config "$W/rampart.yaml" > "$W/rampart.log" 2>&1 &
PIDS+=($!); RAMPART_PID=$!
wait_port $NGX; wait_port $RMP

# Total instructions (Ir) recorded in a callgrind dump.
ir_of() { awk '/^(summary|totals):/{print $2; exit}' "$1"; }
measure() { # name pid port -> prints Ir per request
  local name=$1 pid=$2 port=$3 body out
  body=$(curl -s -m 30 "http://127.0.0.1:$port/") || { echo "$name does not answer" >&2; exit 1; }
  [ ${#body} -eq 100 ] || { echo "$name answered ${#body} bytes, expected the upstream's 100" >&2; exit 1; }
  h2load --h1 -n $((REQUESTS / 5)) -c "$CONNS" "http://127.0.0.1:$port/" > /dev/null
  callgrind_control -z "$pid" > /dev/null 2>&1
  out=$(h2load --h1 -n "$REQUESTS" -c "$CONNS" "http://127.0.0.1:$port/")
  echo "$out" | grep -q "succeeded, 0 failed" || { echo "$name: requests failed: $(echo "$out" | grep 'requests:')" >&2; exit 1; }
  echo "$out" | grep -q "status codes: $REQUESTS 2xx" || { echo "$name: non-2xx answers: $(echo "$out" | grep 'status codes')" >&2; exit 1; }
  rm -f "$W/cg.$name".*
  callgrind_control -d "$pid" > /dev/null 2>&1
  local dump
  for _ in $(seq 100); do dump=$(ls "$W/cg.$name".* 2>/dev/null | head -1); [ -n "$dump" ] && [ -n "$(ir_of "$dump")" ] && break; sleep 0.1; done
  [ -n "$dump" ] || { echo "$name: no callgrind dump" >&2; exit 1; }
  [ -n "${KEEP:-}" ] && cp "$dump" "$KEEP.$name"   # for callgrind_annotate
  awk -v ir="$(ir_of "$dump")" -v n="$REQUESTS" 'BEGIN{printf "%.0f", ir / n}'
}
echo "== user-space instructions per request: h2load --h1 -n $REQUESTS -c $CONNS, 100-byte upstream answer, WAF $WAF"
N=$(measure nginx $NGINX_PID $NGX); echo "  nginx    $N"
R=$(measure rampart $RAMPART_PID $RMP); echo "  rampart  $R"
echo "== RESULT: Rampart / nginx instructions per request: $(awk -v r="$R" -v n="$N" 'BEGIN{printf "%.2f", r / n}')x (below 1 favours Rampart)"
