#!/bin/bash
# The benchmark suite: morphd against a hand-written libuv server and a raw
# epoll server, measured side by side in one run, on loopback.
#
#   bench/run.sh BUILD_DIR [OUTPUT_DIR]
#
# Servers run pinned to CPU 0, the load generator to CPU 1. Servers are
# interleaved round by round (ROUNDS, default 3), each round DURATION
# seconds (default 3); the libuv server runs twice per round (libuv, libuv2)
# as an A/A control that shows the noise. For each scenario the table gives
# the median over rounds of each server's requests/s and of its CPU time per
# request (utime+stime from /proc/PID/stat over the window, divided by the
# replies), and the median of the per-round ratios to the epoll server.
# Writes OUTPUT_DIR/results.md and OUTPUT_DIR/tcp-throughput.png.
# ONLY=REGEX runs just the parts whose name matches (tcp, udp, stream,
# chain, pending, isolation, isolation-udp, isolation-memory, lua,
# lua-udp, callgrind,
# idle, tls, first-reply, http, http-idle, ws, ws-idle, detect, plot), e.g. ONLY=udp.
set -euo pipefail
B=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${2:-$B/bench-results}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
mkdir -p "$OUT"
LG=$B/bench/loadgen
TICK_US=$((1000000 / $(getconf CLK_TCK)))
CPUS=$(nproc)
SERVER_CPU=0
CLIENT_CPU=$((CPUS > 1 ? 1 : 0))
work=$(mktemp -d /tmp/morph-bench-XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768-)
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

morphd_ini() { # PORT TRANSFORM FRAMING [SERVICE-LINES] [MORPHD-LINES]; LISTEN= other endpoints
    cat > "$work/morphd-$1.ini" <<INI
[morphd]
plugin_dir = $B/plugins
log_level = warn
allow_root = yes
${5:-}

[service bench]
listen = ${LISTEN:-tcp://127.0.0.1:$1 udp://127.0.0.1:$1}
transform = $2
framing = $3
max_connections = 100000
${4:-}
INI
    echo "$work/morphd-$1.ini"
}

morphd_tls_ini() { # PORT: the uppercase service over tls://, line framing
    cat > "$work/morphd-tls-$1.ini" <<INI
[morphd]
plugin_dir = $B/plugins
log_level = warn
allow_root = yes

[service bench]
listen = tls://127.0.0.1:$1
transform = uppercase
framing = line
max_connections = 100000
tls_certificate = $SRC/config/tls/example-cert.pem
tls_key = $SRC/config/tls/example-key.pem
INI
    echo "$work/morphd-tls-$1.ini"
}

lua_ini() { # PORT: the uppercase service with the Lua script lua_upper
    mkdir -p "$work/lua"
    cat > "$work/lua/lua_upper.lua" <<'LUA'
return {
    chunk_safe = true,
    transform = function(message) return message:upper() end,
}
LUA
    local ini
    ini=$(morphd_ini "$1" lua_upper stream)
    sed -i "s|^plugin_dir = .*|plugin_dir = $work/lua|" "$ini"
    echo "$ini"
}

luacodec_ini() { # PORT: uppercase behind a Lua codec of u32be frames
    mkdir -p "$work/luacodec"
    cat > "$work/luacodec/u32.lua" <<'LUA'
return {
    decode = function(buffer)
        if #buffer < 4 then return nil end
        local n = string.unpack(">I4", buffer)
        if #buffer < 4 + n then return nil end
        return buffer:sub(5, 4 + n), 4 + n
    end,
    encode = function(reply) return string.pack(">s4", reply) end,
}
LUA
    local ini
    ini=$(morphd_ini "$1" uppercase u32)
    sed -i "s|^plugin_dir = .*|plugin_dir = $B/plugins $work/luacodec|" "$ini"
    echo "$ini"
}

server_cmd() { # NAME PORT
    case $1 in
    epoll) echo "$B/bench/baseline_epoll $2" ;;
    libuv|libuv2) echo "$B/bench/baseline_libuv $2" ;;
    morphd) echo "$B/morphd -c $(morphd_ini "$2" uppercase stream)" ;;
    morphd-reverse) echo "$B/morphd -c $(morphd_ini "$2" reverse line)" ;;
    morphd-chain) echo "$B/morphd -c $(morphd_ini "$2" 'uppercase | reverse' line)" ;;
    morphd-echo) echo "$B/morphd -c $(morphd_ini "$2" 'echo | uppercase' stream)" ;;
    morphd-delay0) echo "$B/morphd -c $(morphd_ini "$2" 'delay | uppercase' stream 'delay.ms = 0')" ;;
    morphd-tls) echo "$B/morphd -c $(morphd_tls_ini "$2")" ;;
    morphd-line) echo "$B/morphd -c $(morphd_ini "$2" uppercase line)" ;;
    morphd-ws) echo "$B/morphd -c $(LISTEN="http://127.0.0.1:$2" morphd_ini "$2" uppercase line)" ;;
    morphd-detect) echo "$B/morphd -c $(morphd_ini "$2" uppercase line "$(printf 'detect = tls http\ntls_certificate = %s\ntls_key = %s' "$SRC/config/tls/example-cert.pem" "$SRC/config/tls/example-key.pem")")" ;;
    morphd-length) echo "$B/morphd -c $(morphd_ini "$2" uppercase length)" ;;
    morphd-netstring) echo "$B/morphd -c $(morphd_ini "$2" uppercase netstring)" ;;
    morphd-delimiter) echo "$B/morphd -c $(morphd_ini "$2" uppercase delimiter)" ;;
    morphd-luacodec) echo "$B/morphd -c $(luacodec_ini "$2")" ;;
    morphd-metrics) echo "$B/morphd -c $(morphd_ini "$2" uppercase stream "" "metrics_listen = http://127.0.0.1:$(($2 + 1))")" ;;
    morphd-process) echo "$B/morphd -c $(morphd_ini "$2" uppercase stream "" 'isolation = process')" ;;
    morphd-lua) echo "$B/morphd -c $(lua_ini "$2")" ;;
    morphd-proxy) echo "$B/morphd -c $(morphd_ini "$2" uppercase stream "$(printf 'proxy_protocol = v2\nproxy_from = 127.0.0.1')")" ;;
    esac
}

