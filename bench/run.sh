#!/usr/bin/env bash
# bench/run.sh - the svcsensor bench harness.
#
# Generates deterministic workloads (bench/gen_workload.c), then measures, each BENCH_RUNS
# times interleaved (so machine noise hits every tool alike) and reported as the median:
#   offline   floor (bare libpcap loop), ndpiReader -q -i FILE, svcsensor -r FILE -t 1 / -t 2
#             on a DPI-heavy and a gateway workload: packets/s, Gbit/s, flows/s, CPU s,
#             peak RSS, ratios svcsensor/ndpiReader, svcsensor/floor, -t2/-t1
#   memory    peak RSS and bytes per concurrent flow for flows held classified-and-idle and
#             flows held in detection, at BENCH_MEM_FLOWS concurrent flows (eviction checked)
#   detector  build/bench/detector_bench: finished flows/s through the detector, 10 k / 100 k
#             map entries
#   live      tcpreplay into a veth pair inside a network namespace, svcsensor -i -t 1/-t 2
#             and ndpiReader -i capturing: packets sent, received, dropped
# Every figure that matters is a ratio against a peer or the floor measured in the same run.
# Output: a table on the terminal, and $BENCH_DIR/results.json (all samples, medians, ratios,
# targets, machine description, command line). A piece whose dependency is missing prints
# "skipped: reason" instead of failing.
#
# Environment (defaults in brackets):
#   BENCH_DIR         scratch dir for workloads and logs [bench/out]
#   BENCH_RUNS        runs per measurement, median reported [3]
#   BENCH_FULL=1      10 M packets, DPI with 100 k concurrent flows (about 1 M flows)
#   BENCH_PACKETS     packets per offline workload [2000000, full: 10000000]
#   BENCH_SECTIONS    which sections ["offline memory detector live"]
#   BENCH_MEM_FLOWS   concurrent flows for the memory section ["100000 1000000"]
#   BENCH_MEM_RUNS    runs per memory measurement [BENCH_RUNS]
#   BENCH_DET_FLOWS   records pushed through the detector per run [2000000]
#   BENCH_LIVE_PACKETS packets replayed per live run [200000]
#   BENCH_LIVE_RATES  replay rates, "top" = --topspeed ["top 50000 100000 200000"]
#   BENCH_LIVE_PROFILE workload replayed live [gateway]
#   BENCH_SVCSENSOR   the binary [./svcsensor]
#   BENCH_DETECTOR_BENCH the detector bench binary [build/bench/detector_bench]
#   BENCH_SEED        workload seed [1]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CMDLINE="$0 $*"
BENCH_DIR=${BENCH_DIR:-$ROOT/bench/out}
RUNS=${BENCH_RUNS:-3}
FULL=${BENCH_FULL:-0}
if [ "$FULL" = 1 ]; then PACKETS=${BENCH_PACKETS:-10000000}; DPI_CONC=100000
else PACKETS=${BENCH_PACKETS:-2000000}; DPI_CONC=20000; fi
GW_CONC=$(( PACKETS / 400 > 100 ? PACKETS / 400 : 100 ))
SECTIONS=${BENCH_SECTIONS:-offline memory detector live}
MEM_FLOWS=${BENCH_MEM_FLOWS:-100000 1000000}
MEM_RUNS=${BENCH_MEM_RUNS:-$RUNS}
DET_FLOWS=${BENCH_DET_FLOWS:-2000000}
LIVE_PACKETS=${BENCH_LIVE_PACKETS:-200000}
LIVE_RATES=${BENCH_LIVE_RATES:-top 50000 100000 200000}
LIVE_PROFILE=${BENCH_LIVE_PROFILE:-gateway}
SVC=${BENCH_SVCSENSOR:-$ROOT/svcsensor}
SEED=${BENCH_SEED:-1}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

mkdir -p "$BENCH_DIR"/{bin,wl,logs}
SAMPLES=$BENCH_DIR/samples.tsv
SKIPS=$BENCH_DIR/skips.tsv
LIVE=$BENCH_DIR/live.tsv
: >"$SAMPLES"; : >"$SKIPS"; : >"$LIVE"

