#!/bin/bash
# The packaged uppercase service under a real systemd: boots a Debian 12
# container with systemd as PID 1 (debootstrap + systemd-nspawn), and runs
# in it, as root, exactly the README's install sequence and what an
# operator does next:
#
#   apt install ./morph_*.deb ./morph-dev_*.deb   -> enabled and active
#   systemd-analyze security morphd                -> exposure <= 2.0
#   the textbook TCP and UDP clients, and `morph`  -> uppercase on 12000
#   edit the conffile, systemctl reload            -> new behaviour
#   break the conffile, systemctl reload           -> reload fails, the old
#                                                     one keeps serving, the
#                                                     journal has file:line
#   systemctl restart, morph stats                 -> works, answers
#   a Lua script in /etc/morph/scripts, reload     -> it serves, under the
#                                                     unit's hardening
#   enable morphd.socket, restart under load       -> morphd adopts systemd's
#                                                     sockets; no connection
#                                                     refused or lost
#   a broken conffile and systemctl restart        -> failed, not restarted
#   apt install --reinstall (an upgrade)           -> restarted, edits kept;
#                                                     a disabled unit stays so
#   apt remove                                     -> stopped
#   apt purge                                      -> nothing left behind
#
# The container has a network of its own (--private-network), so port 12000
# is its own and nothing on the host is touched. The pristine root file
# system is cached in PACKAGE_BUILD_DIR/systemd-rootfs, keyed by the
# packages it holds (systemd, python3 for the textbook clients, and the
# dependencies of the two .debs, so that apt installs them offline); each
# run boots a copy of it.
#
# usage: systemd_test.sh PACKAGE_BUILD_DIR
# env:   MORPH_DEBIAN_MIRROR (default http://deb.debian.org/debian)
set -euo pipefail
dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
deb=$(ls "$dir"/morph_*.deb)
devdeb=$(ls "$dir"/morph-dev_*.deb)
mirror=${MORPH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
cache=$dir/systemd-rootfs

fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap and systemd-nspawn)"
for tool in debootstrap systemd-nspawn nsenter; do
    command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh --systemd)"
done

# --- the cached root file system --------------------------------------------

# Package names from a Depends field: versions dropped, first alternative.
depends_names() {
    dpkg-deb -f "$1" Depends | tr ',' '\n' |
        sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v '^morph' || true
}
include=$( { echo systemd systemd-sysv dbus python3-minimal
             depends_names "$deb"; depends_names "$devdeb"; } |
           tr ' ' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
key="$suite $mirror $include"

if [ ! -f "$cache/.morph-rootfs-key" ] || [ "$(cat "$cache/.morph-rootfs-key")" != "$key" ]; then
    echo "== debootstrap $suite (once; cached in $cache)"
    rm -rf "$cache" "$cache.new"
    debootstrap --variant=minbase --include="$include" "$suite" "$cache.new" "$mirror" \
        >"$dir/debootstrap.log" 2>&1 || { tail -20 "$dir/debootstrap.log"; fail "debootstrap"; }
    # what the Debian installer writes and debootstrap does not
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
        >"$cache.new/etc/hosts"
    echo morph-test >"$cache.new/etc/hostname"
    echo "$key" >"$cache.new/.morph-rootfs-key"
    mv "$cache.new" "$cache"
fi

# --- boot a copy -------------------------------------------------------------

root=$(mktemp -d "$dir/systemd-run.XXXXXX")
npid=
leader=
cleanup() {
    if [ -n "$npid" ] && kill -0 "$npid" 2>/dev/null; then
        kill -TERM "$npid" 2>/dev/null || true  # nspawn halts the container
        for _ in $(seq 100); do kill -0 "$npid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$npid" 2>/dev/null || true
        wait "$npid" 2>/dev/null || true
    fi
    rm -rf "$root"
}
trap cleanup EXIT
cp -a --reflink=auto "$cache/." "$root/"
mkdir -p "$root/root/debs"
cp "$deb" "$devdeb" "$root/root/debs/"
cp "$here/TCPClient.py" "$here/UDPClient.py" "$root/root/"

echo "== boot the container (systemd as PID 1)"
systemd-nspawn --quiet --register=no --keep-unit --private-network \
    --machine=morph-test -D "$root" -b --console=passive >"$dir/nspawn.log" 2>&1 &
npid=$!
for _ in $(seq 100); do
    leader=$(pgrep -P "$npid" -x systemd || true)
    [ -n "$leader" ] && break
    kill -0 "$npid" 2>/dev/null || { cat "$dir/nspawn.log"; fail "systemd-nspawn exited"; }
    sleep 0.1
done
[ -n "$leader" ] || fail "no systemd in the container after 10 s"

# Runs a command in the container as root, in a login-like environment.
ct() {
    nsenter -t "$leader" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
}
# until boot is done (systemctl fails until systemd's socket is there)
state=
for _ in $(seq 600); do
    state=$(ct systemctl is-system-running 2>/dev/null || true)
    case "$state" in initializing | starting | "") sleep 0.1 ;; *) break ;; esac
