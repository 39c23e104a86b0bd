#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer harnesses and run each for a while.
#
#   tests/fuzz/run.sh                 (or: make fuzz)
#   FUZZ_SECONDS=600 tests/fuzz/run.sh
#   FUZZ_BUILD_ONLY=1 tests/fuzz/run.sh       build, write seeds, replay the regressions only
#
# Five harnesses (clang, -fsanitize=fuzzer,address,undefined), FUZZ_SECONDS each (default 20:
# 5 x 20 s plus the builds is about 3 minutes of CI's 30-minute budget):
#   build-fuzz/fuzz_decode    the decoder on single frames; seeds generated here plus the
#                             packets of pcaps/*.pcap (build-fuzz/seeds, corpus build-fuzz/corpus)
#   build-fuzz/fuzz_pcapscan  the mapped pcap walk on whole capture files, checked against
#                             libpcap reading the same bytes; seeds: every shipped classic
#                             pcap (build-fuzz/seeds-pcap, corpus build-fuzz/corpus-pcap)
#   build-fuzz/fuzz_map       the service map loader on map files; an accepted map must save
#                             and load back the same (build-fuzz/seeds-map, corpus-map)
#   build-fuzz/fuzz_config    the config file loader (config__load_text) on JSON text; what it
#                             leaves must be what the option table allows; seeds:
#                             config/svcsensor.json and the cases below (seeds-config,
#                             corpus-config)
#   build-fuzz/fuzz_flows_in  the flow CSV reader (--flows-in) on CSV text; every row handed on
#                             must be a sound record; seeds: the head of each
#                             tests/golden/*.flows.csv (svcsensor -r pcaps/X.pcap --flows-out)
#                             and an nfstream to_csv() file (seeds-flows, corpus-flows)
# Before fuzzing, each harness replays tests/fuzz/regress/<harness>/* (inputs that crashed it
# once, kept after the fix; see docs/FUZZING.md). Any crashing input goes to
# build-fuzz/crash-*. Exits non-zero when a build fails, a regression input fails or a fuzzer
# finds a crash. Reproduce with: build-fuzz/fuzz_decode build-fuzz/crash-<hash>
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_BUILD_ONLY=${FUZZ_BUILD_ONLY:-}
# ASan's default 256 MiB quarantine of freed blocks made every run page memory in and out:
# with 16 MiB the loaders run 2-3 times faster (docs/FUZZING.md), and a use after free within
# one input (kilobytes of allocations) is still caught.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}
CLANG=${CLANG:-clang}
OUT=build-fuzz
SEEDS=$OUT/seeds
CORPUS=$OUT/corpus

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "svcsensor: fuzz: $CLANG not found (Debian: apt-get install clang)" >&2
	exit 2
fi
mkdir -p "$SEEDS" "$CORPUS"

# flow.h includes <urcu/wfcqueue.h>; liburcu's cflags when pkg-config knows it.
URCU_CFLAGS=$(pkg-config --cflags liburcu 2>/dev/null || true)
# shellcheck disable=SC2086
"$CLANG" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-Iinclude $URCU_CFLAGS \
	tests/fuzz/fuzz_decode.c src/decode.c src/common.c src/util/hash.c -o "$OUT/fuzz_decode"
PCAP_FLAGS=$(pkg-config --cflags --libs libpcap 2>/dev/null || echo -lpcap)
# shellcheck disable=SC2086
"$CLANG" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-Iinclude $URCU_CFLAGS tests/fuzz/fuzz_pcapscan.c src/input/pcapscan.c src/decode.c \
	src/common.c src/util/progress.c $PCAP_FLAGS -o "$OUT/fuzz_pcapscan"
# shellcheck disable=SC2086
"$CLANG" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-Iinclude $(pkg-config --cflags liburcu yajl) tests/fuzz/fuzz_map.c \
	src/map/store.c src/map/index.c src/map/file.c src/common.c src/flow/flow.c \
	src/util/hash.c src/util/utf8.c src/util/json_out.c src/util/atomic_file.c src/util/outpath.c \
	$(pkg-config --libs liburcu yajl) \
	-o "$OUT/fuzz_map"
# shellcheck disable=SC2086,SC2046
"$CLANG" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-Iinclude $(pkg-config --cflags jansson) $URCU_CFLAGS tests/fuzz/fuzz_config.c \
	src/config.c src/options.c src/util/json_util.c src/common.c \
	$(pkg-config --libs jansson) -o "$OUT/fuzz_config"
# libcsv ships no pkg-config file (Makefile links -lcsv too).
# shellcheck disable=SC2086,SC2046
"$CLANG" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-Iinclude $URCU_CFLAGS tests/fuzz/fuzz_flows_in.c src/input/flows_in.c src/util/utf8.c \
	src/flow/flow.c src/common.c -lcsv $(pkg-config --libs liburcu 2>/dev/null || echo -lurcu) \
	-o "$OUT/fuzz_flows_in"
