#!/usr/bin/env bash
# Through-proxy cost of the WAF: Rampart with the WAF off, Rampart with the default WAF, and nginx +
# ModSecurity + OWASP CRS (the corpus anchor, ../shared/corpus/crs_anchor.sh), side by side in one run, all
# in front of the same 200-answering nginx backend and all pinned to CPU 0 (wrk on CPU 1).
#
#   cargo xtask bench waf-proxy        (or: RAMPART_BIN=target/release/rampart bash benches/waf/throughput.sh)
#   Env: DURATION (5 s, at most 10), ROUNDS (3), CONNS (50), CRS_PORT (19001 = CRS 3.3.4 PL1; 19002 = PL2),
#   CORPUS_DIR (../shared/corpus). Needs: wrk, taskset, nginx, libnginx-mod-http-modsecurity, modsecurity-crs.
#   The anchor is started from CORPUS_DIR/crs_anchor.sh unless it is already listening, and then stopped again.
#
# The request is a browser-like GET with a 100-byte query. Each cell is `wrk -t1 -cN -dDURATION`, rounds
# interleaved; medians are printed. Loopback only; every load is bounded by DURATION.
# This is a stand-in until the shared L7 harness (benches/l7) carries WAF rows.
set -euo pipefail
BIN=${RAMPART_BIN:?set RAMPART_BIN to the rampart binary}
DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-3}; CONNS=${CONNS:-50}; CRS_PORT=${CRS_PORT:-19001}
[ "$DURATION" -le 10 ] || { echo "DURATION must be at most 10 seconds"; exit 2; }
BACKEND=19099
HERE=$(cd "$(dirname "$0")" && pwd)
CORPUS_DIR=${CORPUS_DIR:-$HERE/../../../shared/corpus}
W=$(mktemp -d /tmp/rampart-wafbench.XXXX); PIDS=(); ANCHOR_STARTED=
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  [ -n "$ANCHOR_STARTED" ] && sh "$CORPUS_DIR/crs_anchor.sh" stop >/dev/null 2>&1 || true; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
listening() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
wait_port() { for _ in $(seq 100); do listening "$1" && return 0; sleep 0.1; done
  echo "port $1 did not open"; cat "$W"/*.log 2>/dev/null; exit 1; }
if ! listening "$CRS_PORT"; then
  [ -f "$CORPUS_DIR/crs_anchor.sh" ] || { echo "no CRS anchor at $CORPUS_DIR/crs_anchor.sh (set CORPUS_DIR)"; exit 2; }
  sh "$CORPUS_DIR/crs_anchor.sh" start > "$W/anchor.log" 2>&1 || { cat "$W/anchor.log"; exit 1; }
  ANCHOR_STARTED=1
fi
wait_port $BACKEND; wait_port "$CRS_PORT"
# Pin the anchor's nginx workers to CPU 0, as the Rampart instances are.
ANCHOR_PID=$(cat "${WAFEVAL_NGINX_DIR:-/tmp/crs-anchor-nginx}/logs/nginx.pid")
for p in $(pgrep -P "$ANCHOR_PID" || true); do taskset -pc 0 "$p" >/dev/null 2>&1 || true; done
start() { # name port waf_enabled
  cat > "$W/$1.yaml" <<YAML
server: {host: 127.0.0.1, port: $2, workers: 1}
proxy: {upstreams: [{name: app, servers: [{host: 127.0.0.1, port: $BACKEND}]}]}
admin: {enabled: false}
waf: {enabled: $3}
logging: {level: error, access_log: {enabled: false}}  # nginx runs with access_log off
xdp: {enabled: false, record_file: $W/$1.db}
YAML
  taskset -c 0 "$BIN" run --config "$W/$1.yaml" > "$W/$1.log" 2>&1 & PIDS+=($!)
  wait_port "$2"
}
start waf_off 21110 false
start waf_on 21111 true
declare -A PORT=([waf_off]=21110 [waf_on]=21111 [nginx_crs]=$CRS_PORT)
# CPU time is read per process: each Rampart is one; nginx + CRS is the anchor's workers, which also serve the
# shared backend (a small share next to CRS's cost, and counted against nginx only).
declare -A CPU_PIDS=([waf_off]=${PIDS[0]} [waf_on]=${PIDS[1]} [nginx_crs]="$(pgrep -P "$ANCHOR_PID" | tr '\n' ' ')")
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_us() { local t=0; for p in $1; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $((t * TICK_US)); }
PATHQ="/products/search?q=blue+running+shoes&category=sport&size=42&color=blue&sort=price_asc&page=2&lang=en-US"
UA="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
declare -A RESULTS CPU
for r in $(seq "$ROUNDS"); do
  for p in waf_off waf_on nginx_crs; do
    before=$(cpu_us "${CPU_PIDS[$p]}")
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "User-Agent: $UA" -H "Accept-Language: en-US,en;q=0.9" \
      -H "Cookie: sessionid=3b451e4b17e6056de35d395398a1a936; lang=de" "http://127.0.0.1:${PORT[$p]}$PATHQ" > "$W/wrk.txt"
    used=$(( $(cpu_us "${CPU_PIDS[$p]}") - before ))
    rps=$(awk '/Requests\/sec/ {print $2}' "$W/wrk.txt")
    n=$(awk '/requests in/ {print $1}' "$W/wrk.txt")
    bad=$(awk '/Non-2xx/ {print $NF}' "$W/wrk.txt")
    # A proxy that answers the benign request with an error is not being measured: stop rather than report it.
    [ -z "$bad" ] || { echo "$p answered $bad of $n requests with an error status"; cat "$W/wrk.txt"; exit 1; }
    RESULTS[$p]="${RESULTS[$p]:-} $rps"
    CPU[$p]="${CPU[$p]:-} $(awk -v u="$used" -v n="$n" 'BEGIN { printf "%.2f", u / n }')"
    echo "round $r $p: $rps req/s, $(echo "${CPU[$p]}" | awk '{print $NF}') CPU µs/request"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A M C
for p in waf_off waf_on nginx_crs; do
  M[$p]=$(echo "${RESULTS[$p]}" | median); C[$p]=$(echo "${CPU[$p]}" | median)
  echo "median $p: ${M[$p]} req/s, ${C[$p]} CPU µs/request"
done
# req/s on a shared machine moves with whatever else runs; CPU time per request moves much less, and on one
# pinned core it is what bounds throughput. Both ratios are printed; the second is the steadier.
awk -v on="${M[waf_on]}" -v off="${M[waf_off]}" -v crs="${M[nginx_crs]}" \
  'BEGIN { printf "req/s:       waf_on/waf_off=%.2f waf_on/nginx_crs=%.2f\n", on/off, on/crs }'
awk -v on="${C[waf_on]}" -v off="${C[waf_off]}" -v crs="${C[nginx_crs]}" \
  'BEGIN { printf "per CPU-s:   waf_on/waf_off=%.2f waf_on/nginx_crs=%.2f\n", off/on, crs/on }'
