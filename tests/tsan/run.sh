#!/usr/bin/env bash
# ThreadSanitizer run (make tsan): the stress programs, then the real threaded binary over the
# shipped captures at -t 1, 2 and 4, with SIGHUP reloads during a long run and SIGINT at the
# end. Any TSan report fails the run (halt_on_error, exitcode 66).
set -euo pipefail
build=${1:-build-tsan}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export TSAN_OPTIONS="suppressions=$here/tsan.supp halt_on_error=1 exitcode=66 second_deadlock_stack=1"
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

fail() { echo "tsan: FAIL: $*" >&2; exit 1; }
passed=0 failed=0

for prog in "$root/$build"/tsan/*; do
	[ -x "$prog" ] || continue
	if "$prog" >"$tmp/out" 2>&1; then
		passed=$((passed + 1)); echo "tsan: ok $(basename "$prog"): $(tail -1 "$tmp/out")"
	else
		failed=$((failed + 1)); cat "$tmp/out"; echo "tsan: FAIL $(basename "$prog")"
	fi
done

bin="$root/$build/svcsensor"
cd "$tmp"
# Learn, then detect at several worker counts.
for t in 1 2 4; do
	if "$bin" --learn -r "$root/pcaps/baseline.pcap" -t "$t" -m map$t.json --print none -q \
		--log log$t --report rep$t -o learn$t.csv >out 2>err &&
	   "$bin" -r "$root/pcaps/anomalies.pcap" -r "$root/pcaps/edge/vlan.pcap" -t "$t" \
		-m map$t.json --print all -q --log log$t --report rep$t -o det$t.csv >out 2>err; then
		passed=$((passed + 1)); echo "tsan: ok learn+detect -t $t: $(tail -1 err)"
	else
		failed=$((failed + 1)); cat err; echo "tsan: FAIL learn+detect -t $t"
	fi
done
# Mapped classic pcap (above) and libpcap (pcapng, standard input) readers feed the workers
# differently: run the libpcap reader thread too.
if "$bin" -r "$root/pcaps/edge/pcapng.pcapng" -r - -t 2 -m map2.json --print none -q \
	--log logp --report repp -o detp.csv <"$root/pcaps/anomalies.pcap" >out 2>err; then
	passed=$((passed + 1)); echo "tsan: ok libpcap reader -t 2: $(tail -1 err)"
else
	failed=$((failed + 1)); cat err; echo "tsan: FAIL libpcap reader -t 2"
fi
# The flow CSV input: its rows go through the queue to the detector thread like a worker's flows.
if "$bin" --learn --flows-in learn2.csv -m mapcsv.json --print none --log logc --report repc \
	>out 2>err && grep -q "rows learned, 0 rejected" err; then
	passed=$((passed + 1)); echo "tsan: ok flow CSV input: $(tail -1 err)"
else
	failed=$((failed + 1)); cat err; echo "tsan: FAIL flow CSV input"
fi
# A long run (the baseline 40 times) with map reloads and a stop signal in the middle.
args=()
for i in $(seq 40); do args+=(-r "$root/pcaps/baseline.pcap"); done
"$bin" "${args[@]}" -t 2 -m map2.json --print none -q --log logs --report reps -o long.csv \
	>out 2>err &
pid=$!
# Signal only once the sensor blocks SIGHUP (its main's first act; TSan start-up is slow):
# SigBlk in /proc is a hex mask, SIGHUP is bit 0.
for i in $(seq 100); do
	blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' /proc/$pid/status 2>/dev/null || true)
	[ -n "$blk" ] && [ $(( 0x$blk & 1 )) = 1 ] && break
	sleep 0.1
done
for i in 1 2 3 4 5; do sleep 0.3; kill -HUP "$pid" 2>/dev/null || true; done
kill -INT "$pid" 2>/dev/null || true
rc=0; wait "$pid" || rc=$?
pid=""
if [ "$rc" = 0 ] && grep -q "= judged" err; then
	passed=$((passed + 1)); echo "tsan: ok signals: $(tail -1 err)"
else
	failed=$((failed + 1)); cat err; echo "tsan: FAIL signals (exit $rc)"
fi
echo "tsan: $passed passed, $failed failed"
[ "$failed" = 0 ]
