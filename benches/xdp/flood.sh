#!/usr/bin/env bash
# Drop cost under a flood on veth: Rampart's XDP program against nftables dropping the same flood, side by side
# in one run, and the proxy's throughput for legitimate requests during the flood.
#
#   cargo xtask bench xdp-flood            (builds Rampart, installs trafgen/nftables/wrk/perf, runs this)
#   T=5 REPS=3 N=100000 XDP_MODE=native bash benches/xdp/flood.sh   (RAMPART_BIN must point at a built rampart)
#
# Method (after ../shared/bench/xdp/README-xdp-vs-nft.md): a namespace floods 64-byte UDP packets from a spoofed
# source with trafgen pinned to CPU 0. On veth the receive path runs in the sender's softirq, so the sender's
# own cost (~1.6 us/packet in a VM) dominates packets per second; the comparison is therefore made on CPU time
# per packet (perf task-clock of the sender, plus ksoftirqd/0 and any helper), minus the cost of the same flood
# dropped on the sender's own egress ("sender-only"). What remains is the receive-and-drop path being measured.
# Both sides hold N deny prefixes: Rampart in its LPM tries (through xdp.deny), nftables in an interval set.
#
# Second, the same comparison without trafgen's skbs: rampart-framegen (benches/xdp/framegen.rs) makes the
# kernel generate page-pool XDP frames and redirect them out of the namespace's veth, so the host side receives
# XDP frames as from a NIC driver's ring: Rampart's XDP judges them before any skb exists, while nftables needs
# the skb the host veth builds from each frame (NAPI switched on with GRO, as drivers use it). Same CPU-time
# method; the baseline is the generator dropping its own frames ("gen-only"); packets counted at the receiver.
#
# Then: wrk (in the namespace, from a source that is not denied) against Rampart's proxy, pinned with its
# upstream to CPU 1, without and with the flood on CPU 0; the ratio is the throughput kept under the flood.
# All traffic stays inside the namespace and veth pair created here; everything is removed on exit.
set -euo pipefail
T=${T:-5}; REPS=${REPS:-3}; N=${N:-100000}; WRK_T=${WRK_T:-10}
BIN=${RAMPART_BIN:?set RAMPART_BIN to the rampart binary}
GEN=${FRAMEGEN_BIN:?set FRAMEGEN_BIN to the rampart-framegen binary}
NS=rbflood; H=rbfh; P=rbfp; FLOOD_SRC=10.203.0.2; CLIENT=10.203.0.3; HOST=10.203.0.1
W=$(mktemp -d /tmp/rampart-flood.XXXX); PIDS=()
PIN=/sys/fs/bpf/rampart-bench-flood
stop_all() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; }; done; PIDS=(); }
cleanup() { stop_all; nft delete table netdev rbf 2>/dev/null || true; nft delete table ip rbf 2>/dev/null || true
  ip netns del $NS 2>/dev/null || true; ip link del $H 2>/dev/null || true; rm -rf "$PIN" "$W"; }
trap cleanup EXIT INT TERM
[ "$(id -u)" = 0 ] || { echo "run as root"; exit 2; }
for t in trafgen nft ip python3 taskset perf wrk ethtool; do command -v $t >/dev/null || { echo "missing $t"; exit 2; }; done
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs"; exit 2; }

# Two queues per side, like a multi-queue NIC: XPS sends each CPU's packets through its own queue, so the flood
# (CPU 0) and the legitimate clients (CPU 1) reach the host on separate receive queues and NAPI contexts.
ip netns add $NS
ip link add $H numtxqueues 2 numrxqueues 2 type veth peer name $P numtxqueues 2 numrxqueues 2
ip link set $P netns $NS
ip addr add $HOST/24 dev $H; ip link set $H up
ip netns exec $NS ip addr add $CLIENT/24 dev $P; ip netns exec $NS ip link set $P up; ip netns exec $NS ip link set lo up
ip netns exec $NS sh -c "echo 1 > /sys/class/net/$P/queues/tx-0/xps_cpus; echo 2 > /sys/class/net/$P/queues/tx-1/xps_cpus"
sleep 1
# One UDP frame from the spoofed FLOOD_SRC to HOST:12346 (checksummed IPv4 header, no UDP checksum).
python3 - "$(cat /sys/class/net/$H/address)" "$(ip netns exec $NS cat /sys/class/net/$P/address)" "$W/udp.hex" \
  > "$W/udp.cfg" <<'PY'