done
[ "$state" = running ] || { ct systemctl --failed --no-pager || true
                            fail "the container's systemd is '$state'"; }

# Polls a shell condition in the container, 10 s at most.
ct_until() {
    for _ in $(seq 100); do
        ct sh -c "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# Everything on the container's disk, but what apt, dpkg and journald keep.
snapshot() {
    ct find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run \
        -o -path /tmp -o -path /var/tmp -o -path /root -o -path /var/log \
        -o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg \) -prune \
        -o -print | sort
}
snapshot >"$dir/systemd-before.txt"

echo "== apt install ./morph_*.deb ./morph-dev_*.deb"
ct sh -c 'cd /root/debs && apt install -y ./morph_*.deb ./morph-dev_*.deb' \
    >"$dir/apt-install.log" 2>&1 || { tail -20 "$dir/apt-install.log"; fail "apt install"; }
# (the snapshot sees what the package adds: the purge check below is real)
snapshot | comm -13 "$dir/systemd-before.txt" - | grep -qx /usr/sbin/morphd \
    || fail "the file-system snapshot misses /usr/sbin/morphd"
[ "$(ct systemctl is-enabled morphd)" = enabled ] || fail "not enabled after install"
[ "$(ct systemctl is-active morphd)" = active ] || fail "not active after install"