start_server() { # NAME PORT
    # shellcheck disable=SC2046
    taskset -c "$SERVER_CPU" $(server_cmd "$1" "$2") 2>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 500); do
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
        sleep 0.01
    done
    echo "bench: $1 did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# CPU ticks of a server and its children (isolation = process: the worker
# processes do the work)
ticks() {
    local t=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }

# run NAME MODE LOADGEN-ARGS... -> prints "rps cpu_us_per_req mbps p99_us"
run() {
    local name=$1 mode=$2 port
    shift 2
    port=$(free_port)
    start_server "$name" "$port"
    local t0 t1 out expect=upper
    case $name in
    morphd-reverse) expect=reverse ;;
    morphd-chain) expect=upper-reverse ;;
    esac
    local extra=() scraper=
    [ "$name" = morphd-proxy ] && extra=(-P) # it sends what a balancer sends
    case $name in # the framing the service speaks
    morphd-length|morphd-luacodec) extra=(-f length) ;;
    morphd-netstring) extra=(-f netstring) ;;
    morphd-delimiter) extra=(-f delimiter) ;;
    morphd-ws) extra=(-f ws) ;; # a WebSocket each, 64 B text messages
    esac
    if [ "$name" = morphd-metrics ]; then # Prometheus' default pace is 15 s
        (while :; do curl -s -o /dev/null "http://127.0.0.1:$((port + 1))/metrics"; sleep 1; done) &
        scraper=$!
    fi
    t0=$(ticks "$server_pid")
    out=$(taskset -c "$CLIENT_CPU" "$LG" "$mode" "$port" -d "$DURATION" -x "$expect" "${extra[@]}" "$@")
    t1=$(ticks "$server_pid")
    if [ -n "$scraper" ]; then kill "$scraper"; wait "$scraper" 2>/dev/null || true; fi
    stop_server
    local req rps mbps p99 errors
    req=$(echo "$out" | field requests)
    rps=$(echo "$out" | field rps)
    mbps=$(echo "$out" | field mbps)
    p99=$(echo "$out" | field p99_us)
    errors=$(echo "$out" | field errors)
    [ "$errors" = 0 ] || echo "bench: $name $mode: $errors errors" >&2
    awk -v r="$rps" -v q="$req" -v t=$((t1 - t0)) -v u="$TICK_US" -v m="$mbps" -v p="$p99" \
        'BEGIN { printf "%s %.3f %s %s\n", r, (q > 0 ? t * u / q : 0), m, p }'
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# ratio DATA SERVER BASE COLUMN: median over rounds of SERVER's column
# divided by BASE's in the same round
ratio() {
    awk -v s="$2" -v b="$3" -v c="$4" '$2 == s {x[$1] = $c} $2 == b {y[$1] = $c}
        END {for (r in x) if (y[r] > 0) printf "%.3f\n", x[r] / y[r]}' "$1" | median
}

