#!/usr/bin/env bash
# L7 proxy throughput: Rampart (WAF off) against nginx, side by side in one run, plain HTTP and TLS, 50 and 256
# connections, then memory: RSS idle and with 10,000 idle keep-alive connections.
#
#   cargo xtask bench l7                    (builds Rampart, installs nginx/wrk, runs this)
#   RAMPART_BIN=target/release/rampart bash benches/l7/proxy.sh
#   Env: DURATION (8, seconds, at most 10), ROUNDS (3), CONNS ("50 256"), IDLE (10000), IO (epoll|io_uring|both),
#        RAMPART_SHARED (the shared material; default ../shared next to this checkout, else /work/shared).
#
# Method (after ../shared/bench/l7/README.md, whose upstream and nginx proxy configs are used as they are): one
# nginx upstream answering 100 bytes; nginx (1 worker, upstream keep-alive pool) and Rampart (1 worker) as
# reverse proxies pinned to CPU 0; upstream and wrk pinned to CPU 1. Each cell is wrk -t1 -cN -dDURATION
# --latency, rounds interleaved between the proxies; medians are printed, with each proxy's CPU time per
# request and how busy CPU 1 (wrk and the upstream) was, then every round. The last lines are the
# Rampart/nginx ratios. Loopback only; every load is bounded by DURATION.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${RAMPART_BIN:?set RAMPART_BIN to the rampart binary}
DURATION=${DURATION:-8}; ROUNDS=${ROUNDS:-3}; CONNS=${CONNS:-"50 256"}; IDLE=${IDLE:-10000}; IO=${IO:-epoll}
[ "$DURATION" -le 10 ] 2>/dev/null || { echo "DURATION must be at most 10 seconds"; exit 2; }
SHARED=${RAMPART_SHARED:-}
for c in "$SHARED" "$ROOT/../shared" /work/shared; do [ -n "$c" ] && [ -d "$c/bench/l7/configs" ] && { SHARED=$c; break; }; done
[ -d "$SHARED/bench/l7/configs" ] || { echo "shared bench material not found; set RAMPART_SHARED"; exit 2; }
for t in nginx wrk taskset openssl python3 curl; do command -v $t >/dev/null || { echo "missing $t"; exit 2; }; done
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs"; exit 2; }
# Every idle connection is one descriptor in the client and one in the proxy.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((IDLE + 1000)) ] || { echo "open-file limit $(ulimit -n) is too low for IDLE=$IDLE"; exit 2; }

W=$(mktemp -d /tmp/rampart-l7.XXXX); mkdir -p "$W/t"; PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT INT TERM

# Ports: upstream 18001 and nginx plain 18002 come from the shared configs; the rest are ours.
UP=18001; NGX=18002; NGX_TLS=18022; RMP=18010; RMP_TLS=18011; RMP_URING=18030; RMP_URING_TLS=18031
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -keyout "$W/key.pem" -out "$W/cert.pem" >/dev/null 2>&1
for f in upstream.nginx.conf proxy.nginx.conf; do sed "s#@W@#$W#g" "$SHARED/bench/l7/configs/$f" > "$W/$f"; done
# The same nginx proxy with a TLS listener added (TLS 1.3, session cache), and room for the idle-connection test.
sed -e "s#listen 127.0.0.1:$NGX backlog=4096;#listen 127.0.0.1:$NGX backlog=4096; listen 127.0.0.1:$NGX_TLS ssl backlog=4096; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:S:10m;#" \
  -e "s#worker_connections 4096;#worker_connections 30000;#" "$W/proxy.nginx.conf" > "$W/nginx-proxy.conf"
grep -q "$NGX_TLS ssl" "$W/nginx-proxy.conf" || { echo "the shared nginx proxy config changed shape; update the sed above"; exit 2; }

