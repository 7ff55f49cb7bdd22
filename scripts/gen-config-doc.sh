#!/bin/sh
# Regenerates the key table of docs/configuration.md from morphd's own key
# table (morphd --help-config=markdown). The test suite fails when the
# document and the binary disagree. usage: gen-config-doc.sh BUILD_DIR
set -eu
build=${1:-build}
doc=docs/configuration.md
tmp=$(mktemp)
awk '/<!-- BEGIN KEYS/ { print; system("'"$build"'/morphd --help-config=markdown"); skip = 1; next }
     /<!-- END KEYS/   { skip = 0 }
     !skip' "$doc" > "$tmp"
mv "$tmp" "$doc"
