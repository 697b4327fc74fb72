# Vireo. `make` builds build/vireo; `make check` runs every test; `make demo`
# boots the demo VM, `make demo-debian` a Debian 12 with systemd. check and
# the demos install what they need (scripts/deps).

CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -Isrc -MMD -MP
# The small libraries are linked in statically: each shared one costs its
# own relocated pages in every VM (bench/boot's own-memory figure).
# libslirp is loaded at run time by --net user (src/net/libslirp.c).
LDLIBS := -Wl,-Bstatic -llzma -lz -lzstd -lxxhash -luring -ljansson -Wl,-Bdynamic -lpthread
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

BUILD := build
SRCS := $(shell find src -name '*.c' ! -name main.c | sort)
OBJS := $(SRCS:%.c=$(BUILD)/obj/%.o)
SAN_OBJS := $(SRCS:%.c=$(BUILD)/san/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60

.PHONY: clang-build all check unit fuzz e2e badinput demo demo-debian bench deps guest clean

all: $(BUILD)/vireo

$(BUILD)/vireo: $(OBJS) $(BUILD)/obj/src/main.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The same program with ASan/UBSan, for the bad-input tests.
$(BUILD)/vireo-san: $(SAN_OBJS) $(BUILD)/san/src/main.o
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -o $@ $< $(SAN_OBJS) -lcmocka $(LDLIBS)

# libFuzzer needs clang. The sources are compiled once for every target
# (instrumented for coverage, not linked with libFuzzer's main), each
# target linked from them: fourteen full compiles were most of the fuzz
# stage's time.
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined
FUZZ_OBJS := $(SRCS:%.c=$(BUILD)/fuzzobj/%.o)

$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(BASE_CFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	clang $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

deps:
	@scripts/deps

# The C units, then the benchmarks' reporting rules (Python); both run
# even when the first fails.
unit: $(UNIT_BINS)
	@s=0; scripts/run-unit $(UNIT_BINS) || s=1; scripts/run-pyunit bench/test_stats.py || s=1; exit $$s

fuzz: $(FUZZ_BINS)
	@scripts/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BINS)

# Every fuzzer for FUZZ_LONG_SECONDS (10 minutes) each, not split between
# them: for before a release or after changing what a fuzzer drives.
FUZZ_LONG_SECONDS ?= 600
.PHONY: fuzz-long
fuzz-long: $(FUZZ_BINS)
	@scripts/run-fuzz --each $(FUZZ_LONG_SECONDS) $(FUZZ_BINS)

badinput: $(BUILD)/vireo-san guest
	@tests/badinput/run $(BUILD)/vireo-san

guest:
	@guest/build $(BUILD)/guest

e2e: $(BUILD)/vireo $(BUILD)/vireo-san $(BUILD)/unit/test_can_socketcan guest
	@tests/e2e/run

# Both compilers must build the tree warning-free.
clang-build:
	@$(MAKE) --no-print-directory CC=clang BUILD=$(BUILD)/clang $(BUILD)/clang/vireo

# Every stage (build, unit, fuzz, badinput, e2e), one summary at the end
# (scripts/check). The environment is vetted before deps installs anything:
# variables that shrink the run are refused.
check:
	@scripts/check --env-only
	@scripts/deps
	@MAKE='$(MAKE)' BUILD='$(BUILD)' scripts/check

demo: deps
	@$(MAKE) --no-print-directory all guest
	@scripts/demo

# Debian 12 from a qcow2 overlay over the image guest/debian/build makes
# (once per machine, in ~/.cache/vireo/debian).
demo-debian: deps
	@$(MAKE) --no-print-directory all guest
	@scripts/demo-debian

# BENCH=boot (or blk, blkfmt, net, can, migrate, seeds) runs one of them; the first six
# by default. BENCH=debian boots the Debian image (make demo-debian's) under
# vireo and QEMU (about 12 minutes).
BENCH ?= boot blk blkfmt net can migrate
bench: deps
	@$(MAKE) --no-print-directory all guest
	@for b in $(BENCH); do bench/$$b || exit 1; done

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
