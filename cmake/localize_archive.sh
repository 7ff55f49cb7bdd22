#!/bin/sh
# localize_archive.sh ARCHIVE: makes every hidden symbol of a static
# library local. The library's objects are linked into one relocatable
# object (ld -r), whose hidden names -- everything but morph_test_* in
# libmorph-testing.a -- objcopy then makes local, so that a program linked
# with it may define the same names (issue 22). The archive is rewritten
# in place, holding that one object.
set -eu
archive=$1
: "${LD:=ld}" "${OBJCOPY:=objcopy}" "${AR:=ar}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$LD" -r --whole-archive "$archive" -o "$work/morph-testing.o"
"$OBJCOPY" --localize-hidden "$work/morph-testing.o"
rm -f "$archive"
"$AR" rcs "$archive" "$work/morph-testing.o"
