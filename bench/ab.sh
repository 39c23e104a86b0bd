#!/usr/bin/env bash
# bench/ab.sh - A/B of two svcsensor binaries on one offline workload: the same pcap, the same
# map, runs interleaved (A, B, A, B ...) so machine noise hits both alike; prints each run,
# the medians of wall and user CPU time and the fastest wall time of each, and B/A.
#
# Usage: bench/ab.sh A_BINARY B_BINARY [RUNS]
# Environment: AB_DIR scratch dir [bench/out/ab], AB_THREADS -t [1],
#   AB_GEN generator arguments ["--profile dpi --flows 20000 --packets 1000000 --seed 1"]
# The workload: build/bench/gen_workload -o AB_DIR/wl.pcap AB_GEN; the map: B --learn on it.
# Each timed run: BIN -r wl.pcap -t AB_THREADS -m map.json --print none --log ... --report ... -q
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: bench/ab.sh A_BINARY B_BINARY [RUNS]" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2") RUNS=${3:-3}
DIR=${AB_DIR:-$ROOT/bench/out/ab}
T=${AB_THREADS:-1}
read -r -a GENARGS <<<"${AB_GEN:---profile dpi --flows 20000 --packets 1000000 --seed 1}"
GEN=$ROOT/build/bench/gen_workload
[ -x "$GEN" ] || { echo "bench/ab.sh: $GEN missing (make bench-bins)" >&2; exit 2; }
mkdir -p "$DIR"
PCAP=$DIR/wl.pcap
if [ ! -s "$PCAP" ] || [ "$(cat "$DIR/wl.args" 2>/dev/null)" != "${GENARGS[*]}" ]; then
	"$GEN" -o "$PCAP" "${GENARGS[@]}" >"$DIR/wl.json"
	printf '%s' "${GENARGS[*]}" >"$DIR/wl.args"
fi
rm -f "$DIR/map.json"
"$B" --learn -r "$PCAP" -t 1 -m "$DIR/map.json" --print none --log "$DIR/learn.log" \
	--report "$DIR/learn-report.txt" -q >/dev/null 2>"$DIR/learn.err"
cat "$PCAP" >/dev/null # page cache

run() { # run NAME BIN I: one timed run, "wall user" appended to DIR/NAME.times
	local name=$1 bin=$2 i=$3
	rm -f "$DIR/$name.log"*
	/usr/bin/time -f '%e %U %M' -o "$DIR/$name.$i.time" "$bin" -r "$PCAP" -t "$T" \
		-m "$DIR/map.json" --print none --log "$DIR/$name.log" --report "$DIR/$name.report" \
		-q >/dev/null 2>"$DIR/$name.$i.err" || true
	tail -n1 "$DIR/$name.$i.time" >>"$DIR/$name.times"
	echo "  $name run $i: wall/user/maxrss_kb $(tail -n1 "$DIR/$name.$i.time")"
}
: >"$DIR/A.times"
: >"$DIR/B.times"
echo "bench/ab.sh: A=$A B=$B, $RUNS runs each, -t $T, workload ${GENARGS[*]}"
for i in $(seq 1 "$RUNS"); do
	run A "$A" "$i"
	run B "$B" "$i"
done
med() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
aw=$(cut -d' ' -f1 "$DIR/A.times" | med) bw=$(cut -d' ' -f1 "$DIR/B.times" | med)
au=$(cut -d' ' -f2 "$DIR/A.times" | med) bu=$(cut -d' ' -f2 "$DIR/B.times" | med)
mn() { sort -n | head -n1; }
an=$(cut -d' ' -f1 "$DIR/A.times" | mn) bn=$(cut -d' ' -f1 "$DIR/B.times" | mn)
awk -v aw="$aw" -v bw="$bw" -v au="$au" -v bu="$bu" -v an="$an" -v bn="$bn" 'BEGIN {
	printf "median wall s: A %.2f  B %.2f  B/A %.3f\n", aw, bw, bw / aw
	printf "median user s: A %.2f  B %.2f  B/A %.3f\n", au, bu, bu / au
	printf "min wall s:    A %.2f  B %.2f  B/A %.3f\n", an, bn, bn / an }'
