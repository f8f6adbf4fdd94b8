# embfill - regenerate missing or stale embeddings of one collection in PostgreSQL.
#
#   make                      build ./build/embfill (and the sandbox embedder)
#   make check                install what is missing, build, run every test
#   make check SANITIZE=address,undefined
#   make bench                speed and memory figures (never asserted)
#   make fault-matrix         a run under each planted fault, as a Markdown table
#   make install PREFIX=/usr/local DESTDIR=
#   make demo                 the sandbox console
#
# Everything is built out of tree under $(BUILD); a sanitizer build gets its
# own directory so that objects of different flavours never mix.

VERSION  := 0.1.0
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DESTDIR  ?=
CC       ?= cc
FUZZCC   ?= clang
SANITIZE ?=
comma    := ,
BUILD    ?= build$(if $(SANITIZE),-$(subst $(comma),-,$(SANITIZE)))

# pkg-config is asked lazily (recursive '='), from recipes only, so that the
# deps step can install the libraries before anyone asks for their flags.
PKG_CORE    := libpq libcurl libcjson libcrypto
PKG_TUI     := ncursesw
PKG_SANDBOX := libmicrohttpd libcjson libcrypto
PKG_TEST    := criterion
pc = $(shell pkg-config $(1) $(2))

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wformat=2 -Wcast-qual -Wwrite-strings -Wundef
TESTWARN  := -Wall -Wextra -Werror
SANFLAGS   = $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all)
OPT       ?= -O2 -g
BASEFLAGS  = -std=gnu11 $(OPT) -I. -Iinclude -MMD -MP -D_GNU_SOURCE \
             -DEF_VERSION='"$(VERSION)"' $(SANFLAGS)