# scenario TITLE SERVERS MODE NAME ARGS... : interleaved rounds, medians,
# ratios (NAME is what ONLY matches)
RESULTS=$OUT/results.md
ONLY=${ONLY:-.}
wanted() { echo "$1" | grep -Eq "$ONLY"; }
scenario() {
    local title=$1 servers=$2 mode=$3 name=$4
    shift 4
    wanted "$name" || return 0
    local data=$work/data
    : > "$data"
    for round in $(seq "$ROUNDS"); do
        # rotate the order each round so no server always goes first
        local order
        order=$(echo $servers | tr ' ' '\n' | awk -v r="$round" '{a[NR]=$0} END {for (i = 0; i < NR; i++) print a[(i + r) % NR + 1]}')
        for s in $order; do
            echo "$round $s $(run "$s" "$mode" "$@")" >> "$data"
        done
    done
    {
        echo
        echo "### $title"
        echo
        echo "| server | req/s | CPU µs/req | MB/s | p99 µs | req/s ÷ epoll | CPU ÷ epoll | req/s ÷ libuv | CPU ÷ libuv |"
        echo "|---|---|---|---|---|---|---|---|---|"
        for s in $servers; do
            local rps cpu mbps p99 rr cr cu
            rps=$(awk -v s="$s" '$2 == s {print $3}' "$data" | median)
            cpu=$(awk -v s="$s" '$2 == s {print $4}' "$data" | median)
            mbps=$(awk -v s="$s" '$2 == s {print $5}' "$data" | median)
            p99=$(awk -v s="$s" '$2 == s {print $6}' "$data" | median)
            rr=-; cr=-; ru=-; cu=-
            if echo "$servers" | grep -qw epoll; then
                if [ "$mode" = tcp-stream ]; then
                    rr=$(ratio "$data" "$s" epoll 5)
                else
                    rr=$(ratio "$data" "$s" epoll 3)
                    cr=$(ratio "$data" "$s" epoll 4)
                fi
            fi
            if echo "$servers" | grep -qw libuv; then
                if [ "$mode" = tcp-stream ]; then
                    ru=$(ratio "$data" "$s" libuv 5)
                else
                    ru=$(ratio "$data" "$s" libuv 3)
                    cu=$(ratio "$data" "$s" libuv 4)
                fi
            fi
            printf "| %s | %.0f | %.2f | %.1f | %s | %s | %s | %s | %s |\n" "$s" "$rps" "$cpu" \
                "$mbps" "$p99" "$rr" "$cr" "$ru" "$cu"
        done
    } | tee -a "$RESULTS"
}

{
    echo "## Results"
    echo
    echo "$(date -u +%Y-%m-%d), $(uname -r), $CPUS CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
    echo "servers on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU, $ROUNDS rounds of ${DURATION} s, medians."
} | tee "$RESULTS"

scenario "TCP request/response: 64-byte messages, 100 connections, 1 worker" \
    "epoll libuv libuv2 morphd" tcp-rr tcp -c 100 -s 64
scenario "UDP request/response: 64-byte datagrams, 32 clients" \
    "epoll libuv libuv2 morphd" udp-rr udp -c 32 -s 64
scenario "TCP streaming through uppercase, one connection (MB/s)" \
    "epoll libuv morphd" tcp-stream stream
# versus TITLE BASE SERVER NAME WHAT: BASE and SERVER side by side (TCP,
# 100 connections of 64 B), and the median over rounds of SERVER's CPU per
# request divided by BASE's in the same round
versus() {
    scenario "$1" "$2 $3" tcp-rr "$4" -c 100 -s 64
    if wanted "$4"; then
        echo
        echo "CPU per request $5 (median of per-round ratios): $(ratio "$work/data" "$3" "$2" 4)"
    fi | tee -a "$RESULTS"
}

versus "Line framing: reverse alone, and the chain uppercase | reverse (100 connections)" \
    morphd-reverse morphd-chain chain "of the chain ÷ reverse alone"

# answering later: the same chain shape, one plugin deferring every message
# to a 0 ms timer on the loop (the whole pending-reply path) against one
# answering at once
versus "Answering later: delay (timer, 0 ms) | uppercase against echo | uppercase (TCP, 100 connections)" \
    morphd-echo morphd-delay0 pending \
    "of delay.ms = 0 ÷ the synchronous echo | uppercase"

# behind a balancer: PROXY v2 headers read once per connection, then the
# same long-lived request/response as without
versus "Behind a load balancer: proxy_protocol = v2 against none (TCP, 64 B, 100 long-lived connections)" \
    morphd morphd-proxy proxy "with proxy_protocol = v2 ÷ without"

# scraped every second (1 s is 15 times Prometheus' default pace): the
# scrape thread's CPU counts, as it is morphd's
versus "Metrics scraped every second against none (TCP, 64 B, 100 connections)" \
    morphd morphd-metrics metrics "scraped every second ÷ not scraped"

