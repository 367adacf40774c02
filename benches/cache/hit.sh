#!/usr/bin/env bash
# Cache-hit throughput: Rampart with its response cache on against nginx with proxy_cache, side by side in one
# run, in front of the same upstream. Every measured request is a cache hit on both (one warm-up request
# fills each cache); the upstream's access count is checked to prove it.
#
#   cargo xtask bench cache                  (builds Rampart, runs this)
#   RAMPART_BIN=target/release/rampart bash benches/cache/hit.sh
#   Env: DURATION (8, seconds, at most 10), ROUNDS (3), CONNS (50), RAMPART_SHARED (the shared material).
#
# Method (after ../shared/bench/l7/README.md, whose upstream config is used as it is): one nginx upstream
# answering 100 bytes on 18001; nginx (1 worker, proxy_cache in memory-backed keys_zone, proxy_cache_valid 200
# 10m) on 18040 and Rampart (1 worker, WAF off, caching rule ttl 600) on 18041, both pinned to CPU 0; wrk
# pinned to CPU 1. wrk -t1 -cCONNS -dDURATION --latency, rounds interleaved; medians printed; the last line is
# ratio_vs_nginx=X.XX (median req/s Rampart / nginx). Loopback only; every load is bounded by DURATION.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${RAMPART_BIN:?set RAMPART_BIN to the rampart binary}
DURATION=${DURATION:-8}; ROUNDS=${ROUNDS:-3}; CONNS=${CONNS:-50}
[ "$DURATION" -le 10 ] 2>/dev/null || { echo "DURATION must be at most 10 seconds"; exit 2; }
SHARED=${RAMPART_SHARED:-}
for c in "$SHARED" "$ROOT/../shared" /work/shared; do [ -n "$c" ] && [ -d "$c/bench/l7/configs" ] && { SHARED=$c; break; }; done
[ -d "$SHARED/bench/l7/configs" ] || { echo "shared bench material not found; set RAMPART_SHARED"; exit 2; }
for t in nginx wrk taskset curl; do command -v $t >/dev/null || { echo "missing $t (apt-get install -y nginx wrk)"; exit 2; }; done
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs"; exit 2; }
ulimit -n 65536 2>/dev/null || true

W=$(mktemp -d /tmp/rampart-cache-bench.XXXX); mkdir -p "$W/t" "$W/cache"; PIDS=()
# nginx workers drop to an unprivileged user: they must be able to reach and write the cache directory.
chmod 755 "$W"; chmod 777 "$W/t" "$W/cache"
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT INT TERM
UP=18001; NGX=18040; RMP=18041
# The shared upstream, with an access log so that upstream requests can be counted.
sed -e "s#@W@#$W#g" -e "s#access_log off;#access_log $W/up.access;#" "$SHARED/bench/l7/configs/upstream.nginx.conf" > "$W/upstream.conf"
cat > "$W/nginx-cache.conf" <<NGX
pid $W/nc.pid; error_log $W/nc.err warn; worker_processes 1; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $W/t; proxy_temp_path $W/t; fastcgi_temp_path $W/t; uwsgi_temp_path $W/t; scgi_temp_path $W/t;
  proxy_cache_path $W/cache levels=1:2 keys_zone=c:10m max_size=256m inactive=10m use_temp_path=off;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NGX backlog=4096;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache c; proxy_cache_valid 200 10m; proxy_cache_lock on; add_header X-Cache \$upstream_cache_status; } } }
NGX
cat > "$W/rampart.yaml" <<YAML
server: {host: 127.0.0.1, port: $RMP, workers: 1, max_connections: 30000}
proxy:
  upstreams: [{name: app, servers: [{host: 127.0.0.1, port: $UP}]}]
  caching:
    enabled: true
    cache_rules: [{path: "/*", ttl: 600}]
admin: {enabled: false}
waf: {enabled: false}
logging: {level: warn}
xdp: {enabled: false}
YAML
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 did not open"; cat "$W"/*.log "$W"/*.err 2>/dev/null; exit 1; }
taskset -c 1 nginx -c "$W/upstream.conf" -p "$W" -e "$W/up.err" & PIDS+=($!)
taskset -c 0 nginx -c "$W/nginx-cache.conf" -p "$W" -e "$W/nc.err" & PIDS+=($!)
taskset -c 0 "$BIN" run --config "$W/rampart.yaml" > "$W/rampart.log" 2>&1 & PIDS+=($!)
wait_port $UP; wait_port $NGX; wait_port $RMP

# Warm both caches, then check that a second request is a hit on each.
for p in $NGX $RMP; do curl -s -o /dev/null "http://127.0.0.1:$p/"; done
ngx_status=$(curl -s -o /dev/null -D - "http://127.0.0.1:$NGX/" | awk -F': ' 'tolower($1)=="x-cache"{print $2}' | tr -d '\r')
rmp_status=$(curl -s -o /dev/null -D - "http://127.0.0.1:$RMP/" | awk -F': ' 'tolower($1)=="x-cache"{print $2}' | tr -d '\r')
[ "$ngx_status" = HIT ] || { echo "nginx is not answering from its cache (X-Cache: $ngx_status)"; curl -s -D - -o /dev/null "http://127.0.0.1:$NGX/"; cat "$W/nc.err"; exit 1; }
[ "$rmp_status" = HIT ] || { echo "Rampart is not answering from its cache (X-Cache: $rmp_status)"; cat "$W/rampart.log"; exit 1; }
upstream_before=$(wc -l < "$W/up.access")

to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.3f", v }'; }
one_run() {
  local out rps p50 p99 errs
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$1/" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1=="50%"{print $2}')"); p99=$(to_ms "$(echo "$out" | awk '$1=="99%"{print $2}')")
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
  echo "${rps:-0} ${p50:-0} ${p99:-0} ${errs}"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
declare -A RPS P50 P99
for r in $(seq 1 "$ROUNDS"); do
  for t in nginx_cache:$NGX rampart_cache:$RMP; do IFS=: read -r name port <<<"$t"
    res=$(one_run "$port"); read -r a b c extra <<<"$res"
    RPS[$name]+="$a "; P50[$name]+="$b "; P99[$name]+="$c "
    [ -n "${extra:-}" ] && echo "  round $r $name: $extra"
    echo "  round $r $name rps=$a p50=$b p99=$c"
  done
done
upstream_after=$(wc -l < "$W/up.access")
echo "conns=$CONNS duration=${DURATION}s rounds=$ROUNDS; proxies on CPU 0, wrk on CPU 1 (medians); upstream requests during the load: $((upstream_after - upstream_before))"
for name in nginx_cache rampart_cache; do
  printf '%-14s req/s=%-10s p50_ms=%-8s p99_ms=%s\n' "$name" "$(echo "${RPS[$name]}" | median)" "$(echo "${P50[$name]}" | median)" "$(echo "${P99[$name]}" | median)"
done
n=$(echo "${RPS[nginx_cache]}" | median); o=$(echo "${RPS[rampart_cache]}" | median)
awk -v o="$o" -v n="$n" 'BEGIN{printf "ratio_vs_nginx=%.2f\n", (n>0? o/n : 0)}'
