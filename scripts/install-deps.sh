#!/bin/sh
# Installs the Debian packages morph needs to build and test, and only those
# that are missing. Called by `make run` and `make test`; safe to run again.
# On a system without apt it prints what to install and fails.
set -eu

PACKAGES="cmake make gcc g++ clang pkg-config libuv1-dev libinih-dev libicu-dev check dpkg-dev libclang-rt-14-dev"
# tls:// (OpenSSL 3), and the openssl tool the TLS tests make certificates
# and speak TLS with
PACKAGES="$PACKAGES libssl-dev openssl"
# metrics_listen: Prometheus /metrics served by libmicrohttpd, and the
# Prometheus text parser the tests scrape it with
PACKAGES="$PACKAGES libmicrohttpd-dev python3-prometheus-client"
# promtool (Debian's prometheus package): the metrics test lints a scrape
PACKAGES="$PACKAGES prometheus"
# headless Chromium: the metrics test renders the status page, the browser
# test calls http:// endpoints with fetch and a WebSocket from a page
PACKAGES="$PACKAGES chromium"
# sandbox = on: seccomp filters
PACKAGES="$PACKAGES libseccomp-dev"
# plugins written as Lua scripts (NAME.lua)
PACKAGES="$PACKAGES liblua5.4-dev"
# systemd-socket-activate, for the socket activation tests
PACKAGES="$PACKAGES systemd"
# The socket clients the README uses to talk to morphd.
PACKAGES="$PACKAGES netcat-openbsd socat"
# redis-cli and redis-benchmark: the clients of the resp codec's tests
PACKAGES="$PACKAGES redis-tools"
# curl: the HTTP client of the http:// endpoints' tests
PACKAGES="$PACKAGES curl"
# python3-websockets: a WebSocket client nobody here wrote, for the ws tests
PACKAGES="$PACKAGES python3-websockets"

for arg in "$@"; do
    case "$arg" in
    # what the benchmark suite needs
    # (nginx-light with its stream module and stunnel: the TLS comparison)
    # (redis-server: the resp comparison)
    # (nginx's Lua and njs modules, and wrk: the HTTP/1.1 comparison)
    --bench) PACKAGES="$PACKAGES gnuplot-nox util-linux nginx-light libnginx-mod-stream stunnel4 curl redis-server libnginx-mod-http-lua libnginx-mod-http-js wrk" ;;
    # what `make test-package` needs: Debian's package checker
    --package) PACKAGES="$PACKAGES lintian" ;;
    # what `make test-systemd` needs: a Debian container booted with systemd
    --systemd) PACKAGES="$PACKAGES debootstrap systemd-container" ;;
    # what `make test-scale` needs: real load balancers in front of morphd,
    # and Debian's YAML parser for the Kubernetes example
    --scale) PACKAGES="$PACKAGES haproxy nginx-light libnginx-mod-stream python3-yaml" ;;
    *) echo "usage: install-deps.sh [--bench] [--package] [--systemd] [--scale]" >&2; exit 64 ;;
    esac
done

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "morph: these packages are needed but apt-get is not available:" >&2
    echo "   $missing" >&2
    echo "Install their equivalents with your system's package manager, then run make again." >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "morph: need root to install:$missing (sudo not found)" >&2
        exit 1
    fi
fi

echo "morph: installing missing packages:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