# isolation = process against threads: the same single worker, in a
# process of its own behind the main process; CPU summed over both
versus "Worker processes: isolation = process against thread (TCP, 64 B, 100 connections, 1 worker)" \
    morphd morphd-process isolation "of isolation = process ÷ thread"
scenario "Worker processes: isolation = process against thread (UDP, 64 B, 32 clients, 1 worker)" \
    "morphd morphd-process" udp-rr isolation-udp -c 32 -s 64
if wanted isolation-udp; then
    echo
    echo "CPU per request of isolation = process ÷ thread, UDP (median of per-round ratios): $(ratio "$work/data" morphd-process morphd 4)"
fi | tee -a "$RESULTS"

# framings (issue 23): each against line framing on the same load, 64 B
# on the wire, frame included
versus "Framing: length (u32be) against line (TCP, 64 B, 100 connections)" \
    morphd-line morphd-length framing-length "of framing = length ÷ line"
versus "Framing: netstring against line (TCP, 64 B, 100 connections)" \
    morphd-line morphd-netstring framing-netstring "of framing = netstring ÷ line"
versus "Framing: delimiter (NUL) against line (TCP, 64 B, 100 connections)" \
    morphd-line morphd-delimiter framing-delimiter "of framing = delimiter ÷ line"
versus "detect = tls http on a plain tcp:// client against none (line framing, 64 B, 100 connections)" \
    morphd-line morphd-detect detect "with detect = tls http ÷ without"
versus "WebSocket: 64 B text messages over http:// against tcp:// line framing (100 connections)" \
    morphd-line morphd-ws ws "of a WebSocket message ÷ a line"
versus "A Lua codec of u32be frames against the built-in length (TCP, 64 B, 100 connections)" \
    morphd-length morphd-luacodec luacodec "of the Lua codec ÷ framing = length"

# framing = resp with echo against redis-server's own ECHO, both driven by
# redis-benchmark (50 clients, a 64 B argument, pipelines of 1 and 16):
# server CPU per request, side by side in each round
if wanted resp && command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
    echo
    echo "== resp: morphd (echo, framing = resp) against redis-server, ECHO of 64 B, 50 clients (CPU us per request)"
    arg=$(printf 'x%.0s' $(seq 64))
    for pl in 1 16; do
        : > "$work/resp.$pl"
        for r in $(seq "$ROUNDS"); do
            for s in redis morphd; do
                port=$(free_port)
                if [ $s = redis ]; then
                    taskset -c "$SERVER_CPU" redis-server --port "$port" --bind 127.0.0.1 \
                        --save '' --appendonly no --daemonize no > "$work/server.log" 2>&1 &
                else
                    taskset -c "$SERVER_CPU" "$B/morphd" -c "$(morphd_ini "$port" echo resp)" 2>"$work/server.log" &
                fi
                server_pid=$!
                for _ in $(seq 500); do
                    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
                    sleep 0.01
                done
                n=$((pl == 1 ? 200000 : 1000000))
                t0=$(ticks "$server_pid")
                taskset -c "$CLIENT_CPU" redis-benchmark -p "$port" -c 50 -n "$n" -P "$pl" -q ECHO "$arg" > "$work/rb.out" 2>&1
                t1=$(ticks "$server_pid")
                stop_server
                us=$(awk -v t=$((t1 - t0)) -v u="$TICK_US" -v q="$n" 'BEGIN { printf "%.3f", t * u / q }')
                echo "round $r pipeline $pl $s: $us us per request ($(grep -o '[0-9.]* requests per second' "$work/rb.out" | head -1))"
                echo "$s $us" >> "$work/resp.$pl"
            done
        done
        m=$(awk '$1 == "morphd" {print $2}' "$work/resp.$pl" | paste -sd' ')
        b=$(awk '$1 == "redis" {print $2}' "$work/resp.$pl" | paste -sd' ')
        ratio_med=$(paste <(echo "$m" | tr ' ' '\n') <(echo "$b" | tr ' ' '\n') | awk '{print $1 / $2}' | median)
        echo "CPU per request of morphd (framing = resp, echo) ÷ redis-server, pipeline $pl (median of per-round ratios): $ratio_med"
    done | tee -a "$RESULTS"
fi

