#!/bin/bash
# Runs a Markdown document's commands so the document cannot rot: every
# ```sh block is executed in order, in one shell, in an empty folder, with
# morph installed into a scratch prefix on PATH; a ```text block right after
# an ```sh block is the output that block must print, exactly. Port 12013
# in the document is replaced by a free port so runs can go in parallel.
#
# usage: doc_test.sh BUILD_DIR DOCUMENT.md
set -euo pipefail
build=$1
doc=$2
work=$(mktemp -d /tmp/morph-doc-XXXXXX)
trap 'rm -rf "$work"' EXIT

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
pcdir=$(dirname "$(find "$prefix" -name morph-plugin.pc)")

port=
for _ in $(seq 50); do
    p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768-)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port" >&2; exit 1; }

# Split the document into numbered blocks: sh.N (commands), text.N (the
# output expected of sh.N).
mkdir "$work/blocks" "$work/home"
awk -v dir="$work/blocks" -v port="$port" '
    /^```sh$/   { n++; out = dir "/sh." n; inblock = 1; last = "sh"; next }
    /^```text$/ { if (last == "sh") { out = dir "/text." n; inblock = 1 }
                  else { out = "/dev/null"; inblock = 1 }
                  last = "text"; next }
    /^```/      { if (inblock) { inblock = 0; close(out); next }
                  out = "/dev/null"; inblock = 1; last = "other"; next }
    inblock     { gsub(/12013/, port); print > out; next }
    /[^ \t]/    { if (last == "sh" || last == "text") last = "prose" }
' "$doc"

n=$(ls "$work/blocks" | grep -c '^sh\.' || true)
[ "$n" -gt 0 ] || { echo "no sh blocks in $doc" >&2; exit 1; }

# One script: each block's output goes to out.N, then is compared.
script=$work/run.sh
{
    echo 'set -euo pipefail'
    echo "trap 'kill \$(jobs -p) 2>/dev/null || true' EXIT  # servers the document started"
    echo "trap 'echo \"failed: \$BASH_COMMAND\" >&2; cat morphd.log >&2 2>/dev/null || true' ERR"
    echo "cd '$work/home'"
    for i in $(seq "$n"); do
        echo "echo '--- block $i' >&2"
        echo "{"
        cat "$work/blocks/sh.$i"
        echo "} > '$work/blocks/out.$i'"
        if [ -f "$work/blocks/text.$i" ]; then
            echo "diff -u '$work/blocks/text.$i' '$work/blocks/out.$i' >&2 || { echo 'block $i printed something else' >&2; exit 1; }"
        fi
    done
} > "$script"

PATH="$prefix/bin:$prefix/sbin:$PATH" \
PKG_CONFIG_PATH="$pcdir" \
CMAKE_PREFIX_PATH="$prefix" \
    bash "$script"
echo "doc: $n command blocks of $(basename "$doc") ran as written"
