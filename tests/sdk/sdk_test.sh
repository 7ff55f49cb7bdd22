#!/bin/bash
# The plugin SDK as its users meet it: install morph into a scratch prefix,
# build plugins out of tree against it -- with `cc $(pkg-config ...)`, with
# CMake's find_package(morph), and in C++ -- load them into the installed
# morphd, and talk to them over TCP and UDP on loopback.
#
# usage: sdk_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d /tmp/morph-sdk-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
pcdir=$(dirname "$(find "$prefix" -name morph-plugin.pc)")
export PKG_CONFIG_PATH=$pcdir

echo "== a prefix install is what writing-plugins.md says (issue 21)"
# its PKG_CONFIG_PATH line, and a morphd and morph that find the plugins
# installed beside them rather than /usr/local's
[ "$pcdir" = "$prefix/lib/pkgconfig" ] ||
    fail "the .pc files are in $pcdir, not PREFIX/lib/pkgconfig as writing-plugins.md says"
grep -q 'export PKG_CONFIG_PATH=~/morph/lib/pkgconfig$' "$src/docs/writing-plugins.md" ||
    fail "writing-plugins.md's PKG_CONFIG_PATH line changed"
"$prefix/sbin/morphd" --version | grep -qx "plugins: $prefix/lib/morph/plugins" ||
    fail "morphd --version after a prefix install: $("$prefix/sbin/morphd" --version)"
[ "$(printf 'hi\n' | "$prefix/bin/morph" pipe uppercase)" = "HI" ] ||
    fail "morph pipe uppercase after a prefix install"
# the installed examples' README names every example and the guides it
# points at are installed beside it
doc=$prefix/share/doc/morph-dev
for guide in writing-plugins.md lua.md; do
    [ -f "$doc/$guide" ] || fail "$doc/$guide is not installed (examples/README.md points at it)"
done
for ex in "$doc"/examples/*/; do
    name=$(basename "$ex")
    grep -q "(\?$name/)" "$doc/examples/README.md" ||
        fail "examples/README.md does not mention $name/"
done

plugins=$work/plugins
mkdir -p "$plugins"

echo "== cc with pkg-config, C11 -pedantic, gcc and clang"
for compiler in gcc clang; do
    "$compiler" -std=c11 -Wall -Wextra -Werror -pedantic \
        $(pkg-config --cflags morph-plugin) -shared -fPIC \
        "$src/examples/rot/rot.c" -o "$plugins/rot.so"
done

echo "== C++17 -pedantic with <morph/plugin.hpp>, g++ and clang++"
for compiler in g++ clang++; do
    "$compiler" -std=c++17 -Wall -Wextra -Werror -pedantic \
        $(pkg-config --cflags morph-plugin) -shared -fPIC \
        "$src/tests/sdk/cxx_plugin.cpp" -o "$plugins/cxx_plugin.so"
done
echo "== <morph/plugin.h> alone: C++17 and C++20 -pedantic"
printf '#include <morph/plugin.h>\nint main() { return MORPH_OK; }\n' > "$work/h.cpp"
for std in c++17 c++20; do
    g++ -std=$std -Wall -Wextra -Werror -pedantic $(pkg-config --cflags morph-plugin) \
        "$work/h.cpp" -o "$work/h"
done
echo "== an ABI 1 C++20 source, unchanged, still compiles"
g++ -std=c++20 -Wall -Werror -pedantic $(pkg-config --cflags morph-plugin) \
    -shared -fPIC "$src/tests/abi1/cxx_plugin_abi1.cpp" -o "$work/cxx_abi1.so"

echo "== CMake find_package(morph) + morph_add_plugin()"
cmake -S "$src/examples/count" -B "$work/count" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/count" >/dev/null
cp "$work/count/count.so" "$plugins/"

echo "== the test helper through pkg-config"
cat > "$work/t.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <morph/testing.h>
int main(int argc, char **argv)
{
    char err[512];
    morph_test_t *t = morph_test_load(argv[1], "rot", NULL, err, sizeof err);
    if (t == NULL) { fprintf(stderr, "%s\n", err); return 1; }
    char *out = morph_test_transform(t, "Hello");
    int ok = out && strcmp(out, "Uryyb") == 0;
    free(out);
    morph_test_free(t);
    return ok && argc == 2 ? 0 : 1;
}
C
cc -std=c11 $(pkg-config --cflags morph-testing) "$work/t.c" -o "$work/t" \
    $(pkg-config --libs morph-testing)
"$work/t" "$plugins" || fail "testing helper"

echo "== libmorph-testing exports morph_test_* and nothing else"
lib=$(find "$prefix" -name libmorph-testing.a)
visible=$(readelf -sW "$lib" | awk '$5 == "GLOBAL" && $6 == "DEFAULT" && $7 != "UND" {print $8}')
others=$(echo "$visible" | grep -v '^morph_test_' || true)
[ -z "$others" ] || fail "libmorph-testing.a exports more than morph_test_*: $others"
echo "$visible" | grep -qx morph_test_load || fail "morph_test_load not exported"

echo "== the installed morphd loads them"
cat > "$work/sdk.ini" <<INI
[morphd]
plugin_dir = $plugins
user = nobody

[service sdk]
listen = tcp://127.0.0.1:0 udp://127.0.0.1:0
transform = rot | count
framing = line

[service cxx]
listen = tcp://127.0.0.1:0
transform = cxx_plugin
framing = line
INI
"$prefix/sbin/morphd" -t -c "$work/sdk.ini" || fail "morphd -t"
"$prefix/sbin/morphd" -c "$work/sdk.ini" 2>"$work/log" &
pid=$!
for _ in $(seq 200); do
    grep -q "started (pid" "$work/log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/log"; fail "morphd exited"; }
    sleep 0.05
done
port() { sed -n "s|.*service $1: listening on $2://127.0.0.1:\([0-9]*\) .*|\1|p" "$work/log"; }
tcp=$(port sdk tcp)
udp=$(port sdk udp)
cxx=$(port cxx tcp)
[ -n "$tcp" ] && [ -n "$udp" ] && [ -n "$cxx" ] || { cat "$work/log"; fail "no ports"; }

got=$(printf 'Hello\nWorld\n' | nc -q1 127.0.0.1 "$tcp")
[ "$got" = "$(printf '1: Uryyb\n2: Jbeyq')" ] || fail "TCP reply: '$got'"
got=$(printf 'Hello' | nc -u -w1 127.0.0.1 "$udp")
[ "$got" = "1: Uryyb" ] || fail "UDP reply: '$got'"
got=$(printf 'abc\nthrow\ndef\n' | nc -q1 127.0.0.1 "$cxx")
[ "$got" = "$(printf 'cba\nfed')" ] || fail "C++ plugin reply: '$got'"
grep -q "plugin cxx_plugin: asked to throw" "$work/log" || fail "exception not logged"

kill -TERM "$pid"
wait "$pid" || fail "morphd exit status $?"
pid=
echo "sdk: all passed"