mkdir -p "$OUT/seeds-map" "$OUT/corpus-map"
printf '%s' '{"format": "svcsensor-map", "version": 1, "sources": {"10.42.0.130": {"10.42.0.1":
 {"DNS": {"flows": 20, "bytes": 3495, "first_seen_ms": 1768075202521, "last_seen_ms":
 1768078669618}}, "remote": {"TLS.YouTube": {"flows": 41, "bytes": 512345}, "QUIC": {}}},
 "fd00::1": {"remote": {"NTP": {"last_seen_ms": 7}}}}}' >"$OUT/seeds-map/small.json"
mkdir -p "$OUT/seeds-pcap" "$OUT/corpus-pcap"
cp pcaps/*.pcap pcaps/edge/*.pcap pcaps/malformed/*.pcap "$OUT/seeds-pcap/" 2>/dev/null || true

# ---- config seeds: the shipped file, and one of each kind of value (a few refused).
mkdir -p "$OUT/seeds-config" "$OUT/corpus-config"
cp config/svcsensor.json "$OUT/seeds-config/"
cfg_seed() { printf '%s' "$2" >"$OUT/seeds-config/$1.json"; }
cfg_seed allow '{"allow": [{"src": "10.42.0.130", "dst": "remote", "app": "TLS.YouTube"},
 {"app": "DNS", "src": null}], "minor_masters": ["DNS", "TLS", "QUIC"]}'
cfg_seed nets '{"local_networks": ["10.0.0.0/8", "fd00::/8", "192.168.1.7/32", "::/0"],
 "remote_mode": "prefix", "remote_prefix4": 16, "remote_prefix6": 64, "print": "anomalies"}'
cfg_seed files '{"map_file": "m.json", "log_file": "", "report_file": null, "flows_out": "f.csv",
 "user": "nobody", "interface": "eth0", "bpf_filter": "tcp port 443", "fanout": "ebpf"}'
cfg_seed ints '{"threads": 64, "max_flows": 16, "idle_timeout": 31536000, "log_max_bytes":
 9223372036854775807, "ring_block_size": 4096, "ring_frame_size": 4096, "tcp_linger": 0}'
cfg_seed bad_nul '{"user": "a\u0000b", "guess": false, "promisc": false}'
cfg_seed bad_dup '{"threads": 2, "threads": 3}'
cfg_seed bad_big '{"max_flows": 99999999999999999999, "print": true}'
# Every key of the shipped file, quoted, as a dictionary entry.
grep -o '^ *"[a-z_0-9]*":' config/svcsensor.json | sed 's/^ *//; s/:$//' >"$OUT/config.dict"
printf '%s\n' '"null"' '"true"' '"false"' '"\\u0000"' '"/"' '"::"' >>"$OUT/config.dict"

# ---- flow CSV seeds: svcsensor's own (--flows-out), header and 11 rows of each golden file,
# and nfstream's dialect (src_mac, quoted text, \" inside quotes).
mkdir -p "$OUT/seeds-flows" "$OUT/corpus-flows"
for f in tests/golden/*.flows.csv; do
	head -n 12 "$f" >"$OUT/seeds-flows/$(basename "$f")"
done
printf '%s\n' \
	'id,expiration_id,src_ip,src_mac,src_oui,src_port,dst_ip,dst_mac,dst_oui,dst_port,protocol,ip_version,vlan_id,bidirectional_first_seen_ms,bidirectional_last_seen_ms,bidirectional_packets,bidirectional_bytes,src2dst_packets,src2dst_bytes,dst2src_packets,dst2src_bytes,application_name,application_category_name,application_is_guessed,requested_server_name,user_agent' \
	'0,0,"192.168.1.10","3c:22:fb:12:34:56","3c:22:fb",53001,"8.8.8.8","f4:92:bf:65:43:21","f4:92:bf",53,17,4,0,1700000000000,1700000000050,2,200,1,80,1,120,"DNS.Google","Network",0,"www.google.com",""' \
	'1,1,"fd00::5","3c:22:fb:12:34:56","3c:22:fb",50000,"2001:db8::1","f4:92:bf:65:43:21","f4:92:bf",443,17,6,0,1700000003000,1700000004000,10,9000,4,1000,6,8000,"QUIC.YouTube","Media",1,"rr1.googlevideo.com","Mozilla/5.0 \"quoted\", more"' \
	>"$OUT/seeds-flows/nfstream.csv"
printf 'src_ip,dst_ip,application_name\r\n10.0.0.1,10.0.0.2,HTTP\r\n"10.0.0.1","::1","a\r\nb"\r\n' \
	>"$OUT/seeds-flows/minimal.csv"
head -n 1 tests/golden/baseline.flows.csv | tr ',' '\n' | sed 's/.*/"&"/' >"$OUT/flows.dict"
printf '%s\n' '"src_mac"' '"end_reason"' '"expiration_id"' '"18446744073709551615"' \
	'"\\\""' '"\"\""' '"\x0d\x0a"' '"::ffff:1.2.3.4"' >>"$OUT/flows.dict"

