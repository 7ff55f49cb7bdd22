#!/bin/bash
# make test-perf: instructions per request, counted by callgrind
# (bench/callgrind.sh), for morphd against the libuv baseline built in the
# same tree, TCP and UDP 64-byte request/response. A count, not a time:
# the machine's other tenants do not move it by more than a percent or two
# (docs/benchmarks.md has the spread measured). Fails when a ratio is above
# its limit below, so that the hot path cannot grow unnoticed again. And
# the framings of issue 23 against line framing, on the same load.
#
#   tests/perf/perf_test.sh BUILD_DIR [ROUNDS]
set -euo pipefail
B=$1
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
cg="$here/../../bench/callgrind.sh"

# The limits: morphd's instructions per request over libuv's, each a
# median of per-round ratios: 1.00 on both, as issue 22 asks, so morphd
# fails as soon as it costs more than the hand-written libuv server.
# Measured (three rounds, quiet machine): TCP 0.973-0.978 (898-902 against
# 922), UDP 0.928-0.929 (708-709 against 763). TCP holds still whatever
# the load; UDP moves with it, since recvmmsg's batches (and so the cost a
# datagram shares) change with scheduling: +1 % with a build beside it and
# +5 % with a fuzzer beside it were seen before, still under 1.00 from
# 0.93. The margin left is what a feature may add before it must pay for
# itself; never raise a limit to pass.
TCP_LIMIT=${TCP_LIMIT:-1.00}
UDP_LIMIT=${UDP_LIMIT:-1.00}
# length, netstring and delimiter framing over line framing: 1.02, as
# issue 23 asks. Measured (three rounds): length 0.996-0.998, netstring
# 0.99 (1.016-1.022 before its two-digit path), delimiter 1.00 (line
# 1142-1149 instructions per request).
FRAMING_LIMIT=${FRAMING_LIMIT:-1.02}
# An http:// endpoint's POST of a 64 B body (its head parsed, a 200's head
# written) over line framing's 64 B request: issue 24. Measured (three
# rounds): 2720-2724 against 1153-1157, 2.36 x (3200, 2.77 x, before the
# token table and the one-pass head). The bound is that figure and a few
# per cent: a regression on the HTTP path fails here.
HTTP_LIMIT=${HTTP_LIMIT:-2.45}
# A WebSocket's 64 B text message over line framing's 64 B line: issue 24
# asks <= 1.15 x of CPU; the count is its proxy here. Measured (three
# rounds): 1285-1290 against 1146, 1.12 x (1.21 x before the SSE2 unmask
# that also tells ASCII text from text whose UTF-8 needs checking).
WS_LIMIT=${WS_LIMIT:-1.15}

declare -A ratios
for mode in tcp-rr udp-rr; do
    ratios[$mode]=""
    for r in $(seq "$rounds"); do
        base=$(bash "$cg" "$B" libuv "$mode" 2 | awk '{print $3}')
        ours=$(bash "$cg" "$B" morphd "$mode" 2 | awk '{print $3}')
        ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN { printf "%.3f", a / b }')
        echo "round $r $mode: morphd $ours, libuv $base instructions per request: $ratio x"
        ratios[$mode]+="$ratio "
    done
done

framings="length netstring delimiter http ws" # http, ws: an http:// endpoint
for f in $framings; do
    ratios[$f]=""
    for r in $(seq "$rounds"); do
        base=$(FRAMING=line bash "$cg" "$B" morphd tcp-rr 2 | awk '{print $3}')
        ours=$(FRAMING=$f bash "$cg" "$B" morphd tcp-rr 2 | awk '{print $3}')
        ratio=$(awk -v a="$ours" -v b="$base" 'BEGIN { printf "%.3f", a / b }')
        echo "round $r framing $f: $ours, line $base instructions per request: $ratio x"
        ratios[$f]+="$ratio "
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
fail=0
for mode in tcp-rr udp-rr; do
    m=$(echo "${ratios[$mode]}" | median)
    limit=$TCP_LIMIT
    [ "$mode" = udp-rr ] && limit=$UDP_LIMIT
    if awk -v m="$m" -v l="$limit" 'BEGIN { exit !(m > l) }'; then
        echo "FAIL $mode: morphd costs ${m}x the libuv baseline's instructions per request (limit ${limit}x)"
        fail=1
    else
        echo "ok   $mode: ${m}x the libuv baseline's instructions per request (limit ${limit}x)"
    fi
done
for f in $framings; do
    m=$(echo "${ratios[$f]}" | median)
    limit=$FRAMING_LIMIT
    [ "$f" = http ] && limit=$HTTP_LIMIT
    [ "$f" = ws ] && limit=$WS_LIMIT
    if awk -v m="$m" -v l="$limit" 'BEGIN { exit !(m > l) }'; then
        echo "FAIL framing = $f: ${m}x line framing's instructions per request (limit ${limit}x)"
        fail=1
    else
        echo "ok   framing = $f: ${m}x line framing's instructions per request (limit ${limit}x)"
    fi
done
exit $fail
