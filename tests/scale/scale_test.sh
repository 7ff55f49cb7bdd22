#!/bin/bash
# Scale-out behind real load balancers (`make test-scale`): three morphd
# instances on loopback, behind HAProxy (TCP, send-proxy-v2, health
# checks) and nginx's stream module (TCP with PROXY v1, and UDP). It shows:
#
#   replies are correct through each balancer, which spreads them over all
#   three instances;
#   morphd sees the real client address through HAProxy (whoami, from a
#   client bound to 127.0.0.5); nginx's v1 headers are accepted on all three;
#   killing one instance mid-run loses no connection begun after it died:
#   HAProxy's health checks mark it down, nginx skips it, the others serve;
#   restarting the instances one by one while a client runs loses nothing
#   over HAProxy (drained through its runtime API first, as docs/scaling.md
#   says to).
#
# The configurations are tests/scale/{haproxy.cfg,nginx.conf,morphd.ini},
# which docs/scaling.md quotes: the test checks that the quotes are exact.
#
# usage: scale_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
client="$py $here/client.py"
dir=$(mktemp -d /tmp/morph-scale-XXXXXX)
chmod 755 "$dir"
pids=()

fail() {
    echo "FAIL: $*" >&2
    for f in "$dir"/*.log; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
    done
    exit 1
}
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# --- the docs quote the configurations exactly ------------------------------
for f in haproxy.cfg nginx.conf morphd.ini; do
    # the fenced block that follows "<!-- tests/scale/FILE -->"
    quoted=$(awk -v mark="<!-- tests/scale/$f -->" '
        $0 == mark { want = 1; next }
        want && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' "$root/docs/scaling.md")
    [ "$quoted" = "$(cat "$here/$f")" ] ||
        fail "docs/scaling.md does not quote tests/scale/$f exactly"
done
echo "ok: docs/scaling.md quotes the three configurations exactly"

# --- the Kubernetes example is valid YAML, and its morphd.ini is valid -----
awk '$0 == "<!-- kubernetes.yaml -->" { want = 1; next }
     want && /^```/ { if (inside) exit; inside = 1; next }
     inside { print }' "$root/docs/scaling.md" >"$dir/k8s.yaml"
$py - "$dir/k8s.yaml" "$dir/k8s-morphd.ini" <<'PY' || fail "the Kubernetes YAML in docs/scaling.md"
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
kinds = {d["kind"]: d for d in docs}
assert set(kinds) == {"ConfigMap", "Deployment", "Service"}, kinds.keys()
c = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
    assert c[probe]["httpGet"] == {"path": path, "port": 9464}, probe
ini = kinds["ConfigMap"]["data"]["morphd.ini"]
assert "metrics_listen = http://0.0.0.0:9464" in ini
ports = {(p["containerPort"], p["protocol"]) for p in c["ports"]}
assert ports == {(12000, "TCP"), (12000, "UDP"), (9464, "TCP")}, ports
svc = kinds["Service"]["spec"]
assert svc["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
assert {(p["port"], p["protocol"]) for p in svc["ports"]} == ports - {(9464, "TCP")}
open(sys.argv[2], "w").write(kinds["ConfigMap"]["data"]["morphd.ini"])
PY
# (the pod runs it as user 65534; this test runs as root, where morphd
# wants allow_root: the one key added)
"$build/morphd" -t -q -c "$dir/k8s-morphd.ini" --set morphd.allow_root=yes ||
    fail "morphd -t refuses the ConfigMap's morphd.ini"
echo "ok: the Kubernetes example parses (Deployment, Service, HTTP probes on /readyz and /healthz) and morphd -t takes its config"

# --- ports, configurations ---------------------------------------------------
read -r -a ports <<<"$($py -c '
import socket
socks = []
for _ in range(13):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
declare -A upper who udp
for i in 1 2 3; do
    upper[$i]=${ports[$((i * 3 - 3))]}
    who[$i]=${ports[$((i * 3 - 2))]}
    udp[$i]=${ports[$((i * 3 - 1))]}
done
lb_upper=${ports[9]} lb_who=${ports[10]} lb_tcp=${ports[11]} lb_udp=${ports[12]}

subst() { # TEMPLATE OUT [NAME=VALUE...]
    local t=$1 out=$2
    shift 2
    local args=(-e "s|@DIR@|$dir|g" -e "s|@PLUGIN_DIR@|$build/plugins|g"
        -e "s|@LB_UPPER@|$lb_upper|g" -e "s|@LB_WHO@|$lb_who|g"
        -e "s|@LB_NGINX_TCP@|$lb_tcp|g" -e "s|@LB_NGINX_UDP@|$lb_udp|g")
    for i in 1 2 3; do
        args+=(-e "s|@M${i}_UPPER@|${upper[$i]}|g" -e "s|@M${i}_WHO@|${who[$i]}|g"
            -e "s|@M${i}_UDP@|${udp[$i]}|g")
    done
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$here/$t" >"$out"
    ! grep -n '@[A-Z_0-9]*@' "$out" || fail "$out: a placeholder is left"
}
for i in 1 2 3; do
    subst morphd.ini "$dir/m$i.ini" NAME=m$i UPPER="${upper[$i]}" \
        WHO="${who[$i]}" UDP="${udp[$i]}"
done
subst haproxy.cfg "$dir/haproxy.cfg"
subst nginx.conf "$dir/nginx.conf"

declare -A mpid
start_morphd() { # N
    local i=$1 log=$dir/m$1.log
    : >"$log"
    "$build/morphd" -c "$dir/m$i.ini" --set morphd.allow_root=yes 2>>"$log" &
    mpid[$i]=$!
    pids+=("$!")
    for _ in $(seq 100); do
        grep -q "started" "$log" && return 0
        kill -0 "${mpid[$i]}" 2>/dev/null || fail "morphd m$i exited"
        sleep 0.05
    done
    fail "morphd m$i did not start"
}
stat() { # N SERVICE COUNTER
    "$build/morph" stats --json -s "$dir/m$1.sock" | $py -c '
import json, sys
print(json.load(sys.stdin)["services"][sys.argv[1]][sys.argv[2]])' "$2" "$3"
}
haproxy_cmd() { echo "$1" | socat - "UNIX-CONNECT:$dir/haproxy.sock"; }
# the status HAProxy gives server m$1 of backend morphd_upper (UP, DOWN, MAINT)
haproxy_status() {
    haproxy_cmd "show stat" | awk -F, -v s="m$1" '
        $1 == "morphd_upper" && $2 == s { print $18 }'
}
wait_status() { # N STATUS
    for _ in $(seq 100); do
        [ "$(haproxy_status "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    fail "HAProxy did not mark m$1 $2 (it says $(haproxy_status "$1"))"
}
# lost connections in a client's results begun at or after NS (0: all)
lost_since() { # FILE NS
    awk -v t="$2" '$1 >= t && $2 == "fail"' "$1" | wc -l
}
count() { wc -l <"$1"; }

for i in 1 2 3; do start_morphd "$i"; done
haproxy -f "$dir/haproxy.cfg" -db 2>"$dir/haproxy.log" &
pids+=("$!")
nginx -c "$dir/nginx.conf" -p "$dir" -g "daemon off;" 2>"$dir/nginx.log" &
pids+=("$!")
for _ in $(seq 100); do
    [ -S "$dir/haproxy.sock" ] && [ "$(haproxy_status 3)" = UP ] &&
        $client whoami 127.0.0.1 "$lb_tcp" 127.0.0.1 >/dev/null 2>&1 && break
    sleep 0.1
done
for i in 1 2 3; do wait_status "$i" UP; done
echo "ok: three morphd instances up behind HAProxy $(haproxy -v | head -1 | cut -d' ' -f3) and nginx $(nginx -v 2>&1 | cut -d/ -f2)"

# --- the real client address ------------------------------------------------
read -r lport reply < <($client whoami 127.0.0.1 "$lb_who" 127.0.0.5)
[[ "$reply" == "tcp 127.0.0.5 $lport who" ]] ||
    fail "through HAProxy whoami said '$reply', not 'tcp 127.0.0.5 $lport who'"
echo "ok: through HAProxy (PROXY v2) morphd sees the client: $reply"

# --- correct replies through each balancer, spread over all three ----------
$client run 127.0.0.1 "$lb_upper" 127.0.0.5 1.5 4 "$dir/haproxy-run"
[ "$(lost_since "$dir/haproxy-run" 0)" -eq 0 ] ||
    fail "through HAProxy: $(lost_since "$dir/haproxy-run" 0) lost: $(grep -m3 fail "$dir/haproxy-run")"
echo "ok: through HAProxy: $(count "$dir/haproxy-run") connections, all answered"
$client run 127.0.0.1 "$lb_tcp" 127.0.0.5 1.5 4 "$dir/nginx-run"
[ "$(lost_since "$dir/nginx-run" 0)" -eq 0 ] ||
    fail "through nginx: lost: $(grep -m3 fail "$dir/nginx-run")"
echo "ok: through nginx (TCP, PROXY v1): $(count "$dir/nginx-run") connections, all answered"
got=$($client udp 127.0.0.1 "$lb_udp" 90)
[ "$got" -eq 90 ] || fail "through nginx (UDP): $got of 90 datagrams answered"
echo "ok: through nginx (UDP): 90 of 90 datagrams answered"
for i in 1 2 3; do
    tcp_in=$(stat "$i" upper messages_in)
    hdrs=$(stat "$i" upper proxy_headers)
    udp_in=$(stat "$i" dgram messages_in)
    bad=$(( $(stat "$i" upper proxy_invalid) + $(stat "$i" upper proxy_untrusted) ))
    echo "   m$i: upper messages_in=$tcp_in proxy_headers=$hdrs (health checks included) invalid=$bad; dgram messages_in=$udp_in"
    [ "$tcp_in" -gt 0 ] && [ "$udp_in" -gt 0 ] || fail "m$i was given no work"
    [ "$bad" -eq 0 ] || fail "m$i refused PROXY headers from a balancer"
done

# --- kill one instance mid-run ---------------------------------------------
kill_mid_run() { # LB_PORT N NAME
    $client run 127.0.0.1 "$1" 127.0.0.5 4 4 "$dir/kill-$3" &
    local c=$!
    sleep 1.5
    kill -9 "${mpid[$2]}"
    wait "${mpid[$2]}" 2>/dev/null || true # its sockets are closed now
    local t
    t=$($client now)
    wait "$c"
    local lost after
    lost=$(lost_since "$dir/kill-$3" 0)
    after=$(lost_since "$dir/kill-$3" "$t")
    [ "$after" -eq 0 ] ||
        fail "$3: $after connections begun after m$2 died were lost: $(awk -v t="$t" '$1 >= t && $2 == "fail"' "$dir/kill-$3" | head -3)"
    echo "ok: $3: m$2 killed mid-run: $(count "$dir/kill-$3") connections, 0 lost after it died ($lost in flight at the kill)"
}
kill_mid_run "$lb_upper" 2 haproxy
wait_status 2 DOWN
echo "ok: HAProxy's health checks marked m2 DOWN"
kill_mid_run "$lb_tcp" 3 nginx
start_morphd 2
start_morphd 3
wait_status 2 UP
wait_status 3 UP

# --- restart one by one while a client runs, drained through HAProxy -------
$client run 127.0.0.1 "$lb_upper" 127.0.0.5 12 4 "$dir/rolling" &
c=$!
sleep 0.5
for i in 1 2 3; do
    haproxy_cmd "set server morphd_upper/m$i state drain" >/dev/null
    haproxy_cmd "set server morphd_upper/m$i state maint" >/dev/null
    for _ in $(seq 100); do # its connections have ended
        scur=$(haproxy_cmd "show stat" | awk -F, -v s="m$i" '
            $1 == "morphd_upper" && $2 == s { print $5 }')
        [ "$scur" = 0 ] && break
        sleep 0.05
    done
    kill -TERM "${mpid[$i]}"
    wait "${mpid[$i]}" || fail "m$i did not stop cleanly"
    start_morphd "$i"
    haproxy_cmd "set server morphd_upper/m$i state ready" >/dev/null
    wait_status "$i" UP
    echo "   m$i restarted"
done
wait "$c"
lost=$(lost_since "$dir/rolling" 0)
[ "$lost" -eq 0 ] || fail "rolling restart: $lost lost: $(grep -m3 fail "$dir/rolling")"
echo "ok: rolling restart of m1, m2, m3 under load: $(count "$dir/rolling") connections, 0 lost"
echo "PASS: test-scale"