# ------------------------------------------------------------------ cleanup
STARTED_PIDS=()
NETNS=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for p in "${STARTED_PIDS[@]:-}"; do
		[ -n "$p" ] && kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null || true
	done
	sleep 0.2
	for p in "${STARTED_PIDS[@]:-}"; do
		[ -n "$p" ] && kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
	done
	[ -n "$NETNS" ] && ip netns del "$NETNS" 2>/dev/null || true
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "bench: $*" >&2; }
skip() { # SECTION ITEM REASON
	printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$SKIPS"
	say "$1 $2: skipped: $3"
}
has_section() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ------------------------------------------------------------------ tools
if [ ! -x /usr/bin/time ]; then
	say "installing GNU time (apt package time)"
	{ apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time; }; } >/dev/null 2>&1 || true
fi
[ -x /usr/bin/time ] || { say "GNU time (/usr/bin/time) is missing: apt-get install time"; exit 1; }

# Bench programs: the Makefile's build/bench/NAME when up to date, else built here (gen_workload
# and floor do not need the product's library).
tool() { # NAME LIBS...
	local name=$1; shift
	local made=$ROOT/build/bench/$name src=$ROOT/bench/$name.c
	if [ -x "$made" ] && [ "$made" -nt "$src" ]; then echo "$made"; return 0; fi
	local out=$BENCH_DIR/bin/$name
	if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
		${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -o "$out" "$src" "$@" >&2 || return 1
	fi
	echo "$out"
}
GEN=$(tool gen_workload -lgcrypt) || { say "cannot build bench/gen_workload.c"; exit 1; }
FLOOR=$(tool floor -lpcap) || { say "cannot build bench/floor.c"; exit 1; }
DETB=${BENCH_DETECTOR_BENCH:-}
if [ -z "$DETB" ] && [ -x "$ROOT/build/bench/detector_bench" ] && [ "$ROOT/build/bench/detector_bench" -nt "$ROOT/bench/detector_bench.c" ]; then
	DETB=$ROOT/build/bench/detector_bench
fi
NDPI=$(command -v ndpiReader || true)
SVC_OK=1; SVC_WHY=""
if [ ! -x "$SVC" ]; then SVC_OK=0; SVC_WHY="svcsensor binary not built yet ($SVC; run make)"; fi

# ------------------------------------------------------------------ machine
NDPI_VERSION=$(dpkg-query -W -f='${Version}' libndpi-bin 2>/dev/null || echo unknown)
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$(git -C "$ROOT" status --porcelain -- src include 2>/dev/null | grep -q . && echo "+dirty" || true)
SVC_VERSION=""
[ "$SVC_OK" = 1 ] && SVC_VERSION=$("$SVC" --version 2>&1 | head -n1 || true)
cat >"$BENCH_DIR/machine.json" <<EOF
{"nproc": $(nproc), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/"/\\"/g')",
 "mem_kb": $(awk '/MemTotal/{print $2}' /proc/meminfo), "kernel": "$(uname -r)",
 "ndpi": "$NDPI_VERSION", "svcsensor_git": "$GIT_REV$GIT_DIRTY", "svcsensor_version": "$(printf '%s' "$SVC_VERSION" | sed 's/"/\\"/g')",
 "libpcap": "$(dpkg-query -W -f='${Version}' libpcap0.8 2>/dev/null || echo unknown)",
 "tcpreplay": "$(tcpreplay -V 2>&1 | head -n1 | sed 's/"/\\"/g')",
 "date_utc": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "cmdline": "$(printf '%s' "$CMDLINE" | sed 's/"/\\"/g')",
 "env": {"BENCH_RUNS": "$RUNS", "BENCH_FULL": "$FULL", "BENCH_PACKETS": "$PACKETS", "BENCH_SECTIONS": "$SECTIONS",
         "BENCH_MEM_FLOWS": "$MEM_FLOWS", "BENCH_MEM_RUNS": "$MEM_RUNS", "BENCH_DET_FLOWS": "$DET_FLOWS",
         "BENCH_LIVE_PACKETS": "$LIVE_PACKETS", "BENCH_LIVE_RATES": "$LIVE_RATES", "BENCH_LIVE_PROFILE": "$LIVE_PROFILE",
         "BENCH_SEED": "$SEED", "BENCH_SVCSENSOR": "$SVC"}}
EOF

# ------------------------------------------------------------------ helpers
# gen NAME ARGS...: workload $BENCH_DIR/wl/NAME.pcap (+ NAME.json), regenerated only when the
# arguments or the generator changed.
gen() {
	local name=$1; shift
	local pcap=$BENCH_DIR/wl/$name.pcap meta=$BENCH_DIR/wl/$name.json args="$*"
	if [ -s "$pcap" ] && [ -s "$meta" ] && [ "$(cat "$meta.args" 2>/dev/null)" = "$args" ] &&
		[ "$pcap" -nt "$GEN" ]; then
		return 0
	fi
	say "generating $name: $args"
	"$GEN" "$@" -o "$pcap" >"$meta"
	printf '%s' "$args" >"$meta.args"
}

# run_timed SECTION WORKLOAD TOOL RUN CMD...: one timed run, appended to samples.tsv.
run_timed() {
	local sec=$1 wl=$2 tl=$3 run=$4; shift 4
	local log=$BENCH_DIR/logs/$sec.$wl.${tl// /_}.$run rc=0
	/usr/bin/time -f '%e %U %S %M' -o "$log.time" "$@" >"$log.out" 2>"$log.err" || rc=$?
	local t
	t=$(tail -n1 "$log.time" 2>/dev/null || echo "0 0 0 0")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sec" "$wl" "$tl" "$run" "${t// /$'\t'}" "$rc" "$log" >>"$SAMPLES"
	if [ "$rc" != 0 ]; then say "$sec $wl $tl run $run: exit $rc (see $log.err)"; fi
}

warm() { "$FLOOR" "$@" >/dev/null 2>&1 || true; } # page cache, so no run pays the disk

# learn_map WORKLOAD_DIR PCAP: a service map learned by svcsensor from PCAP (untimed).
learn_map() {
	local dir=$1 pcap=$2
	rm -f "$dir/map.json"
	"$SVC" --learn -r "$pcap" -t 1 -m "$dir/map.json" --print none --log "$dir/learn-anomalies.log" \
		--report "$dir/learn-report.txt" -q >"$dir/learn.out" 2>"$dir/learn.err" && [ -s "$dir/map.json" ]
}

# svc_offline SECTION WORKLOAD RUN DIR PCAP THREADS [extra args]: one timed svcsensor -r run.
svc_offline() {
	local sec=$1 wl=$2 run=$3 dir=$4 pcap=$5 t=$6; shift 6
	rm -f "$dir"/anomalies.log* "$dir/flows-t$t.csv"
	run_timed "$sec" "$wl" "svcsensor -t$t" "$run" "$SVC" -r "$pcap" -t "$t" -m "$dir/map.json" \
		--flows-out "$dir/flows-t$t.csv" --print none --log "$dir/anomalies.log" \
		--report "$dir/report.txt" -q "$@"
}

# ------------------------------------------------------------------ offline
offline() {
	local prof=$1 conc=$2 name="$1"
	local dir=$BENCH_DIR/wl/$name.d pcap=$BENCH_DIR/wl/$name.pcap
	mkdir -p "$dir"
	gen "$name" --profile "$prof" --flows "$conc" --packets "$PACKETS" --seed "$SEED"
	local svc=$SVC_OK why=$SVC_WHY
	if [ "$svc" = 1 ]; then
		# the map: learned on a baseline of the same kind (another seed, a quarter the size)
		gen "$name-baseline" --profile "$prof" --flows $(( conc / 4 > 100 ? conc / 4 : 100 )) \
			--packets $(( PACKETS / 4 )) --seed $(( SEED + 1000 ))
		if ! learn_map "$dir" "$BENCH_DIR/wl/$name-baseline.pcap"; then
			svc=0; why="svcsensor --learn failed: $(tail -n1 "$dir/learn.err" 2>/dev/null)"
		fi
	fi
	if [ "$svc" != 1 ]; then skip offline "$name svcsensor" "$why"; fi
	if [ -z "$NDPI" ]; then skip offline "$name ndpiReader" "ndpiReader not installed (apt package libndpi-bin)"; fi
	warm "$pcap"
	for r in $(seq 1 "$RUNS"); do
		say "offline $name run $r/$RUNS"
		run_timed offline "$name" floor "$r" "$FLOOR" "$pcap"
		if [ -n "$NDPI" ]; then run_timed offline "$name" ndpiReader "$r" "$NDPI" -q -i "$pcap"; fi
		if [ "$svc" = 1 ]; then
			svc_offline offline "$name" "$r" "$dir" "$pcap" 1
			svc_offline offline "$name" "$r" "$dir" "$pcap" 2
		fi
	done
}

# ------------------------------------------------------------------ memory
memory() {
	local maxn=0 n
	for n in $MEM_FLOWS; do if [ "$n" -gt "$maxn" ]; then maxn=$n; fi; done
	[ "$maxn" -gt 0 ] || maxn=1000
	# one flow-table size for every run (the baseline too), so preallocation cancels out
	local maxf=$(( maxn + maxn / 10 + 4096 ))
	local prof
	for prof in hold-idle hold-detect; do
		local dir=$BENCH_DIR/wl/mem-$prof.d svc=$SVC_OK why=$SVC_WHY
		mkdir -p "$dir"
		for n in 1000 $MEM_FLOWS; do
			gen "mem-$prof-$n" --profile "$prof" --flows "$n" --seed "$SEED"
		done
		# the map covers every (host, application) of the largest workload: the runs then
		# write almost no anomaly lines, so the figures are the flow table's
		if [ "$svc" = 1 ] && ! learn_map "$dir" "$BENCH_DIR/wl/mem-$prof-$maxn.pcap"; then
			svc=0; why="svcsensor --learn failed: $(tail -n1 "$dir/learn.err" 2>/dev/null)"
		fi
		if [ "$svc" != 1 ]; then skip memory "$prof svcsensor" "$why"; fi
		if [ -z "$NDPI" ]; then skip memory "$prof ndpiReader" "ndpiReader not installed"; fi
		for n in 1000 $MEM_FLOWS; do
			local pcap=$BENCH_DIR/wl/mem-$prof-$n.pcap
			warm "$pcap"
			for r in $(seq 1 "$MEM_RUNS"); do
				say "memory $prof $n flows run $r/$MEM_RUNS"
				if [ "$svc" = 1 ]; then
					svc_offline memory "mem-$prof-$n" "$r" "$dir" "$pcap" 1 --max-flows "$maxf"
				fi
				if [ -n "$NDPI" ]; then
					run_timed memory "mem-$prof-$n" ndpiReader "$r" "$NDPI" -q -i "$pcap"
				fi
			done
		done
	done
}

# ------------------------------------------------------------------ detector
detector() {
	if [ -z "$DETB" ]; then
		# make bench builds it; a standalone run tries once
		if make -s -C "$ROOT" build/bench/detector_bench >"$BENCH_DIR/logs/detector-build.log" 2>&1; then
			DETB=$ROOT/build/bench/detector_bench
		else
			skip detector detector_bench "does not build yet against libsvcsensor.a (see $BENCH_DIR/logs/detector-build.log)"
			return 0
		fi
	fi
	mkdir -p "$BENCH_DIR/det"
	for r in $(seq 1 "$RUNS"); do
		for e in 10000 100000; do
			say "detector $e entries run $r/$RUNS"
			rm -rf "$BENCH_DIR/det/$e"; mkdir -p "$BENCH_DIR/det/$e"
			run_timed detector "entries-$e" detector_bench "$r" "$DETB" --entries "$e" \
				--flows "$DET_FLOWS" --dir "$BENCH_DIR/det/$e"
		done
	done
}

# ------------------------------------------------------------------ live
live_one() { # RATE TOOL RUN PCAP DIR
	local rate=$1 tl=$2 run=$3 pcap=$4 dir=$5
	local log=$BENCH_DIR/logs/live.$rate.${tl// /_}.$run
	local npk dur pid sent failed
	npk=$(LC_ALL=C awk -F'"packets":' '{split($2,a,","); print a[1]}' "$BENCH_DIR/wl/live.json")
	if [ "$rate" = top ]; then dur=$(( npk / 100000 + 6 )); else dur=$(( npk / rate + 6 )); fi
	case "$tl" in
	ndpiReader)
		ip netns exec "$NETNS" "$NDPI" -i vb -s "$dur" >"$log.out" 2>"$log.err" &
		;;
	*)
		local t=${tl##*-t} stats=()
		if "$SVC" --help 2>&1 | grep -q -- '--stats'; then stats=(--stats 1); fi
		rm -f "$dir"/anomalies.log*
		ip netns exec "$NETNS" "$SVC" -i vb -t "$t" --duration "$dur" --print none "${stats[@]}" \
			-m "$dir/map.json" --log "$dir/anomalies.log" --report "$dir/report.txt" \
			>"$log.out" 2>"$log.err" &
		;;
	esac
	pid=$!
	STARTED_PIDS+=("$pid")
	sleep 2
	if ! kill -0 "$pid" 2>/dev/null; then
		local rc=0; wait "$pid" || rc=$?
		# a capture that cannot start (not built in, no such device ...) is skipped from
		# then on, with its own first line as the reason
		local why
		why="capture exited at start (exit $rc): $(grep -m1 . "$log.err" 2>/dev/null || true)"
		case "$tl" in
		ndpiReader) LIVE_NDPI_BROKEN=$why; skip live ndpiReader "$why" ;;
		*) LIVE_SVC_BROKEN=$why; skip live svcsensor "$why" ;;
		esac
		return 0
	fi
	local rargs=(--topspeed)
	[ "$rate" = top ] || rargs=(--pps="$rate")
	ip netns exec "$NETNS" tcpreplay -i va "${rargs[@]}" "$pcap" >"$log.replay" 2>&1 || true
	sent=$(awk '/Actual:/{print $2; exit}' "$log.replay")
	failed=$(awk '/Failed packets:/{print $3; exit}' "$log.replay")
	local waited=0
	while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $(( dur * 10 + 150 )) ]; do
		sleep 0.1; waited=$(( waited + 1 ))
	done
	if kill -0 "$pid" 2>/dev/null; then kill -INT "$pid" 2>/dev/null || true; sleep 2; kill -KILL "$pid" 2>/dev/null || true; fi
	local rc=0; wait "$pid" || rc=$?
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rate" "$tl" "$run" "${sent:-}" "${failed:-}" "exit $rc" "$log" >>"$LIVE"
}