echo "== systemd-analyze security morphd: exposure 2.0 or less"
exposure=$(ct systemd-analyze security morphd --no-pager |
           sed -n 's/.*Overall exposure level for morphd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security printed no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure > 2.0"
echo "exposure $exposure"

echo "== the textbook clients and morph on port 12000"
# (they print their prompt, and wait for ever without a reply: timeout)
got=$(echo 'hello world' | ct timeout 10 python3 /root/TCPClient.py)
[ "$got" = "Input lowercase sentence:From Server:  HELLO WORLD" ] || fail "textbook TCP client: '$got'"
got=$(echo 'hello world' | ct timeout 10 python3 /root/UDPClient.py)
[ "$got" = "Input lowercase sentence:HELLO WORLD" ] || fail "textbook UDP client: '$got'"
[ "$(ct morph hello world)" = "HELLO WORLD" ] || fail "morph over TCP"
[ "$(ct morph --udp hello world)" = "HELLO WORLD" ] || fail "morph over UDP"

echo "== edit the conffile, systemctl reload"
# A chain that needs line framing, and IPv4 only: `localhost` resolves to
# ::1 first here, so `morph --udp` has to try the next address.
ct python3 -c 'import socket; a = socket.getaddrinfo("localhost", 12000, type=socket.SOCK_DGRAM); assert a[0][0] == socket.AF_INET6, a'
ct sed -i -e 's/^transform = .*/transform = uppercase | reverse/' \
    -e 's/^framing = .*/framing = line/' \
    -e 's|^listen = .*|listen = tcp://0.0.0.0:12000 udp://0.0.0.0:12000|' /etc/morph/morphd.ini
ct systemctl reload morphd || fail "reload of a good file failed"
ct_until '[ "$(morph hello world)" = "DLROW OLLEH" ]' || fail "reload did not apply: $(ct morph hello world)"
[ "$(ct morph --udp hello world)" = "DLROW OLLEH" ] || fail "UDP after reload (IPv4 only)"

echo "== a broken conffile: reload fails, the old one keeps serving"
ct sh -c 'echo "bogus = 1" >> /etc/morph/morphd.ini'
line=$(ct grep -n '^bogus' /etc/morph/morphd.ini | cut -d: -f1)
if ct systemctl reload morphd 2>/dev/null; then fail "reload of a broken file succeeded"; fi
[ "$(ct systemctl is-active morphd)" = active ] || fail "not active after a failed reload"
[ "$(ct morph hello world)" = "DLROW OLLEH" ] || fail "not serving after a failed reload"
ct_until "journalctl -u morphd --no-pager | grep -q \"/etc/morph/morphd.ini:$line: unknown key 'bogus'\"" \
    || { ct journalctl -u morphd --no-pager | tail; fail "journal lacks file:line"; }

echo "== a broken conffile and systemctl restart: failed, not restarted"
if ct systemctl restart morphd 2>/dev/null; then fail "restart with a broken file succeeded"; fi
sleep 2.5 # RestartSec=1s: a restart would have happened by now
[ "$(ct systemctl show -p NRestarts --value morphd)" = 0 ] || fail "restarted: $(ct systemctl show -p NRestarts morphd)"
[ "$(ct systemctl show -p ExecMainStatus --value morphd)" = 78 ] || fail "exit status not 78"

echo "== systemctl restart, morph stats"
ct sed -i '/^bogus/d' /etc/morph/morphd.ini
ct systemctl restart morphd || fail "restart"
[ "$(ct systemctl is-active morphd)" = active ] || fail "not active after restart"
[ "$(ct morph hello world)" = "DLROW OLLEH" ] || fail "not serving after restart"
stats=$(ct morph stats) || fail "morph stats"
echo "$stats" | grep -Eq '^messages_in +[1-9]' || fail "morph stats: $stats"

echo "== a Lua script under the packaged unit (worker processes, sandbox, MemoryDenyWriteExecute)"
ct cp /etc/morph/morphd.ini /root/morphd.ini.before
ct mkdir -p /etc/morph/scripts
ct sh -c 'cat > /etc/morph/scripts/shout.lua' <<'LUA'
return { transform = function(message) return message:upper() .. "!" end }
LUA
ct sed -i -e 's|^;* *plugin_dir = .*|plugin_dir = /etc/morph/scripts /usr/lib/x86_64-linux-gnu/morph/plugins|' \
    -e 's/^transform = .*/transform = shout | reverse/' /etc/morph/morphd.ini
ct grep -q '^plugin_dir = /etc/morph/scripts' /etc/morph/morphd.ini || fail "no plugin_dir line to set"
ct systemctl reload morphd || fail "reload with a Lua script"
ct_until '[ "$(morph hello world)" = "!DLROW OLLEH" ]' \
    || { ct journalctl -u morphd --no-pager | tail; fail "the script does not serve: $(ct morph hello world)"; }
ct cp /root/morphd.ini.before /etc/morph/morphd.ini
ct rm -r /etc/morph/scripts # (the purge check below: what the package left)
ct systemctl reload morphd || fail "reload without the script"
ct_until '[ "$(morph hello world)" = "DLROW OLLEH" ]' || fail "not back to uppercase | reverse"

echo "== morphd.socket: systemctl restart under load refuses nothing"
# the socket unit's addresses are the packaged endpoints: put them back
ct sed -i 's|^listen = .*|listen = tcp://0.0.0.0:12000 tcp://[::]:12000 udp://0.0.0.0:12000 udp://[::]:12000|' /etc/morph/morphd.ini
ct systemctl stop morphd
ct systemctl enable --now morphd.socket 2>/dev/null || fail "enable morphd.socket"
ct systemctl start morphd || fail "start with the socket unit"
# (the packaged isolation = process: the main process adopts it, and its
# worker serves on a copy)
ct_until "journalctl -u morphd --no-pager | grep -q 'listening on tcp://0.0.0.0:12000 (1 worker process, from systemd)'" \
    || { ct journalctl -u morphd --no-pager | tail; fail "morphd did not adopt the socket"; }
# a client connecting over and over for 6 s (new connection each time)
# while morphd restarts three times
ct sh -c 'cat > /root/loop.py' <<'PY'
import socket, sys, time
ok = lost = 0
end = time.monotonic() + 6
while time.monotonic() < end:
    try:
        with socket.create_connection(("127.0.0.1", 12000), timeout=10) as s:
            s.sendall(b"abc\n")
            got = b""
            while not got.endswith(b"\n"):
                part = s.recv(64)
                if not part:
                    break
                got += part
        if got == b"CBA\n":
            ok += 1
        else:
            lost += 1
    except OSError:
        lost += 1
    time.sleep(0.005)
print(ok, lost)
PY
ct python3 /root/loop.py >"$dir/loop.out" 2>&1 &
loop=$!
for _ in 1 2 3; do
    sleep 1.2
    ct systemctl restart morphd || fail "restart with the socket unit"
done
wait "$loop" || true
read -r ok lost <"$dir/loop.out" || true
[ "${lost:-x}" = 0 ] && [ "${ok:-0}" -gt 100 ] ||
    fail "restarts under morphd.socket: $(cat "$dir/loop.out") (answered, lost)"
echo "   $ok connections answered, 0 refused or lost across 3 restarts"
ct systemctl disable --now morphd.socket 2>/dev/null
ct systemctl restart morphd || fail "restart without the socket unit"
ct_until "[ \"\$(morph hello world)\" = 'DLROW OLLEH' ]" || fail "not serving without the socket unit"

echo "== access_log: to the journal (syslog), and to /var/log/morph"
ct sed -i 's/^\[morphd\]$/[morphd]\naccess_log = syslog/' /etc/morph/morphd.ini
ct systemctl restart morphd || fail "restart with access_log = syslog"
ct_until '[ "$(morph hello world)" = "DLROW OLLEH" ]' || fail "not serving with access_log = syslog"
ct_until "journalctl -u morphd --no-pager | grep -q 'transport=tcp client=.* service=uppercase bytes_in=12 bytes_out=12 messages=1 .*end=closed'" \
    || { ct journalctl -u morphd --no-pager | tail -5; fail "no access log line in the journal"; }
ct sed -i 's|^access_log = syslog$|access_log = /var/log/morph/access.log|' /etc/morph/morphd.ini
ct systemctl restart morphd || fail "restart with an access log file"
ct_until '[ "$(morph hello world)" = "DLROW OLLEH" ]' || fail "not serving with an access log file"
ct_until "grep -q 'transport=tcp client=.* service=uppercase bytes_in=12' /var/log/morph/access.log" \
    || { ct journalctl -u morphd --no-pager | tail -5; fail "no line in /var/log/morph/access.log"; }
ct sed -i '/^access_log = /d' /etc/morph/morphd.ini
ct systemctl restart morphd || fail "restart without the access log"

echo "== an upgrade restarts the service and keeps the edited conffile"
pid=$(ct systemctl show -p MainPID --value morphd)
ct sh -c 'cd /root/debs && apt install -y --reinstall ./morph_*.deb' \
    >"$dir/apt-upgrade.log" 2>&1 || { tail "$dir/apt-upgrade.log"; fail "apt reinstall"; }
[ "$(ct systemctl is-active morphd)" = active ] || fail "not active after the upgrade"
[ "$(ct systemctl show -p MainPID --value morphd)" != "$pid" ] || fail "not restarted by the upgrade"
[ "$(ct morph hello world)" = "DLROW OLLEH" ] || fail "the edited conffile was not kept"
echo "== a disabled service stays disabled and stopped across an upgrade"
ct systemctl disable --now morphd 2>/dev/null
ct sh -c 'cd /root/debs && apt install -y --reinstall ./morph_*.deb' \
    >"$dir/apt-upgrade.log" 2>&1 || { tail "$dir/apt-upgrade.log"; fail "apt reinstall"; }
[ "$(ct systemctl is-enabled morphd || true)" = disabled ] || fail "enabled by the upgrade"
[ "$(ct systemctl is-active morphd || true)" = inactive ] || fail "started by the upgrade"
ct systemctl enable --now morphd 2>/dev/null
[ "$(ct morph hello world)" = "DLROW OLLEH" ] || fail "not serving once enabled again"

echo "== apt remove stops the service"
ct apt remove -y morph-dev morph >"$dir/apt-remove.log" 2>&1 || fail "apt remove"
state=$(ct systemctl is-active morphd || true)
[ "$state" = inactive ] || fail "after remove: $state"
if echo x | ct timeout 10 python3 /root/TCPClient.py >/dev/null 2>&1; then fail "port 12000 still answers"; fi

echo "== apt purge leaves nothing behind"
ct apt purge -y morph >"$dir/apt-purge.log" 2>&1 || fail "apt purge"
snapshot >"$dir/systemd-after.txt"
left=$(comm -13 "$dir/systemd-before.txt" "$dir/systemd-after.txt")
[ -z "$left" ] || fail "left behind after purge: $left"
echo "systemd: all passed"