import sys
d = [int(x, 16) for x in sys.argv[1].split(':')]; s = [int(x, 16) for x in sys.argv[2].split(':')]
ip = [0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 203, 0, 2, 10, 203, 0, 1]
c = sum((ip[i] << 8) + ip[i + 1] for i in range(0, 20, 2)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
c = ~c & 0xffff; ip[10] = c >> 8; ip[11] = c & 0xff
f = d + s + [8, 0] + ip + [0x30, 0x39, 0x30, 0x3a, 0, 26, 0, 0] + [0x41] * 18
print("{ " + ", ".join("0x%02x" % x for x in f) + " }")
open(sys.argv[3], "w").write(bytes(f).hex())
PY
# N random IPv4 prefixes (outside 10.203.0.0/16) plus the flood source, for both sides.
python3 - "$N" > "$W/prefixes.txt" <<'PY'
import random, sys
random.seed(20261124)
for _ in range(int(sys.argv[1])):
    n = random.randint(16, 32); a = random.getrandbits(32) | 0x01000000
    if (a >> 16) == (10 << 8 | 203): continue
    a &= (0xffffffff << (32 - n)) & 0xffffffff
    print("%d.%d.%d.%d/%d" % (a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255, n))
PY
echo "10.203.0.2/32" >> "$W/prefixes.txt"

KSI=$(pgrep -x ksoftirqd/0 || true)
rt() { [ -n "${1:-}" ] && awk '{print $1}' "/proc/$1/schedstat" 2>/dev/null || echo 0; }
# One flood of T seconds; prints and records: handled packets/s, CPU ns per packet.
flood() {
  local name=$1 tx0 tx1 k0 k1 tc n
  tx0=$(ip netns exec $NS cat /sys/class/net/$P/statistics/tx_packets); k0=$(rt "$KSI")
  perf stat -x, -e task-clock -o "$W/perf.txt" -- ip netns exec $NS timeout "$T" taskset -c 0 \
    trafgen --dev $P --conf "$W/udp.cfg" --cpus 1 -q >/dev/null 2>&1 || true
  tx1=$(ip netns exec $NS cat /sys/class/net/$P/statistics/tx_packets); k1=$(rt "$KSI")
  tc=$(awk -F, '/task-clock/{printf "%.0f", $1*1e6}' "$W/perf.txt")
  n=$((tx1 - tx0))
  # Dropped on egress, the packets never count as transmitted: take the rule's counter (new each run).
  [ "$name" = sender-only ] && n=$(ip netns exec $NS nft list ruleset | awk '/rbfcount/{for (i = 1; i <= NF; i++) if ($i == "packets") {print $(i + 1); exit}}')
  [ "$n" -gt 0 ] || n=1
  local cost=$(( (tc + k1 - k0) / n ))
  printf "  %-14s pps=%-8d cpu_ns/pkt=%d\n" "$name" $((n / T)) "$cost"
  echo "$((n / T)) $cost" >> "$W/$name"
}
median() { sort -n -k"$2" "$W/$1" | awk -v k="$2" '{a[NR]=$k} END{print a[int((NR+1)/2)]}'; }

setup_sender-only() { ip netns exec $NS nft add table netdev rbf
  ip netns exec $NS nft add chain netdev rbf c "{ type filter hook egress device $P priority 0; }"
  ip netns exec $NS nft add rule netdev rbf c counter drop comment rbfcount; }
teardown_sender-only() { ip netns exec $NS nft delete table netdev rbf; }
nft_set() { { echo "add table netdev rbf"; echo "add set netdev rbf deny4 { type ipv4_addr; flags interval; auto-merge; }"
  awk '{if (n % 5000 == 0) { if (n) print " }"; printf "add element netdev rbf deny4 {" } else printf ","; printf " %s", $1; n++} END {print " }"}' "$W/prefixes.txt"; } > "$W/set.nft"; }
setup_nft-ingress() { [ -f "$W/set.nft" ] || nft_set; nft -f "$W/set.nft"
  nft add chain netdev rbf c "{ type filter hook ingress device $H priority -500; }"; nft add rule netdev rbf c ip saddr @deny4 drop; }
teardown_nft-ingress() { nft delete table netdev rbf; }
setup_nft-prerouting() { nft add table ip rbf; nft add chain ip rbf c "{ type filter hook prerouting priority -300; }"
  nft add rule ip rbf c ip saddr $FLOOD_SRC drop; }
teardown_nft-prerouting() { nft delete table ip rbf; }
rampart_config() {
  { echo "server: {host: $HOST, port: 18080}"
    echo "proxy: {upstreams: [{name: app, servers: [{host: 127.0.0.1, port: 18000}]}]}"
    echo "admin: {port: 18081}"
    echo "waf: {enabled: false}"
    echo "logging: {level: warn, access_log: {enabled: false}}"
    echo "xdp:"
    echo "  interfaces: [$H]"
    echo "  attach_mode: ${XDP_MODE:-native}"
    echo "  pin_path: $PIN"
    echo "  record_file: $W/lists.db"
    echo "  drop_events: {sample_rate: 0.0}"
    echo "  deny:"; sed 's/^/    - /' "$W/prefixes.txt"; } > "$W/rampart.yaml"
}
start_rampart() {
  [ -f "$W/rampart.yaml" ] || rampart_config
  taskset -c 1 "$BIN" echo-upstream --listen 127.0.0.1:18000 > "$W/upstream.log" 2>&1 & PIDS+=($!)
  RAMPART_SERVER__WORKERS=1 taskset -c 1 "$BIN" run --config "$W/rampart.yaml" > "$W/rampart.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 300); do curl -s -m 1 http://127.0.0.1:18081/health >/dev/null 2>&1 && return; sleep 0.2; done
  cat "$W/rampart.log"; exit 1
}
setup_rampart-xdp() { start_rampart; }
teardown_rampart-xdp() { stop_all; rm -rf "$PIN"; }

SC="sender-only nft-prerouting nft-ingress rampart-xdp"
echo "== drop cost on veth: T=${T}s x ${REPS} interleaved, ${N} deny prefixes, $(nproc) CPUs, kernel $(uname -r)"
for r in $(seq "$REPS"); do
  echo "-- rep $r"
  for s in $SC; do "setup_$s"; flood "$s"; "teardown_$s"; done
done
echo "== median of $REPS: scenario pps cpu_ns/pkt drop_path_ns/pkt (minus sender-only)"
base=$(median sender-only 2)
for s in $SC; do printf "  %-14s %9s %7s %7s\n" "$s" "$(median "$s" 1)" "$(median "$s" 2)" "$(( $(median "$s" 2) - base ))"; done

# XDP frames handed to the host veth (all receive queues), whatever then happens to them.
xdp_rx() { ethtool -S $H | awk '/rx_queue_[0-9]+_xdp_packets/{n += $2} END{print n + 0}'; }
# One flood of generated XDP frames; records received packets/s and CPU ns per packet under "f-NAME".
fflood() {
  local name=$1 x0 x1 k0 k1 tc n sent args="--ifindex $(ip netns exec $NS cat /sys/class/net/$P/ifindex)"
  [ "$name" = gen-only ] && args=--drop
  x0=$(xdp_rx); k0=$(rt "$KSI")
  perf stat -x, -e task-clock -o "$W/perf.txt" -- ip netns exec $NS taskset -c 0 \
    "$GEN" $args --frame "$(cat "$W/udp.hex")" --seconds "$T" --max-packets 200000000 > "$W/gen.txt"
  x1=$(xdp_rx); k1=$(rt "$KSI")
  tc=$(awk -F, '/task-clock/{printf "%.0f", $1*1e6}' "$W/perf.txt")
  sent=$(sed -n 's/^packets=\([0-9]*\).*/\1/p' "$W/gen.txt")
  n=$((x1 - x0)); [ "$name" = gen-only ] && n=$sent
  [ "$n" -gt 0 ] || n=1
  local cost=$(( (tc + k1 - k0) / n ))
  printf "  %-14s sent=%-9d received=%-9d pps=%-8d cpu_ns/pkt=%d\n" "$name" "$sent" "$n" $((n / T)) "$cost"
  echo "$((n / T)) $cost" >> "$W/f-$name"
}
echo "== drop cost for XDP frames (no skb before the drop path): T=${T}s x ${REPS} interleaved"
ethtool -K $H gro on >/dev/null
for r in $(seq "$REPS"); do
  echo "-- rep $r"
  for s in $SC; do [ "$s" = sender-only ] && s=gen-only; [ "$s" = gen-only ] || "setup_$s"; fflood "$s"
    [ "$s" = gen-only ] || "teardown_$s"; done
done
ethtool -K $H gro off >/dev/null
echo "== median of $REPS: scenario pps cpu_ns/pkt drop_path_ns/pkt (minus gen-only)"
fbase=$(median f-gen-only 2)
for s in gen-only nft-prerouting nft-ingress rampart-xdp; do
  printf "  %-14s %9s %7s %7s\n" "$s" "$(median "f-$s" 1)" "$(median "f-$s" 2)" "$(( $(median "f-$s" 2) - fbase ))"; done

echo "== proxy throughput for legitimate requests (wrk from $CLIENT, proxy+upstream pinned to CPU 1, ${WRK_T}s)"
start_rampart
wrk_rps() { ip netns exec $NS taskset -c 1 wrk -t1 -c50 -d"${WRK_T}s" "http://$HOST:18080/" | awk '/Requests\/sec/{print $2}'; }
quiet=$(wrk_rps)
drops() { curl -s http://127.0.0.1:18081/metrics | awk '/rampart_xdp_packets_total\{action="drop",reason="deny_list"\}/{print $2}'; }
ip netns exec $NS timeout $((WRK_T + 2)) taskset -c 0 trafgen --dev $P --conf "$W/udp.cfg" --cpus 1 -q >/dev/null 2>&1 & TG=$!
sleep 1
d0=$(drops); flooded=$(wrk_rps); d1=$(drops)
wait $TG 2>/dev/null || true
printf "  without flood: %s req/s   during flood: %s req/s   flood dropped by XDP meanwhile: %d packets/s\n" \
  "$quiet" "$flooded" "$(( (${d1%.*} - ${d0%.*}) / WRK_T ))"
stop_all

echo "== RESULT"
for n in nft-prerouting nft-ingress; do
  awk -v x="$(( $(median rampart-xdp 2) - base ))" -v f="$(( $(median $n 2) - base ))" -v n=$n 'BEGIN{
    printf "  drop path, %s : rampart-xdp = %.2fx (packets per CPU-second, XDP over nftables)\n", n, f / (x > 0 ? x : 1) }'
done
for n in nft-prerouting nft-ingress; do
  awk -v x="$(( $(median f-rampart-xdp 2) - fbase ))" -v f="$(( $(median f-$n 2) - fbase ))" -v n=$n 'BEGIN{
    printf "  XDP frames, %s : rampart-xdp = %.2fx (packets per CPU-second, XDP over nftables)\n", n, f / (x > 0 ? x : 1) }'
done
awk -v a="$flooded" -v b="$quiet" 'BEGIN{printf "  proxy throughput kept under the flood: %.0f%%\n", 100 * a / b}'