live() {
	if [ "$(id -u)" != 0 ]; then skip live all "needs root for ip netns"; return 0; fi
	command -v tcpreplay >/dev/null || { skip live all "tcpreplay not installed"; return 0; }
	command -v ip >/dev/null || { skip live all "ip (iproute2) not installed"; return 0; }
	NETNS=svcbench$$
	if ! ip netns add "$NETNS" 2>"$BENCH_DIR/logs/netns.err"; then
		NETNS=""; skip live all "ip netns add failed: $(head -n1 "$BENCH_DIR/logs/netns.err")"; return 0
	fi
	ip netns exec "$NETNS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
	ip -n "$NETNS" link add name va type veth peer name vb
	ip -n "$NETNS" link set va mtu 9000 up
	ip -n "$NETNS" link set vb mtu 9000 up
	ip -n "$NETNS" link set lo up
	local dir=$BENCH_DIR/wl/live.d pcap=$BENCH_DIR/wl/live.pcap svc=$SVC_OK why=$SVC_WHY
	mkdir -p "$dir"
	gen live --profile "$LIVE_PROFILE" --flows $(( LIVE_PACKETS / 400 > 100 ? LIVE_PACKETS / 400 : 100 )) \
		--packets "$LIVE_PACKETS" --seed "$SEED"
	if [ "$svc" = 1 ] && ! learn_map "$dir" "$pcap"; then
		svc=0; why="svcsensor --learn failed: $(tail -n1 "$dir/learn.err" 2>/dev/null)"
	fi
	if [ "$svc" != 1 ]; then skip live svcsensor "$why"; fi
	if [ -z "$NDPI" ]; then skip live ndpiReader "ndpiReader not installed"; fi
	warm "$pcap"
	LIVE_SVC_BROKEN=""; LIVE_NDPI_BROKEN=""
	for r in $(seq 1 "$RUNS"); do
		for rate in $LIVE_RATES; do
			say "live $rate pps run $r/$RUNS"
			if [ "$svc" = 1 ] && [ -z "$LIVE_SVC_BROKEN" ]; then
				live_one "$rate" "svcsensor -t1" "$r" "$pcap" "$dir"
			fi
			if [ "$svc" = 1 ] && [ -z "$LIVE_SVC_BROKEN" ]; then
				live_one "$rate" "svcsensor -t2" "$r" "$pcap" "$dir"
			fi
			if [ -n "$NDPI" ] && [ -z "$LIVE_NDPI_BROKEN" ]; then
				live_one "$rate" ndpiReader "$r" "$pcap" "$dir"
			fi
		done
	done
	ip netns del "$NETNS" 2>/dev/null || true
	NETNS=""
}

# ------------------------------------------------------------------ main
if has_section offline; then
	offline dpi "$DPI_CONC"
	offline gateway "$GW_CONC"
fi
if has_section memory; then memory; fi
if has_section detector; then detector; fi
if has_section live; then live; fi

"$PY" "$ROOT/bench/report.py" "$BENCH_DIR"
