#!/bin/sh
# Regenerates the key lists of docs/configuration.md and of morphd.ini(5)
# from morphd's own key table and the bundled plugins' declared options
# (morphd --help-config=markdown, =man). The test suite fails when a
# document and the binary disagree. usage: gen-config-doc.sh BUILD_DIR
set -eu
build=${1:-build}
regen() { # FILE FORMAT BEGIN-MARK END-MARK
    tmp=$(mktemp)
    # (marks through the environment: awk -v would read \" as an escape)
    CMD="$build/morphd --help-config=$2" B="$3" E="$4" awk '
         index($0, ENVIRON["B"]) { print; system(ENVIRON["CMD"]); skip = 1; next }
         index($0, ENVIRON["E"]) { skip = 0 }
         !skip' "$1" > "$tmp"
    cat "$tmp" > "$1"
    rm -f "$tmp"
}
regen docs/configuration.md markdown '<!-- BEGIN KEYS' '<!-- END KEYS'
regen docs/man/morphd.ini.5 man '.\" BEGIN KEYS' '.\" END KEYS'
