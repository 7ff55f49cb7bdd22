#!/bin/bash
# The man pages tell everything the programs do: every option that
# `--help` of morphd, morph and each morph subcommand lists is in the page;
# every subcommand of morph has its section in morph(1); every signal morphd
# handles (uv_signal_start in core/) is in morphd(8) and in `morphd --help`;
# every bundled plugin is named in morphd(8). (The key list of morphd.ini(5)
# is generated, and test_cli checks that it is current.) And the README
# says what each counter of `morph stats` counts.
#
# usage: man_pages_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
man=$src/docs/man
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# roff writes "-" as "\-"; undo that (and font escapes) to search the text.
# (Into a variable, then searched: `grep -q` in a pipe would end the pipe
# early, which pipefail reports as a failure.)
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$1"; }
has() { grep -q "$@"; } # has [GREP OPTIONS] PATTERN <<<"$text"

# Every --long and -s option in a --help text must be in the page.
options_in_page() { # HELP_TEXT PAGE WHAT
    local opts page
    page=$(plain "$2")
    opts=$(echo "$1" | grep -oE '(^|[[:space:],\[])--?[a-zA-Z][a-zA-Z-]*' |
           sed 's/^[[:space:],\[]*//' | sort -u)
    [ -n "$opts" ] || { fail "$3: no options found in its --help"; return; }
    for o in $opts; do
        has -e "$o\b" <<<"$page" || fail "$3: $o (in --help) is not in $(basename "$2")"
    done
}

options_in_page "$("$build/morphd" --help)" "$man/morphd.8" "morphd"
options_in_page "$("$build/morph" --help)" "$man/morph.1" "morph"

# morph's subcommands: each listed by `morph --help`, each with a section
morph1=$(plain "$man/morph.1")
morphd8=$(plain "$man/morphd.8")
morph_help=$("$build/morph" --help)
morphd_help=$("$build/morphd" --help)
subcommands=$(sed -n 's/.*strcmp(argv\[1\], "\([a-z]*\)").*/\1/p' "$src/cli/morph.c")
[ -n "$subcommands" ] || fail "no subcommands found in cli/morph.c"
for sub in $subcommands; do
    help=$("$build/morph" "$sub" --help 2>&1) || true
    has "morph $sub" <<<"$morph_help" || fail "morph --help lacks 'morph $sub'"
    has "^\.SH MORPH ${sub^^}" <<<"$morph1" || fail "morph.1 has no section MORPH ${sub^^}"
    options_in_page "$help" "$man/morph.1" "morph $sub"
    # a subcommand with subcommands of its own (morph plugin info)
    for subsub in $(echo "$help" | sed -n "s/^Usage: morph $sub \([a-z]*\) .*/\1/p"); do
        has "morph $sub $subsub" <<<"$morph_help" ||
            fail "morph --help lacks 'morph $sub $subsub'"
        has "^\.SH MORPH ${sub^^} ${subsub^^}" <<<"$morph1" ||
            fail "morph.1 has no section MORPH ${sub^^} ${subsub^^}"
    done
done

# morphd's signals
signals=$(grep -ho 'uv_signal_start([^;]*SIG[A-Z0-9]*' "$src"/core/*/*.c | grep -o 'SIG[A-Z0-9]*' | sort -u)
[ -n "$signals" ] || fail "no signals found in core/"
for sig in $signals; do
    has -w "$sig" <<<"$morphd8" || fail "morphd.8 does not say what $sig does"
    has -w "$sig" <<<"$morphd_help" || fail "morphd --help does not say what $sig does"
done

# the bundled plugins
for so in "$build"/plugins/*.so; do
    name=$(basename "$so" .so)
    has -w "$name" <<<"$morphd8" || fail "morphd.8 does not name the bundled plugin $name"
done

# every counter of `morph stats` (the X-macro list in core/engine/stats.h) has its
# row in the README's table, which says what it counts
readme=$(cat "$src/README.md")
counters=$(grep -oE '^ *X\([a-z_0-9]+,' "$src/core/engine/stats.h" | grep -oE '[a-z_0-9]+' | grep -v '^X$')
[ -n "$counters" ] || fail "no counters found in core/engine/stats.h"
for c in $counters; do
    has -F "| \`$c\` |" <<<"$readme" || fail "README.md's counter table has no row for $c"
done

[ "$failures" -eq 0 ] || exit 1
echo "man pages: all passed"