# HTTP/1.1: morphd's http:// endpoint with uppercase against Debian's
# nginx answering the same with its Lua module (content_by_lua_block:
# string.upper of the body) and with njs (toUpperCase), each one process
# (master_process off) pinned to the server CPU, driven by wrk (keep-alive,
# 100 connections, 64 B POST bodies) on the other: server CPU per request,
# side by side in each round (issue 24's figure: <= 0.7x both).
nginx_http_conf() { # KIND PORT: lua or njs
    local mod
    if [ "$1" = lua ]; then
        mod="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
    else
        mod="load_module /usr/lib/nginx/modules/ngx_http_js_module.so;"
        cat > "$work/upper.js" <<'JS'
function upper(r) {
    r.headersOut['Content-Type'] = r.headersIn['Content-Type'] || 'application/octet-stream';
    r.return(200, (r.requestText || '').toUpperCase());
}
export default { upper };
JS
    fi
    local handler
    if [ "$1" = lua ]; then
        handler='content_by_lua_block {
                ngx.req.read_body()
                ngx.header.content_type = ngx.var.content_type or "application/octet-stream"
                ngx.print(string.upper(ngx.req.get_body_data() or ""))
            }'
    else
        handler="js_content main.upper;"
    fi
    cat > "$work/nginx-$1.conf" <<CONF
$mod
worker_processes 1;
master_process off;
daemon off;
error_log $work/nginx-$1.log;
pid $work/nginx-$1.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work;
    client_body_buffer_size 16k;
    $( [ "$1" = njs ] && echo "js_import main from $work/upper.js;" )
    server {
        listen 127.0.0.1:$2;
        location / {
            $handler
        }
    }
}
CONF
    echo "$work/nginx-$1.conf"
}
morphd_http_ini() { # PORT: the uppercase service on http://
    LISTEN="http://127.0.0.1:$1" morphd_ini "$1" uppercase line
}
if wanted 'http$' && command -v wrk >/dev/null && [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] &&
    [ -f /usr/lib/nginx/modules/ngx_http_js_module.so ]; then
    echo
    echo "== HTTP/1.1: morphd http:// (uppercase) against nginx with Lua and with njs, 64 B POST, 100 keep-alive connections, wrk (CPU us per request)"
    cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 64)
wrk.headers["Content-Type"] = "text/plain"
LUA
    : > "$work/http.data"
    for r in $(seq "$ROUNDS"); do
        for s in nginx-lua nginx-njs morphd; do
            port=$(free_port)
            case $s in
            nginx-lua) taskset -c "$SERVER_CPU" nginx -p "$work" -c "$(nginx_http_conf lua "$port")" 2>"$work/server.log" & ;;
            nginx-njs) taskset -c "$SERVER_CPU" nginx -p "$work" -c "$(nginx_http_conf njs "$port")" 2>"$work/server.log" & ;;
            morphd) taskset -c "$SERVER_CPU" "$B/morphd" -c "$(morphd_http_ini "$port")" 2>"$work/server.log" & ;;
            esac
            server_pid=$!
            for _ in $(seq 500); do
                (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
                sleep 0.01
            done
            want=$(curl -s --data-binary abc "http://127.0.0.1:$port/")
            [ "$want" = ABC ] || echo "bench: http $s answered '$want'" >&2
            t0=$(ticks "$server_pid")
            taskset -c "$CLIENT_CPU" wrk -t1 -c100 -d"${DURATION}s" -s "$work/post.lua" "http://127.0.0.1:$port/" > "$work/wrk.out" 2>&1
            t1=$(ticks "$server_pid")
            stop_server
            n=$(awk '/requests in/ {print $1}' "$work/wrk.out")
            bad=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
            [ -z "$bad" ] || echo "bench: http $s: $bad non-2xx responses" >&2
            us=$(awk -v t=$((t1 - t0)) -v u="$TICK_US" -v q="$n" 'BEGIN { printf "%.3f", t * u / q }')
            echo "round $r $s: $us us per request ($(awk '/Requests\/sec/ {print $2}' "$work/wrk.out") requests/s)"
            echo "$s $us" >> "$work/http.data"
        done
    done
    m=$(awk '$1 == "morphd" {print $2}' "$work/http.data")
    for peer in nginx-lua nginx-njs; do
        b=$(awk -v p=$peer '$1 == p {print $2}' "$work/http.data")
        echo "CPU per request of morphd http:// ÷ $peer (median of per-round ratios): $(paste <(echo "$m") <(echo "$b") | awk '{print $1 / $2}' | median)"
    done
fi | tee -a "$RESULTS"

# 10,000 idle connections to the http:// service, each after one request
# (FRAMING http) or one WebSocket message (ws): RSS before and with them
idle_http() { # PART FRAMING TITLE LABEL
    wanted "$1" || return 0
    local port before with ready
    port=$(free_port)
    taskset -c "$SERVER_CPU" "$B/morphd" -c "$(morphd_http_ini "$port")" 2>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 500); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.01
    done
    before=$(rss_kib "$server_pid")
    coproc IDLE { taskset -c "$CLIENT_CPU" "$LG" idle "$port" -c 10000 -d 5 -f "$2" -s 8; }
    read -r ready <&"${IDLE[0]}"
    with=$(rss_kib "$server_pid")
    wait "$IDLE_PID" || true
    stop_server
    [ "$ready" = "ready conns=10000 errors=0" ] || echo "bench: $1: $ready" >&2
    {
        echo
        echo "### $3"
        echo
        echo "| server | RSS before (KiB) | RSS with 10,000 idle (KiB) | bytes per connection |"
        echo "|---|---|---|---|"
        echo "| $4 | $before | $with | $(( (with - before) * 1024 / 10000 )) |"
    } | tee -a "$RESULTS"
}
idle_http http-idle http "10,000 idle HTTP/1.1 keep-alive connections (http://, each after one request)" "morphd http://"
idle_http ws-idle ws "10,000 idle WebSockets (http://, each after one message)" "morphd ws://"

