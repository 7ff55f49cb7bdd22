#!/bin/bash
# The Debian package as an operator gets it: install morph_*.deb into a
# scratch dpkg root (dpkg --root, so the machine itself is untouched), run
# the installed morphd with the installed config -- moved to ephemeral
# loopback ports with --set, the documented override -- check the uppercase
# reply over TCP and UDP with the installed client, then `dpkg -r` (only
# the conffile and the unit's enable records stay) and `dpkg --purge`
# (nothing stays). The maintainer scripts see DPKG_ROOT and start nothing
# here; tests/systemd/systemd_test.sh runs them under a real systemd.
#
# usage: package_test.sh PACKAGE_BUILD_DIR
set -euo pipefail
dir=$1
deb=$(ls "$dir"/morph_*.deb)
devdeb=$(ls "$dir"/morph-dev_*.deb)
root=$(mktemp -d /tmp/morph-pkg-XXXXXX)
# as / is: the packaged isolation = process loads the plugins in worker
# processes that already run as `user = nobody`, which must reach them
chmod 0755 "$root"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$root"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== metadata"
depends=$(dpkg-deb -f "$deb" Depends)
# libmicrohttpd12: loaded with dlopen for metrics_listen, named by hand
for lib in libuv1 libicu72 libinih1 liblua5.4-0 procps libmicrohttpd12; do
    case "$depends" in *"$lib"*) ;; *) fail "Depends lacks $lib: $depends" ;; esac
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/morph/morphd.ini || fail "conffile"
# each package has a synopsis of its own
[ "$(dpkg-deb -f "$deb" Description | head -1)" = "plugin-based TCP/UDP text transform server" ] \
    || fail "morph synopsis: $(dpkg-deb -f "$deb" Description | head -1)"
[ "$(dpkg-deb -f "$devdeb" Description | head -1)" = "SDK for writing morph plugins" ] \
    || fail "morph-dev synopsis: $(dpkg-deb -f "$devdeb" Description | head -1)"
# the maintainer scripts enable and start the unit, as dh_installsystemd's do
for script in postinst prerm postrm; do
    dpkg-deb -I "$deb" "$script" | grep -q "deb-systemd-" || fail "no $script"
done
case "$depends" in *init-system-helpers*) ;; *) fail "Depends lacks init-system-helpers" ;; esac
# the SDK needs the same morph, and libuv's, Lua's and OpenSSL's libraries
# for libmorph-testing (it holds the engine, which runs Lua scripts and
# answers WebSocket handshakes)
[ "$(dpkg-deb -f "$devdeb" Depends)" = "morph (= $(dpkg-deb -f "$deb" Version)), libuv1-dev, liblua5.4-dev, libssl-dev" ] \
    || fail "morph-dev Depends: $(dpkg-deb -f "$devdeb" Depends)"

echo "== lintian: no errors, no warnings"
# (informational tags are left: .comment sections, no init.d script,
# the test library unstripped)
lint=$(lintian --fail-on error,warning "$deb" "$devdeb" 2>&1) || { echo "$lint"; fail "lintian"; }

echo "== install into a scratch root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
# dependencies live in the real system, not in the scratch dpkg database
dpkg --root="$root" --force-depends --force-script-chrootless -i "$deb" "$devdeb" \
    >"$root/dpkg.out" 2>&1 || { cat "$root/dpkg.out"; fail "dpkg -i"; }
for f in usr/sbin/morphd usr/bin/morph etc/morph/morphd.ini \
         usr/lib/systemd/system/morphd.service usr/lib/systemd/system/morphd.socket \
         usr/share/man/man8/morphd.8.gz \
         usr/include/morph/plugin.h; do
    [ -e "$root/$f" ] || fail "missing $f"
done
# postinst enabled the unit (into DPKG_ROOT: nothing is started on this host)
[ -L "$root/etc/systemd/system/multi-user.target.wants/morphd.service" ] \
    || fail "postinst did not enable morphd.service"
plugins=$(dirname "$(find "$root/usr/lib" -name uppercase.so)")
# Debian's hardening: immediate binding (lintian hardening-no-bindnow) and
# fortified libc calls (hardening-no-fortify-functions)
for bin in usr/sbin/morphd usr/bin/morph; do
    readelf -d "$root/$bin" | grep -q 'BIND_NOW' || fail "$bin: no BIND_NOW"
    syms=$(readelf --dyn-syms -W "$root/$bin")
    echo "$syms" | grep -q '__[a-z]*_chk' || fail "$bin: no fortified functions"
done
unit=$root/usr/lib/systemd/system/morphd.service
for key in Type=notify NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
           PrivateTmp=yes RestrictAddressFamilies= 'ExecReload=/bin/kill -HUP' \
           Restart=on-failure DynamicUser=yes RestartPreventExitStatus=78; do
    grep -q "^$key" "$unit" || fail "unit lacks $key"
done
# reload checks the file first; no ExecStartPre, whose 78 would not stop
# the restarts (RestartPreventExitStatus sees only the main process)
grep -q '^ExecReload=/usr/sbin/morphd -t -q -c /etc/morph/morphd.ini$' "$unit" \
    || fail "unit: reload does not check the file"
! grep -q '^ExecStartPre' "$unit" || fail "unit: ExecStartPre is back"

echo "== the installed service answers"
"$root/usr/sbin/morphd" -c "$root/etc/morph/morphd.ini" \
    --set "morphd.plugin_dir=$plugins" \
    --set 'uppercase.listen=tcp://127.0.0.1:0 udp://127.0.0.1:0' 2>"$root/log" &
pid=$!
for _ in $(seq 200); do
    grep -q "started (pid" "$root/log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$root/log"; fail "morphd exited"; }
    sleep 0.05
done
# (the main process and its worker process each say where they listen)
port() { sed -n "s|.*service uppercase: listening on $1://127.0.0.1:\([0-9]*\) .*|\1|p" "$root/log" | head -n 1; }
tcp=$(port tcp)
udp=$(port udp)
got=$("$root/usr/bin/morph" "127.0.0.1:$tcp" hello world)
[ "$got" = "HELLO WORLD" ] || fail "TCP: '$got'"
got=$("$root/usr/bin/morph" --udp "127.0.0.1:$udp" hello world)
[ "$got" = "HELLO WORLD" ] || fail "UDP: '$got'"
kill -TERM "$pid"
wait "$pid" || fail "morphd exit status $?"
pid=

echo "== dpkg -r leaves only the conffile and the unit's enable records"
dpkg --root="$root" --force-depends --force-script-chrootless -r morph-dev morph >/dev/null
left() { (cd "$root" && find . \( -type f -o -type l \) ! -path './var/lib/dpkg/*' \
                 ! -name log ! -name dpkg.out | sort); }
left=$(left | grep -v -e '^./etc/systemd/system/' -e '^./var/lib/systemd/deb-systemd-helper-')
[ "$left" = "./etc/morph/morphd.ini" ] || fail "left behind: $left"
# postrm masked the unit whose file is gone
[ "$(readlink "$root/etc/systemd/system/morphd.service")" = /dev/null ] || fail "not masked"
[ "$(readlink "$root/etc/systemd/system/morphd.socket")" = /dev/null ] || fail "socket not masked"
echo "== dpkg --purge leaves nothing"
dpkg --root="$root" --force-depends --force-script-chrootless --purge morph >/dev/null
left=$(left)
[ -z "$left" ] || fail "purge left behind: $left"
[ ! -e "$root/etc/morph" ] || fail "purge kept /etc/morph"
echo "package: all passed"