rampart_config() { # $1 = io engine, $2 = plain port, $3 = TLS port
  cat <<EOF
server: {host: 127.0.0.1, port: $2, workers: 1, max_connections: 30000, io: $1}
ssl:
  enabled: true
  port: $3
  certificates: [{domains: [localhost], cert_file: $W/cert.pem, key_file: $W/key.pem}]
proxy: {upstreams: [{name: app, servers: [{host: 127.0.0.1, port: $UP}]}]}
admin: {enabled: false}
waf: {enabled: false}
logging: {level: warn, access_log: {enabled: false}}  # nginx runs with access_log off
xdp: {enabled: false}
EOF
}
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 did not open"; cat "$W"/*.log 2>/dev/null; exit 1; }

taskset -c 1 nginx -c "$W/upstream.nginx.conf" -p "$W" -e "$W/up.err" & PIDS+=($!)
taskset -c 0 nginx -c "$W/nginx-proxy.conf" -p "$W" -e "$W/px.err" & NGINX_MASTER=$!; PIDS+=($NGINX_MASTER)
wait_port $UP; wait_port $NGX; wait_port $NGX_TLS
NGINX_WORKER=$(pgrep -P "$NGINX_MASTER" | head -1)
declare -A PID_OF=([nginx]=$NGINX_WORKER)
PROXIES="nginx"
start_rampart() { # $1 = name, $2 = io, $3 = plain port, $4 = TLS port
  rampart_config "$2" "$3" "$4" > "$W/$1.yaml"
  taskset -c 0 "$BIN" run --config "$W/$1.yaml" > "$W/$1.log" 2>&1 & PIDS+=($!); PID_OF[$1]=$!
  wait_port "$3"; wait_port "$4"; PROXIES="$PROXIES $1"
}
case "$IO" in
  epoll) start_rampart rampart epoll $RMP $RMP_TLS ;;
  io_uring) start_rampart rampart io_uring $RMP $RMP_TLS ;;
  both) start_rampart rampart epoll $RMP $RMP_TLS; start_rampart rampart_uring io_uring $RMP_URING $RMP_URING_TLS ;;
  *) echo "IO must be epoll, io_uring or both"; exit 2 ;;