# a transform written in Lua (string.upper) against the C uppercase
# plugin, both chunk-safe over stream framing: what the bridge costs
versus "Lua scripts: a script's string.upper against the C uppercase plugin (TCP, 64 B, 100 connections)" \
    morphd morphd-lua lua "of the Lua script ÷ the C plugin"
scenario "Lua scripts: a script's string.upper against the C uppercase plugin (UDP, 64 B, 32 clients)" \
    "morphd morphd-lua" udp-rr lua-udp -c 32 -s 64
if wanted lua-udp; then
    echo
    echo "CPU per request of the Lua script ÷ the C plugin, UDP (median of per-round ratios): $(ratio "$work/data" morphd-lua morphd 4)"
fi | tee -a "$RESULTS"

# what one more worker costs in memory: proportional set size (shared
# pages split among the processes that map them) summed over morphd's
# processes, with 1 and with 4 workers, each after 100 connections
pss_total() { # PID: KiB over the process and its children
    local t=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$((t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
if wanted isolation-memory; then
    {
        echo
        echo "### Memory per extra worker (PSS over all of morphd's processes, KiB)"
        echo
        echo "| isolation | 1 worker | 4 workers | per extra worker |"
        echo "|---|---|---|---|"
        for iso in thread process; do
            declare -A pss=()
            for n in 1 4; do
                port=$(free_port)
                ini=$(morphd_ini "$port" uppercase stream "" "$(printf 'isolation = %s\nworkers = %s' "$iso" "$n")")
                "$B/morphd" -c "$ini" 2>"$work/server.log" &
                server_pid=$!
                for _ in $(seq 500); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.01; done
                taskset -c "$CLIENT_CPU" "$LG" tcp-rr "$port" -d 1 -c 100 -s 64 -x upper > /dev/null
                sleep 0.2
                pss[$n]=$(pss_total "$server_pid")
                stop_server
            done
            echo "| $iso | ${pss[1]} | ${pss[4]} | $(( (pss[4] - pss[1]) / 3 )) |"
        done
    } | tee -a "$RESULTS"
fi

# instructions per request (callgrind): not noisy, where CPU time is
if wanted callgrind && command -v valgrind >/dev/null; then
{
    echo
    echo "### Instructions per request (callgrind, start-up excluded)"
    echo
    echo "| server | TCP 64 B RR | UDP 64 B RR |"
    echo "|---|---|---|"
    for s in libuv morphd morphd-echo morphd-delay0; do
        t=$(bash "$(dirname "$0")/callgrind.sh" "$B" "$s" tcp-rr 3 | cut -d' ' -f3)
        u=-
        case $s in libuv|morphd)
            u=$(bash "$(dirname "$0")/callgrind.sh" "$B" "$s" udp-rr 3 | cut -d' ' -f3) ;;
        esac
        echo "| $s | $t | $u |"
    done
} | tee -a "$RESULTS"
fi

# idle connections: server RSS per connection
if wanted idle; then
{
    echo
    echo "### 10,000 idle connections (TCP; and tls:// after a handshake and one reply)"
    echo
    echo "| server | RSS before (KiB) | RSS with 10,000 idle (KiB) | bytes per connection |"
    echo "|---|---|---|---|"
} | tee -a "$RESULTS"
for s in epoll libuv morphd; do
    port=$(free_port)
    start_server "$s" "$port"
    before=$(rss_kib "$server_pid")
    coproc IDLE { taskset -c "$CLIENT_CPU" "$LG" idle "$port" -c 10000 -d 5; }
    read -r ready <&"${IDLE[0]}"
    with=$(rss_kib "$server_pid")
    wait "$IDLE_PID" || true
    stop_server
    echo "| $s | $before | $with | $(( (with - before) * 1024 / 10000 )) |" | tee -a "$RESULTS"
    [ "${ready%% *}" = ready ] || echo "bench: idle $s: $ready" >&2
done
# the same over tls://: each connection shook hands and got one reply
port=$(free_port)
start_server morphd-tls "$port"
before=$(rss_kib "$server_pid")
coproc IDLE { taskset -c "$CLIENT_CPU" "$B/bench/tls_idle" "$port" -c 10000 -d 5; }
read -r ready <&"${IDLE[0]}"
with=$(rss_kib "$server_pid")
wait "$IDLE_PID" || true
stop_server
echo "| morphd tls:// | $before | $with | $(( (with - before) * 1024 / 10000 )) |" | tee -a "$RESULTS"
[ "$ready" = "ready conns=10000 errors=0" ] || echo "bench: idle tls: $ready" >&2
fi

# TLS: morphd terminating tls:// itself, against nginx's stream module and
# stunnel terminating TLS in front of morphd tcp:// -- the way TLS is added
# to a plain line service today. Every server process (front and back) is
# pinned to the server CPU and its CPU time counted; same certificate (the
# example P-256 one), same protocol (TLS 1.3), same replies.
NGINX_STREAM=/usr/lib/nginx/modules/ngx_stream_module.so
tls_front_start() { # NAME PORT -> tls_pids
    local name=$1 port=$2 back
    tls_pids=
    if [ "$name" = morphd ]; then
        # shellcheck disable=SC2046
        taskset -c "$SERVER_CPU" $(server_cmd morphd-tls "$port") 2>"$work/tls.log" &
        tls_pids=$!
    else
        back=$(free_port)
        # shellcheck disable=SC2046
        taskset -c "$SERVER_CPU" $(server_cmd morphd-line "$back") 2>"$work/tls-back.log" &
        tls_pids=$!
        if [ "$name" = nginx ]; then
            cat > "$work/nginx.conf" <<CONF
load_module $NGINX_STREAM;
daemon off;
master_process on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
stream {
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $SRC/config/tls/example-cert.pem;
        ssl_certificate_key $SRC/config/tls/example-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        proxy_pass 127.0.0.1:$back;
    }
}
CONF
            taskset -c "$SERVER_CPU" nginx -p "$work" -c "$work/nginx.conf" \
                -e "$work/nginx-error.log" 2>>"$work/tls.log" &
        else
            cat > "$work/stunnel.conf" <<CONF
foreground = yes
pid =
debug = 3
[bench]
accept = 127.0.0.1:$port
connect = 127.0.0.1:$back
cert = $SRC/config/tls/example-cert.pem
key = $SRC/config/tls/example-key.pem
CONF
            taskset -c "$SERVER_CPU" stunnel "$work/stunnel.conf" 2>>"$work/tls.log" &
        fi
        tls_pids="$tls_pids $!"
    fi
    for _ in $(seq 500); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.01
    done
    sleep 0.2 # nginx: its worker
    local p
    for p in $tls_pids; do
        tls_pids="$tls_pids $({ pgrep -P "$p" || true; } | tr '\n' ' ')"
    done
}
tls_front_stop() {
    local p
    for p in $tls_pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
tls_ticks() { local t=0 p; for p in $tls_pids; do t=$((t + $(ticks "$p" 2>/dev/null || echo 0))); done; echo $t; }

# tls_run NAME MODE -> "rps cpu_us_per_request client_cpus"
tls_run() {
    local port t0 t1 out
    port=$(free_port)
    tls_front_start "$1" "$port"
    t0=$(tls_ticks)
    out=$(taskset -c "$CLIENT_CPU" "$B/bench/tls_load" "$2" "$port" -c 100 -d "$DURATION")
    t1=$(tls_ticks)
    tls_front_stop
    local req rps errors client
    req=$(echo "$out" | field requests)
    rps=$(echo "$out" | field rps)
    errors=$(echo "$out" | field errors)
    client=$(echo "$out" | field client_cpu)
    [ "$errors" = 0 ] || echo "bench: tls $1 $2: $errors errors" >&2
    awk -v r="$rps" -v q="$req" -v t=$((t1 - t0)) -v u="$TICK_US" -v c="$client" \
        'BEGIN { printf "%s %.3f %s\n", r, (q > 0 ? t * u / q : 0), c }'
}

if wanted tls; then
    if [ ! -e "$NGINX_STREAM" ] || ! command -v stunnel >/dev/null; then
        echo "bench: tls needs nginx's stream module and stunnel (scripts/install-deps.sh --bench)" >&2
        exit 1
    fi
    declare -A rr_rps rr_cpu hs_rps hs_cpu hs_client
    for round in $(seq "$ROUNDS"); do
        for s in morphd nginx stunnel; do
            read -r r c _ < <(tls_run "$s" rr)
            rr_rps[$s]+="$r "; rr_cpu[$s]+="$c "
            read -r r c k < <(tls_run "$s" handshakes)
            hs_rps[$s]+="$r "; hs_cpu[$s]+="$c "; hs_client[$s]+="$k "
        done
    done
    med() { tr ' ' '\n' | sed '/^$/d' | median; }
    {
        echo
        echo "### TLS: 64 B request/response on 100 connections, and full handshakes (median of $ROUNDS)"
        echo
        echo "| server | requests/s | server CPU µs per request | handshakes/s | server CPU µs per handshake | client CPUs busy (handshakes) |"
        echo "|---|---|---|---|---|---|"
        for s in morphd nginx stunnel; do
            label=$s
            [ "$s" = morphd ] && label="morphd tls://"
            [ "$s" = nginx ] && label="nginx stream + morphd tcp://"
            [ "$s" = stunnel ] && label="stunnel + morphd tcp://"
            echo "| $label | $(echo "${rr_rps[$s]}" | med) | $(echo "${rr_cpu[$s]}" | med) | $(echo "${hs_rps[$s]}" | med) | $(echo "${hs_cpu[$s]}" | med) | $(echo "${hs_client[$s]}" | med) |"
        done
        m=$(echo "${rr_cpu[morphd]}" | med)
        echo
        echo "CPU per request, morphd tls:// / nginx stream: $(awk -v a="$m" -v b="$(echo "${rr_cpu[nginx]}" | med)" 'BEGIN { printf "%.2f", a / b }') (target <= 0.6);" \
             "/ stunnel: $(awk -v a="$m" -v b="$(echo "${rr_cpu[stunnel]}" | med)" 'BEGIN { printf "%.2f", a / b }') (target <= 0.6)."
        echo "Handshakes per second, morphd / nginx: $(awk -v a="$(echo "${hs_rps[morphd]}" | med)" -v b="$(echo "${hs_rps[nginx]}" | med)" 'BEGIN { printf "%.2f", a / b }') (target >= 0.95);" \
             "server CPU per handshake, morphd / nginx: $(awk -v a="$(echo "${hs_cpu[morphd]}" | med)" -v b="$(echo "${hs_cpu[nginx]}" | med)" 'BEGIN { printf "%.2f", a / b }')." \
             "A client near 1 CPU busy set the rate, not the server."
    } | tee -a "$RESULTS"
fi

# exec to first correct reply
if wanted first-reply; then
{
    echo
    echo "### Exec to first correct reply (median of 11)"
    echo
    echo "| server | ms |"
    echo "|---|---|"
} | tee -a "$RESULTS"
for s in libuv morphd; do
    port=$(free_port)
    ms=$(for _ in $(seq 11); do
        # shellcheck disable=SC2046
        "$LG" first-reply "$port" -- $(server_cmd "$s" "$port") | field ms
    done | median)
    echo "| $s | $ms |" | tee -a "$RESULTS"
done
fi

# throughput against connection count, for the plot
if wanted plot; then
plot=$OUT/tcp-throughput.dat
PLOT_ROUNDS=${PLOT_ROUNDS:-3}
echo "# conns epoll libuv morphd (req/s, median of $PLOT_ROUNDS interleaved rounds)" > "$plot"
for c in 1 10 100 1000; do
    line="$c"
    : > "$work/plot"
    for round in $(seq "$PLOT_ROUNDS"); do
        for s in epoll libuv morphd; do
            echo "$s $(run "$s" tcp-rr -c "$c" -s 64 | cut -d' ' -f1)" >> "$work/plot"
        done
    done
    for s in epoll libuv morphd; do
        line="$line $(awk -v s="$s" '$1 == s {print $2}' "$work/plot" | median)"
    done
    echo "$line" >> "$plot"
done
if command -v gnuplot >/dev/null; then
    gnuplot <<GP
set terminal pngcairo size 800,480
set output "$OUT/tcp-throughput.png"
set title "TCP request/response, 64-byte messages, 1 server core"
set xlabel "connections"
set ylabel "requests per second"
set logscale x
set key bottom right
set grid
plot "$plot" using 1:2 with linespoints title "raw epoll", \
     "$plot" using 1:3 with linespoints title "hand-written libuv", \
     "$plot" using 1:4 with linespoints title "morphd"
GP
    echo "plot: $OUT/tcp-throughput.png"
else
    echo "bench: gnuplot not installed; no plot (scripts/install-deps.sh --bench)" >&2
fi
fi
echo "results: $RESULTS"
