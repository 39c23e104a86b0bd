# svcsensor - build, test, demo, bench.
#
#   make            build ./svcsensor
#   make demo       install Debian deps, build, learn on pcaps/baseline.pcap, detect on
#                   pcaps/anomalies.pcap, print the report
#   make check      install Debian deps, build, run the whole Criterion suite, check the
#                   size limits and include seams (scripts/check-limits.sh)
#   make asan|tsan  the suite under AddressSanitizer+UBSan / ThreadSanitizer
#   make fuzz       short libFuzzer run of the decoder (clang)
#   make bench      the bench harness (bench/README section in README.md)

CC      ?= cc
BUILD   ?= build
PKGS     = libndpi liburcu-cds liburcu libpcap jansson yajl
# nDPI's headers are not -Wextra clean: include them as system headers.
PKG_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS) 2>/dev/null))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude $(PKG_CFLAGS) \
             -pthread -MMD -MP
# libcsv (flow CSV input, --flows-in) ships no pkg-config file.
LDLIBS_ALL = $(PKG_LIBS) -lcsv -pthread -lm

LIB_SRCS  := $(shell find src -name '*.c' ! -name 'main.c' ! -name '*.bpf.c' | sort)
BENCH_SRCS:= $(sort $(wildcard bench/*.c))
BENCH_BINS:= $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(sort $(wildcard tests/*.c))
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)

BIN       = svcsensor
TESTBIN   = $(BUILD)/svcsensor-tests

.PHONY: bench-bins all deps check limits test demo asan tsan fuzz bench clean format pcaps

all: $(BIN)

# Binary at the top for the README's commands; sanitizer builds keep theirs in $(BUILD).
ifeq ($(BUILD),build)
$(BIN): $(BUILD)/svcsensor
	cp $< $@
endif

$(BUILD)/svcsensor: $(BUILD)/src/main.o $(BUILD)/libsvcsensor.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

# Made anew each time: ar would keep the members of files since moved or deleted.
$(BUILD)/libsvcsensor.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(TESTBIN): $(TEST_OBJS) $(BUILD)/libsvcsensor.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL) -lcriterion

# eBPF fanout program: compiled with clang -target bpf, embedded in the binary through a
# bpftool skeleton (build/gen/fanout.skel.h), so nothing is looked up on disk at run time.
BPF_CLANG ?= clang
$(BUILD)/gen/fanout.bpf.o: src/capture/fanout.bpf.c include/svcsensor/flow_hash.h
	@mkdir -p $(dir $@)
	$(BPF_CLANG) -O2 -g -target bpf -I/usr/include/$(shell gcc -dumpmachine) -Iinclude -c $< -o $@

$(BUILD)/gen/fanout.skel.h: $(BUILD)/gen/fanout.bpf.o
	bpftool gen skeleton $< name fanout_bpf > $@

$(BUILD)/src/capture/fanout_ebpf.o: $(BUILD)/gen/fanout.skel.h
$(BUILD)/src/capture/fanout_ebpf.o: ALL_CFLAGS += -I$(BUILD)/gen $(shell pkg-config --cflags libbpf)
LDLIBS_ALL += $(if $(wildcard src/capture/fanout_ebpf.c),$(shell pkg-config --libs libbpf))

# Bench programs link the same library; the harness is bench/run.sh.
bench-bins: $(BENCH_BINS)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libsvcsensor.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

deps:
	@scripts/install-deps.sh

# The suite runs the real binary ($(BUILD)/svcsensor) over the shipped pcaps.
test: $(BUILD)/svcsensor $(TESTBIN)
	SVCSENSOR_BIN=$(abspath $(BUILD)/svcsensor) $(TESTBIN) $(TESTFLAGS)

check: deps
	$(MAKE) all
	$(MAKE) test
	$(MAKE) limits

# Function / file size limits and the seams' include rules (docs/ARCHITECTURE.md, Conventions).
limits:
	@scripts/check-limits.sh

asan:
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) \
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
		SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# Criterion cannot start under ThreadSanitizer (its shared arena, Snaipe/Criterion#274), so the
# TSan run uses the real threaded binary over the shipped pcaps plus small stress programs
# (tests/tsan/*.c, each a main()) for the queue and the service map.
TSAN_SRCS := $(sort $(wildcard tests/tsan/*.c))
tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="-O1 -g" SANFLAGS="-fsanitize=thread" \
		build-tsan/svcsensor $(TSAN_SRCS:tests/tsan/%.c=build-tsan/tsan/%)
	tests/tsan/run.sh build-tsan

$(BUILD)/tsan/%: tests/tsan/%.c $(BUILD)/libsvcsensor.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_ALL)

fuzz:
	@tests/fuzz/run.sh

demo: deps
	$(MAKE) all
	@scripts/demo.sh

bench: deps
	$(MAKE) all bench-bins
	@bench/run.sh

pcaps:
	/usr/bin/python3 pcaps/generate.py pcaps

format:
	clang-format -i $$(find src include tests bench -name '*.[ch]')

clean:
	rm -rf build build-asan build-tsan build-fuzz $(BIN)

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BUILD)/src/main.d