esac
url() { # proxy scheme
  local port
  case "$1:$2" in
    nginx:http) port=$NGX ;; nginx:https) port=$NGX_TLS ;;
    rampart:http) port=$RMP ;; rampart:https) port=$RMP_TLS ;;
    rampart_uring:http) port=$RMP_URING ;; rampart_uring:https) port=$RMP_URING_TLS ;;
  esac
  echo "$2://127.0.0.1:$port/"
}
for p in $PROXIES; do for s in http https; do
  body=$(curl -sk -m 5 "$(url "$p" $s)") || { echo "$p does not answer on $s"; exit 1; }
  [ ${#body} -eq 100 ] || { echo "$p answered ${#body} bytes on $s, expected the upstream's 100"; exit 1; }
done; done

to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.3f", v }'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Busy and idle jiffies of one CPU, from /proc/stat (idle and iowait count as idle).
cpu_busy_idle() { awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat; }
# One wrk run; appends "rps p99_ms cpu_us_per_request cpu1_busy_percent" to $W/res.<cell>. CPU 1 carries wrk
# and the upstream: when it is busy all the time, the cell measures that ceiling as much as the proxy.
one_run() { # proxy scheme conns
  local pid=${PID_OF[$1]} t0 t1 out n rps p99 errs b0 i0 b1 i1
  t0=$(cpu_ticks "$pid"); read -r b0 i0 < <(cpu_busy_idle 1)
  out=$(taskset -c 1 wrk -t1 -c"$3" -d"${DURATION}s" --latency "$(url "$1" "$2")" 2>&1)
  t1=$(cpu_ticks "$pid"); read -r b1 i1 < <(cpu_busy_idle 1)
  n=$(echo "$out" | awk '/requests in/{print $1}'); rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  p99=$(to_ms "$(echo "$out" | awk '$1=="99%"{print $2}')")
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
  [ -n "$errs" ] && echo "  $1 $2 c=$3: $errs"
  echo "${rps:-0} ${p99:-0} $(awk -v t=$((t1 - t0)) -v n="${n:-1}" 'BEGIN{printf "%.1f", t * 1e6 / 100 / n}') $(awk -v b=$((b1 - b0)) -v i=$((i1 - i0)) 'BEGIN{printf "%.0f", 100 * b / (b + i > 0 ? b + i : 1)}')" >> "$W/res.$1.$2.$3"
}
median() { awk -v k="$2" '{print $k}' "$1" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

echo "== throughput: wrk -t1 --latency, ${DURATION}s x ${ROUNDS} rounds interleaved; proxies on CPU 0, upstream + wrk on CPU 1"
for r in $(seq "$ROUNDS"); do
  for s in http https; do for c in $CONNS; do for p in $PROXIES; do one_run "$p" $s "$c"; done; done; done
done
printf "  %-14s %-6s %5s %12s %9s %12s %11s\n" proxy scheme conns "req/s" "p99 ms" "CPU us/req" "CPU 1 busy"
for s in http https; do for c in $CONNS; do for p in $PROXIES; do
  f="$W/res.$p.$s.$c"; printf "  %-14s %-6s %5s %12s %9s %12s %10s%%\n" "$p" $s "$c" "$(median "$f" 1)" "$(median "$f" 2)" "$(median "$f" 3)" "$(median "$f" 4)"
done; done; done

# Every round, so that a median's spread is on record: the machines this runs on are shared and noisy.
echo "== rounds in run order (req/s @ p99 ms)"
for s in http https; do for c in $CONNS; do for p in $PROXIES; do
  printf "  %-14s %-6s %5s  %s\n" "$p" $s "$c" "$(awk '{printf "%s @ %s   ", int($1), $2}' "$W/res.$p.$s.$c")"
done; done; done

echo "== memory: RSS idle, and holding $IDLE idle keep-alive connections (each has completed one request)"
rss_kb() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done; echo $t; }
declare -A RSS_PIDS=([nginx]="$NGINX_MASTER $NGINX_WORKER")
for p in $PROXIES; do
  pids=${RSS_PIDS[$p]:-${PID_OF[$p]}}
  idle=$(rss_kb $pids)
  port=$(url "$p" http | sed 's#.*:\([0-9]*\)/$#\1#')
  coproc HOLD { python3 "$HERE/idle_conns.py" 127.0.0.1 "$port" "$IDLE" 60; }
  read -r ready <&"${HOLD[0]}" || ready="failed"
  held=$(rss_kb $pids)
  kill "$HOLD_PID" 2>/dev/null || true; wait "$HOLD_PID" 2>/dev/null || true
  printf "  %-14s idle %7d KB   with %s: %7d KB   (%s)\n" "$p" "$idle" "$IDLE" "$held" "$ready"
  echo "$idle $held" > "$W/rss.$p"
  sleep 1
done

echo "== RESULT (Rampart / nginx, medians; throughput > 1 and p99 < 1 favour Rampart)"
for p in $PROXIES; do [ "$p" = nginx ] && continue
  for s in http https; do for c in $CONNS; do
    awk -v p="$p" -v s=$s -v c="$c" -v r1="$(median "$W/res.$p.$s.$c" 1)" -v r0="$(median "$W/res.nginx.$s.$c" 1)" \
      -v l1="$(median "$W/res.$p.$s.$c" 2)" -v l0="$(median "$W/res.nginx.$s.$c" 2)" \
      'BEGIN{printf "  %s %s c=%s: throughput %.2fx  p99 %.2fx\n", p, s, c, r1 / (r0 > 0 ? r0 : 1), l1 / (l0 > 0 ? l0 : 1)}'
  done; done
done