CORE_SRC    := $(sort $(wildcard core/*/*.c))
TUI_SRC     := $(sort $(wildcard tui/*.c tui/*/*.c))
SANDBOX_SRC := $(sort $(wildcard sandbox/*.c))
TESTLIB_SRC := $(sort $(wildcard tests/lib/*.c))
UNIT_SRC    := $(sort $(wildcard tests/unit/*.c))
INTEG_SRC   := $(sort $(wildcard tests/integration/*.c))
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

CORE_OBJ    := $(call obj,$(CORE_SRC))
TUI_OBJ     := $(call obj,$(TUI_SRC))
SANDBOX_OBJ := $(call obj,$(SANDBOX_SRC))
TESTLIB_OBJ := $(call obj,$(TESTLIB_SRC))
UNIT_OBJ    := $(call obj,$(UNIT_SRC))
INTEG_OBJ   := $(call obj,$(INTEG_SRC))

LIB        := $(BUILD)/libembfill.a
BIN        := $(BUILD)/embfill
EMBEDDER   := $(BUILD)/embfill-embedder
UNIT_BIN   := $(BUILD)/tests/unit
INTEG_BIN  := $(BUILD)/tests/integration
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
BENCH_BINS := $(BUILD)/bench/parse_bench $(BUILD)/bench/render_bench
# The sandbox's float printer is pure and tested against strtof with core's units.
UNIT_SANDBOX_OBJ := $(call obj,sandbox/fmtfloat.c)
MANPAGES   := $(sort $(wildcard man/*.[1-8]))

.PHONY: all deps check check-run check-layers test-unit test-integration test-crash test-e2e test-demo test-docs fuzz-smoke fuzz lint-man \
        bench fault-matrix demo install uninstall clean
.DEFAULT_GOAL := all

all: $(BIN) $(if $(SANDBOX_SRC),$(EMBEDDER))

deps:
	@sh build-aux/deps.sh

# --- objects ---------------------------------------------------------------

# core/ is compiled without ncurses flags: a curses call there fails to link.
$(BUILD)/obj/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(WARN) $(call pc,--cflags,$(PKG_CORE)) -c $< -o $@

$(BUILD)/obj/tui/%.o: tui/%.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(WARN) $(call pc,--cflags,$(PKG_TUI) libcurl libcjson) -c $< -o $@

$(BUILD)/obj/sandbox/%.o: sandbox/%.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(WARN) $(call pc,--cflags,$(PKG_SANDBOX)) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(TESTWARN) -I. -Itests/lib $(call pc,--cflags,$(PKG_TEST) $(PKG_CORE)) -c $< -o $@

# --- programs --------------------------------------------------------------

$(LIB): $(CORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(TUI_OBJ) $(LIB)
	$(CC) $(SANFLAGS) -o $@ $(TUI_OBJ) $(LIB) \
		$(call pc,--libs,$(PKG_TUI) $(PKG_CORE)) -lpthread -lm

$(EMBEDDER): $(SANDBOX_OBJ)
	$(CC) $(SANFLAGS) -o $@ $^ $(call pc,--libs,$(PKG_SANDBOX)) -lpthread -lm

$(UNIT_BIN): $(UNIT_OBJ) $(TESTLIB_OBJ) $(UNIT_SANDBOX_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -o $@ $^ $(call pc,--libs,$(PKG_TEST) $(PKG_CORE)) -lpthread -lm

$(INTEG_BIN): $(INTEG_OBJ) $(TESTLIB_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -o $@ $^ $(call pc,--libs,$(PKG_TEST) $(PKG_CORE)) -lpthread -lm

# Benchmarks of the hot paths alone: reading answers (core) and writing them
# (the sandbox embedder).
$(BUILD)/bench/parse_bench: $(call obj,tests/bench/parse_bench.c) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -o $@ $^ $(call pc,--libs,$(PKG_CORE)) -lpthread -lm

$(BUILD)/bench/render_bench: $(call obj,tests/bench/render_bench.c sandbox/api.c \
		sandbox/fmtfloat.c sandbox/hashembed.c)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -o $@ $^ $(call pc,--libs,libcjson) -lm

# Fuzz targets: libFuzzer with clang, always with ASan and UBSan.  Core and
# the sandbox (less its main()) are compiled once with clang into archives
# of their own, and each target links what it uses from them.
FUZZFLAGS   = -std=gnu11 -g -O1 -I. -Iinclude -MMD -MP -D_GNU_SOURCE \
              -DEF_VERSION='"$(VERSION)"' $(TESTWARN)
fuzzobj     = $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(1))
FUZZ_CORE   := $(BUILD)/fuzz/libcore.a
FUZZ_SBX    := $(BUILD)/fuzz/libsandbox.a

$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZCC) $(FUZZFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
		$(call pc,--cflags,$(PKG_CORE) $(PKG_SANDBOX)) -c $< -o $@

$(FUZZ_CORE): $(call fuzzobj,$(CORE_SRC))
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_SBX): $(call fuzzobj,$(filter-out sandbox/main.c,$(SANDBOX_SRC)))
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/fuzz_sandbox_%: tests/fuzz/fuzz_sandbox_%.c $(FUZZ_SBX)
	@mkdir -p $(@D)
	$(FUZZCC) $(FUZZFLAGS) -fsanitize=fuzzer,address,undefined \
		$(call pc,--cflags,$(PKG_SANDBOX)) -o $@ $< $(FUZZ_SBX) \
		$(call pc,--libs,$(PKG_SANDBOX)) -lpthread -lm

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_CORE)
	@mkdir -p $(@D)
	$(FUZZCC) $(FUZZFLAGS) -fsanitize=fuzzer,address,undefined \
		$(call pc,--cflags,$(PKG_CORE)) -o $@ $< $(FUZZ_CORE) \
		$(call pc,--libs,$(PKG_CORE)) -lpthread -lm

# A load generator for embedding endpoints (items/s at a given concurrency).
EMBLOAD := $(BUILD)/bench/embload
$(EMBLOAD): tests/bench/embload.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(WARN) $(call pc,--cflags,libcurl) -o $@ $< $(call pc,--libs,libcurl)

# --- checks ----------------------------------------------------------------

check:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory check-run

check-run: all $(UNIT_BIN) $(INTEG_BIN) $(FUZZ_BINS)
	@$(MAKE) --no-print-directory check-layers
	@$(MAKE) --no-print-directory lint-man
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory test-integration
	@$(MAKE) --no-print-directory test-crash
	@$(MAKE) --no-print-directory test-e2e
	@$(MAKE) --no-print-directory test-demo
	@$(MAKE) --no-print-directory test-docs

test-unit: $(UNIT_BIN) $(BIN)
	EMBFILL_BIN=$(abspath $(BIN)) \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
		$(UNIT_BIN) --jobs 2

# Then the resumed run, whose counts are taken by a thread beside it, once
# more under ThreadSanitizer (its own build of the program).
test-integration: all $(INTEG_BIN)
	EMBFILL_BIN=$(abspath $(BIN)) EMBFILL_EMBEDDER=$(abspath $(EMBEDDER)) \
		sh tests/integration/run.sh $(abspath $(INTEG_BIN))
	@$(MAKE) --no-print-directory SANITIZE=thread build-thread/embfill
	EMBFILL_BIN=$(abspath build-thread/embfill) EMBFILL_EMBEDDER=$(abspath $(EMBEDDER)) \
		sh tests/integration/run.sh $(abspath $(INTEG_BIN)) --filter '*_run/a_resumed_run_*'

# One run killed with SIGKILL at 20 points, PostgreSQL and the service
# restarted once each: the collection ends exact (tests/crash/run.sh).
test-crash: all
	sh tests/crash/run.sh $(abspath $(BUILD))

# The console in a real terminal (tmux at 80x24), plus its run under
# ThreadSanitizer, which needs its own build of the program.
test-e2e: all
	@$(MAKE) --no-print-directory SANITIZE=thread build-thread/embfill
	sh tests/e2e/run.sh $(abspath $(BUILD))

# One run per fault the sandbox embedder plants (and a service stopped, a
# run killed, the database restarted), each checked for exactness, printed
# as a Markdown table (tests/faults/matrix.sh).  Not part of make check.
fault-matrix: all
	sh tests/faults/matrix.sh $(abspath $(BUILD))

# Calls between modules go one way (docs/architecture.md, "Layers").
check-layers: all
	@sh build-aux/layers.sh $(BUILD)

FUZZ_SECONDS ?= 10
fuzz-smoke: $(FUZZ_BINS)
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

# Every target for longer than make check does (FUZZ_LONG_SECONDS each).
FUZZ_LONG_SECONDS ?= 300
fuzz: $(FUZZ_BINS)
	@sh tests/fuzz/run.sh $(FUZZ_LONG_SECONDS) $(FUZZ_BINS)

lint-man:
	@for m in $(MANPAGES); do \
		out=$$(mandoc -T lint -W warning $$m 2>&1); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	done; echo "man pages: $(words $(MANPAGES)) lint-clean"

bench: all $(EMBLOAD) $(BENCH_BINS)
	@sh build-aux/deps.sh
	@sh tests/bench/run.sh $(abspath $(BUILD))
	@sh tests/bench/layouts.sh $(abspath $(BUILD))
	@sh tests/bench/wire.sh $(abspath $(BUILD))
	@sh tests/bench/index.sh $(abspath $(BUILD))
	@sh tests/bench/million.sh $(abspath $(BUILD))

# The sandbox: a throwaway PostgreSQL, the sandbox embedder and a corpus of
# this machine's manual pages, then the console.  DEMO_ARGS passes
# --scenario NAME, --keep or --stop.
demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all
	@$(BIN) demo $(DEMO_ARGS)

test-demo: all
	sh tests/demo/run.sh $(abspath $(BUILD))

# Every command README.md, docs/examples.md and docs/adopting.md show, run in the sandbox.
test-docs: all
	sh tests/docs/run.sh $(abspath $(BUILD))

# --- install ---------------------------------------------------------------

install: $(BIN)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/embfill
	@for m in $(MANPAGES); do \
		sec=$${m##*.}; \
		install -d $(DESTDIR)$(MANDIR)/man$$sec; \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$sec/; \
		echo "install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$sec/"; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/embfill
	@for m in $(MANPAGES); do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done

clean:
	rm -rf build build-*

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