# ---- seeds. First byte: link index in fuzz_decode.c's links[] (| 0x10 stripped VLAN tag,
# | 0x20 snaplen cut). Frames are hex, spaces ignored.
L_EN10MB=0 L_RAW=1 L_RAW101=2 L_IPV4=3 L_IPV6=4 L_SLL=5 L_SLL2=6 L_NULL=7 L_LOOP=8

seed() { # seed NAME SELECTOR HEX...
	local name=$1 sel=$2 hex
	shift 2
	hex=$(printf '%s' "$*" | tr -d ' ')
	hex=$(printf '%02x' "$sel")$hex
	local esc="" i
	for ((i = 0; i < ${#hex}; i += 2)); do
		esc+="\\x${hex:i:2}"
	done
	printf "$esc" >"$SEEDS/$name"
}

ETH="02000000000b 02000000000a"
V4="c0000201 c6336407"
V6="20010db8000000000000000000000001 20010db800000000000000000000beef"
TCP="9c40 01bb 00000001 00000000 5018 ffff 0000 0000"
TCP_OPT="9c40 01bb 00000001 00000000 6002 ffff 0000 0000 020405b4"
UDP="d0a4 0035 0010 0000 0102030405060708"
IP4_TCP="45000028 0001 4000 4006 0000 $V4 $TCP"
IP4_TCP_OPT="4500002c 0001 4000 4006 0000 $V4 $TCP_OPT"
IP4_UDP="45000024 0001 0000 4011 0000 $V4 $UDP"
IP4_UDP_FRAG1="45000024 0001 2000 4011 0000 $V4 $UDP"
IP4_FRAG2="4500001c 0002 0001 4011 0000 $V4 0102030405060708"
IP4_ICMP="4500001c 0001 0000 4001 0000 $V4 0800f7ff 00000000"
IP4_OPTS_UDP="47000030 0001 0000 4011 0000 $V4 0101010101010100 $UDP"
IP6_TCP="60000000 0014 06 40 $V6 $TCP"
IP6_UDP="60000000 0010 11 40 $V6 $UDP"
IP6_EXT_TCP="60000000 0024 00 40 $V6 2c00 010400000000 06 00 0001 deadbeef $TCP"
IP6_AH_TCP="60000000 0020 33 40 $V6 06 01 0000 00000001 00000001 $TCP"
IP6_RT_DST_UDP="60000000 0020 2b 40 $V6 3c00 0000 00000000 1100 010400000000 $UDP"
IP6_ICMP6="60000000 0008 3a 40 $V6 8000 0000 0001 0001"
IP6_ESP="60000000 0010 32 40 $V6 00000001 00000001 0102030405060708"

seed eth_ipv4_tcp $L_EN10MB "$ETH 0800 $IP4_TCP"
seed eth_ipv4_tcp_opt $L_EN10MB "$ETH 0800 $IP4_TCP_OPT"
seed eth_ipv4_tcp_pad $L_EN10MB "$ETH 0800 $IP4_TCP 000000000000"
seed eth_ipv4_udp_snap $((L_EN10MB | 0x20)) "$ETH 0800 $IP4_UDP"
seed eth_vlan_ipv4_udp $L_EN10MB "$ETH 8100 0064 0800 $IP4_UDP"
seed eth_qinq_ipv6_tcp $L_EN10MB "$ETH 88a8 00c8 8100 012c 86dd $IP6_TCP"
seed eth_9100_ipv4_icmp $L_EN10MB "$ETH 9100 0005 0800 $IP4_ICMP"
seed eth_tci_ipv4_tcp $((L_EN10MB | 0x10)) "$ETH 0800 $IP4_TCP"
seed eth_ipv6_ext_tcp $L_EN10MB "$ETH 86dd $IP6_EXT_TCP"
seed eth_ipv6_rt_dst_udp $L_EN10MB "$ETH 86dd $IP6_RT_DST_UDP"
seed eth_ipv4_frag1 $L_EN10MB "$ETH 0800 $IP4_UDP_FRAG1"
seed eth_ipv4_frag2 $L_EN10MB "$ETH 0800 $IP4_FRAG2"
seed eth_arp $L_EN10MB "$ETH 0806 0001 0800 0604 0001 02000000000a $V4 000000000000 c0000202"
seed raw_ipv4_opts_udp $L_RAW "$IP4_OPTS_UDP"
seed raw101_ipv6_esp $L_RAW101 "$IP6_ESP"
seed ipv4_icmp $L_IPV4 "$IP4_ICMP"
seed ipv6_ah_tcp $L_IPV6 "$IP6_AH_TCP"
seed ipv6_icmp6 $L_IPV6 "$IP6_ICMP6"
seed sll_ipv4_udp $L_SLL "0000 0001 0006 02000000000a 0000 0800 $IP4_UDP"
seed sll_vlan_ipv4_tcp $L_SLL "0000 0001 0006 02000000000a 0000 8100 0007 0800 $IP4_TCP"
seed sll2_ipv6_tcp $L_SLL2 "86dd 0000 00000002 0001 04 06 02000000000a 0000 $IP6_TCP"
seed null_le_ipv4_tcp $L_NULL "02000000 $IP4_TCP"
seed null_le_ipv6_udp $L_NULL "18000000 $IP6_UDP"
seed loop_be_ipv6_udp $L_LOOP "0000001e $IP6_UDP"

# Packets of the shipped captures (classic pcap; pcapng files are skipped).
PY=/usr/bin/python3
command -v "$PY" >/dev/null 2>&1 || PY=python3
if compgen -G "pcaps/*.pcap" >/dev/null && command -v "$PY" >/dev/null 2>&1; then
	"$PY" - "$SEEDS" pcaps/*.pcap <<'PYEOF' || echo "svcsensor: fuzz: pcap seeds skipped" >&2
import os, struct, sys
# linktype -> index in fuzz_decode.c's links[]
SEL = {1: 0, 12: 1, 101: 2, 228: 3, 229: 4, 113: 5, 276: 6, 0: 7, 108: 8}
out = sys.argv[1]
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        continue
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        continue
    link = struct.unpack(end + "I", data[20:24])[0] & 0xFFFF
    if link not in SEL:
        continue
    off, n = 24, 0
    while off + 16 <= len(data) and n < 300:
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        n += 1
        name = "pcap-%s-%d" % (os.path.basename(path), n)
        with open(os.path.join(out, name), "wb") as s:
            s.write(bytes([SEL[link]]) + frame[:4096])
PYEOF
fi

cat >"$OUT/decode.dict" <<'DICT'
"\x81\x00"
"\x88\xa8"
"\x91\x00"
"\x08\x00"
"\x86\xdd"
"\x08\x06"
"\x45\x00"
"\x60\x00\x00\x00"
DICT

# run_fuzzer NAME CORPUS SEEDS [libFuzzer options...]: replay tests/fuzz/regress/NAME/*, then
# FUZZ_SECONDS of build-fuzz/NAME; exits with its status when it finds something.
run_fuzzer() {
	local name=$1 corpus=$2 seeds=$3 rc=0 regress=tests/fuzz/regress/$1
	shift 3
	if compgen -G "$regress/*" >/dev/null; then
		echo "svcsensor: fuzz: replaying $regress" >&2
		"$OUT/$name" -timeout=10 -artifact_prefix="$OUT/" "$@" "$regress"/* || rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "svcsensor: fuzz: $name fails on a regression input of $regress (exit $rc)" >&2
			exit "$rc"
		fi
	fi
	[ -n "$FUZZ_BUILD_ONLY" ] && return 0
	echo "svcsensor: fuzz: running build-fuzz/$name for ${FUZZ_SECONDS}s" >&2
	"$OUT/$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -artifact_prefix="$OUT/" \
		-print_final_stats=1 "$@" "$corpus" "$seeds" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "svcsensor: fuzz: $name failed (exit $rc); see $OUT/crash-* / $OUT/leak-* / $OUT/timeout-*" >&2
		exit "$rc"
	fi
}

run_fuzzer fuzz_decode "$CORPUS" "$SEEDS" -max_len=4096 -dict="$OUT/decode.dict"
# -close_fd_mask=2: the walk and the loaders report damaged input on stderr, as they should.
run_fuzzer fuzz_pcapscan "$OUT/corpus-pcap" "$OUT/seeds-pcap" -max_len=65536 -close_fd_mask=2
run_fuzzer fuzz_map "$OUT/corpus-map" "$OUT/seeds-map" -max_len=16384 -close_fd_mask=2
run_fuzzer fuzz_config "$OUT/corpus-config" "$OUT/seeds-config" -max_len=8192 \
	-dict="$OUT/config.dict" -close_fd_mask=2
run_fuzzer fuzz_flows_in "$OUT/corpus-flows" "$OUT/seeds-flows" -max_len=4096 \
	-dict="$OUT/flows.dict" -close_fd_mask=2
if [ -n "$FUZZ_BUILD_ONLY" ]; then
	echo "svcsensor: fuzz: built; regression inputs pass" >&2
else
	echo "svcsensor: fuzz: no crash in 5 x ${FUZZ_SECONDS}s" >&2
fi
