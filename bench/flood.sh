#!/usr/bin/env bash
# bench/flood.sh - a random-source SYN flood with a few long legitimate flows running through
# it, offline: does memory stay bounded, are the evictions counted, do the legitimate flows
# keep their verdicts?
#
#   1. build/bench/gen_workload --profile flood: FLOOD_FLOWS SYNs from random spoofed IPv4
#      sources to the servers of FLOOD_LEGIT long TLS/QUIC flows that run from the first to
#      the last packet (flood.pcap), and the same legitimate packets alone (clean.pcap).
#   2. svcsensor --learn on clean.pcap: the map knows the legitimate flows and nothing else.
#   3. svcsensor -t FLOOD_THREADS -r flood.pcap under /usr/bin/time -v, twice: with the report
#      (as configured by default) and with --report "" (no report), so that the report's part
#      of the peak RSS shows: the report aggregates per source key and every spoofed source is
#      one.
#   4. Prints the flows offered, peak RSS of both runs, the exit summary's "flows ended ...
#      (..., evicted N, ...)" and "flows judged" lines, the legitimate flows' rows of the flow
#      CSV (application, end reason, verdict), and PASS/FAIL for: every legitimate flow judged
#      NONE, ended at shutdown (never evicted, never split), evictions counted, and the peak
#      RSS of the run without report under the flow-table bound printed beside it.
#
# Environment (defaults in brackets):
#   FLOOD_FLOWS      spoofed SYNs = flows offered by the flood [5000000]
#   FLOOD_LEGIT      long legitimate flows [8]
#   FLOOD_EVERY      one legitimate packet after every N SYNs [20]
#   FLOOD_THREADS    svcsensor -t [2]
#   FLOOD_MAX_FLOWS  --max-flows per worker [svcsensor's default, 262144]
#   FLOOD_DIR        scratch directory [bench/out/flood]
#   FLOOD_SEED       generator seed [1]
#   FLOOD_KEEP=1     keep the pcaps and the flow CSV (several GB at 5 M flows) [0]
#   FLOOD_SVCSENSOR  the binary [./svcsensor]
#   FLOOD_ARGS       more svcsensor arguments, for the learn run and both detect runs [none].
#                    By default every spoofed source is outside local_networks, so its host
#                    key is "remote" and the report stays small; FLOOD_ARGS="--local 0.0.0.0/0"
#                    makes each spoofed source a key of its own (the report's worst case).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FLOWS=${FLOOD_FLOWS:-5000000}
LEGIT=${FLOOD_LEGIT:-8}
EVERY=${FLOOD_EVERY:-20}
T=${FLOOD_THREADS:-2}
MAXF=${FLOOD_MAX_FLOWS:-262144}
DIR=${FLOOD_DIR:-$ROOT/bench/out/flood}
SEED=${FLOOD_SEED:-1}
SVC=${FLOOD_SVCSENSOR:-$ROOT/svcsensor}
read -r -a XARGS <<<"${FLOOD_ARGS:-}"
GEN=$ROOT/build/bench/gen_workload
for x in "$SVC" "$GEN" /usr/bin/time; do
	[ -x "$x" ] || { echo "bench/flood.sh: $x missing (make all bench-bins)" >&2; exit 2; }
done
mkdir -p "$DIR"
cleanup() { [ "${FLOOD_KEEP:-0}" = 1 ] || rm -f "$DIR"/{flood,clean}.pcap "$DIR"/flows*.csv*; }
trap cleanup EXIT

GA=(--profile flood --flows "$FLOWS" --legit "$LEGIT" --legit-every "$EVERY" --seed "$SEED")
echo "bench/flood.sh: generating ${GA[*]}"
"$GEN" -o "$DIR/flood.pcap" "${GA[@]}" >"$DIR/flood.json"
"$GEN" -o "$DIR/clean.pcap" "${GA[@]}" --legit-only >"$DIR/clean.json"

rm -f "$DIR/map.json"
"$SVC" --learn -r "$DIR/clean.pcap" -t 1 -m "$DIR/map.json" --print none --log "" \
	--report "" -q "${XARGS[@]}" 2>"$DIR/learn.err"

