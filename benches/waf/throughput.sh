#!/usr/bin/env bash
# Through-proxy cost of the WAF: Rampart with the WAF off, Rampart with the default WAF, and nginx +
# ModSecurity + OWASP CRS (the corpus anchor, ../shared/corpus/crs_anchor.sh), side by side in one run, all
# in front of the same 200-answering nginx backend and all pinned to CPU 0 (wrk on CPU 1).
#
#   RAMPART_BIN=target/release/rampart bash benches/waf/throughput.sh
#   Env: DURATION (5 s, at most 10), ROUNDS (3), CONNS (50), CRS_PORT (19001 = CRS 3.3.4 PL1; 19002 = PL2).
#   Needs: wrk, taskset, and the CRS anchor running (`sh ../shared/corpus/crs_anchor.sh start`).
#
# The request is a browser-like GET with a 100-byte query. Each cell is `wrk -t1 -cN -dDURATION`, rounds
# interleaved; medians are printed. Loopback only; every load is bounded by DURATION.
# This is a stand-in until the shared L7 harness (benches/l7) carries WAF rows.
set -euo pipefail
BIN=${RAMPART_BIN:?set RAMPART_BIN to the rampart binary}
DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-3}; CONNS=${CONNS:-50}; CRS_PORT=${CRS_PORT:-19001}
[ "$DURATION" -le 10 ] || { echo "DURATION must be at most 10 seconds"; exit 2; }
BACKEND=19099
W=$(mktemp -d /tmp/rampart-wafbench.XXXX); PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 did not open"; cat "$W"/*.log 2>/dev/null; exit 1; }
wait_port $BACKEND; wait_port "$CRS_PORT"
# Pin the anchor's nginx workers to CPU 0, as the Rampart instances are.
for p in $(pgrep -f "nginx: worker process" || true); do taskset -pc 0 "$p" >/dev/null 2>&1 || true; done
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
PATHQ="/products/search?q=blue+running+shoes&category=sport&size=42&color=blue&sort=price_asc&page=2&lang=en-US"
UA="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
declare -A RESULTS
for r in $(seq "$ROUNDS"); do
  for p in waf_off waf_on nginx_crs; do
    rps=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "User-Agent: $UA" -H "Accept-Language: en-US,en;q=0.9" \
      -H "Cookie: sessionid=3b451e4b17e6056de35d395398a1a936; lang=de" "http://127.0.0.1:${PORT[$p]}$PATHQ" \
      | awk '/Requests\/sec/ {print $2}')
    RESULTS[$p]="${RESULTS[$p]:-} $rps"
    echo "round $r $p: $rps req/s"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A M
for p in waf_off waf_on nginx_crs; do M[$p]=$(echo "${RESULTS[$p]}" | median); echo "median $p: ${M[$p]} req/s"; done
awk -v on="${M[waf_on]}" -v off="${M[waf_off]}" -v crs="${M[nginx_crs]}" \
  'BEGIN { printf "waf_on/waf_off=%.2f waf_on/nginx_crs=%.2f\n", on/off, on/crs }'