# run NAME ARGS...: one timed detect run; its stderr (summary + time -v) in DIR/NAME.err
run() {
	local name=$1; shift
	# The flow CSV appends across runs and rotates by size (flows_max_bytes): start it
	# afresh and keep it whole in one file, since the legitimate flows' rows are read back.
	rm -f "$DIR/$name".anomalies.log* "$DIR/$name".report* "$DIR/flows.$name.csv"*
	printf '{"flows_max_bytes": 0}\n' >"$DIR/flood-config.json"
	/usr/bin/time -v "$SVC" -c "$DIR/flood-config.json" -t "$T" -r "$DIR/flood.pcap" -m "$DIR/map.json" \
		--max-flows "$MAXF" --print none --log "$DIR/$name.anomalies.log" \
		-o "$DIR/flows.$name.csv" -q "${XARGS[@]}" "$@" >/dev/null 2>"$DIR/$name.err" || echo "  $name: exit $?"
}
echo "bench/flood.sh: svcsensor -t $T -r flood.pcap --max-flows $MAXF ${XARGS[*]} (with report, then without)"
run with-report --report "$DIR/with-report.report"
run no-report --report ""

rss() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$DIR/$1.err"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DIR/$1.err"; }
offered=$(sed -n 's/.*"packets":[0-9]*,"flows":\([0-9]*\).*/\1/p' "$DIR/flood.json")
legit_flows=$(sed -n 's/.*"packets":[0-9]*,"flows":\([0-9]*\).*/\1/p' "$DIR/clean.json")
evicted=$(sed -n 's/.*flows ended .*evicted \([0-9]*\).*/\1/p' "$DIR/no-report.err")

# The bound of the flow tables (README's memory figures: a flow entry is 176 B; a flow still
# in detection, as every unanswered SYN is, holds nDPI's state, ~2.1 KB with the entry in the
# hold-detect bench): threads x max_flows x 2.1 KB + the bucket arrays (4 B x the power of two
# >= 2 x max_flows, per worker), on top of the base of a run (nDPI modules, map, buffers),
# taken here as the RSS of the learn run on the clean capture.
base=$(/usr/bin/time -f %M "$SVC" --learn -r "$DIR/clean.pcap" -t "$T" -m "$DIR/map2.json" \
	--print none --log "" --report "" -q "${XARGS[@]}" 2>&1 >/dev/null | tail -n1)
rm -f "$DIR/map2.json"
bound=$(awk -v t="$T" -v m="$MAXF" -v base="$base" 'BEGIN {
	b = 1; while (b < 2 * m) b *= 2
	printf "%.1f", (base * 1024 + t * (m * 2150 + b * 4)) / 1048576 }')

echo
echo "flows offered          $offered ($((offered - legit_flows)) spoofed SYNs + $legit_flows legitimate)"
echo "peak RSS, with report  $(rss with-report) MB (wall $(wall with-report))"
echo "peak RSS, no report    $(rss no-report) MB (wall $(wall no-report))"
echo "  the report's part    $(awk -v a="$(rss with-report)" -v b="$(rss no-report)" 'BEGIN {printf "%.1f", a - b}') MB"
echo "flow-table bound       $bound MB = base $((base / 1024)) MB + $T x ($MAXF x 2150 B + buckets)"
echo "evicted                $evicted"
grep -E 'flows ended|flows judged|lookups over' "$DIR/no-report.err" | sed 's/^/  /'
echo "legitimate flows (flow CSV rows from 10.0.0.0/8):"
awk -F, 'NR > 1 && $3 ~ /^10\./ {printf "  %s:%s -> %s:%s  %s  pkts %s  %s  %s\n", $3, $4, $5, $6, $19, $13, $23, $24}' \
	"$DIR/flows.no-report.csv" | tee "$DIR/legit.txt"

fail=0
check() { if eval "$2"; then echo "  pass  $1"; else echo "  FAIL  $1"; fail=1; fi; }
rows=$(wc -l <"$DIR/legit.txt")
echo "checks:"
check "every legitimate flow is one row ($rows of $legit_flows)" '[ "$rows" = "$legit_flows" ]'
check "legitimate flows judged NONE" '! grep -qv " NONE$" "$DIR/legit.txt"'
check "legitimate flows ended at shutdown (not evicted)" '! grep -v " shutdown  NONE$" "$DIR/legit.txt" | grep -q .'
check "evictions counted (> 0)" '[ "${evicted:-0}" -gt 0 ]'
check "peak RSS without report <= flow-table bound" "awk -v a=$(rss no-report) -v b=$bound 'BEGIN {exit !(a <= b)}'"
exit $fail
