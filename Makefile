# heimdal - one Makefile for the tools, the tests, the benchmarks and the demo.
.SUFFIXES:

VERSION = 0.1.0
# The release date every man page carries in .TH, with the version (install-man).
VERSION_DATE = 2024-01-15

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
DESTDIR ?=

CC ?= cc
CFLAGS ?= -g -O2
BUILD ?= build

# make check SANITIZE=1: ASan + UBSan, built apart so the two never mix.
ifeq ($(SANITIZE),1)
BUILD = build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

PKGS = libgit2 openssl
# Deferred (=) so they are read after install-deps has run.
DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS))
DEP_LIBS = $(shell pkg-config --libs $(PKGS)) -ljq

override CFLAGS += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-missing-field-initializers \
	-Ilibcommon -Icmd/heimdal $(SANFLAGS) -MMD -MP \
	-DHM_VERSION='"$(VERSION)"' -DHM_LIBEXECDIR='"$(LIBEXECDIR)/heimdal"'
override LDFLAGS += $(SANFLAGS)

LIB_SRC = $(sort $(wildcard libcommon/*.c))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOLS = $(sort $(patsubst cmd/%.c,%,$(wildcard cmd/heimdal-*.c)))
PORCELAIN_SRC = $(sort $(wildcard cmd/heimdal/*.c))
PORCELAIN_OBJ = $(PORCELAIN_SRC:%.c=$(BUILD)/%.o)
BINS = $(BUILD)/bin/heimdal $(TOOLS:%=$(BUILD)/bin/%)
MAN1 = $(sort $(wildcard man/*.1))
MAN7 = $(sort $(wildcard man/*.7))
DEPS_STAMP = $(BUILD)/.deps-ok

all: $(BINS)

# A fresh machine needs nothing beyond `make`: missing dependencies are installed.
$(DEPS_STAMP):
	@share/install-deps --check 2>/dev/null || share/install-deps
	@mkdir -p $(BUILD)
	@touch $@

# Rebuild when the compiled-in paths change (make install PREFIX=... after make).
FLAGS_FILE = $(BUILD)/.build-flags
BUILD_FLAGS = $(LIBEXECDIR) $(VERSION) $(SANFLAGS)
$(FLAGS_FILE): FORCE | $(DEPS_STAMP)
	@echo '$(BUILD_FLAGS)' | cmp -s - $@ || echo '$(BUILD_FLAGS)' >$@

$(BUILD)/%.o: %.c $(FLAGS_FILE) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEP_CFLAGS) -c -o $@ $<

$(BUILD)/libcommon.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

$(BUILD)/bin/heimdal: $(PORCELAIN_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(PORCELAIN_OBJ) $(BUILD)/libcommon.a $(DEP_LIBS) -lm -lpthread

$(BUILD)/bin/heimdal-%: $(BUILD)/cmd/heimdal-%.o $(BUILD)/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libcommon.a $(DEP_LIBS) -lm -lpthread

# The tests run the built binaries first in PATH.  BATS_ARGS to pick tests,
# e.g. make check BATS_ARGS=tests/10-migrate.bats
BATS_ARGS = tests
# make check VALGRIND=1: every binary runs under memcheck through wrappers
# (errors and definite leaks fail the test that ran it).
ifeq ($(VALGRIND),1)
TEST_BIN = $(BUILD)/valgrind-bin
TEST_ENV = HEIMDAL_EXEC_PATH="$(CURDIR)/$(TEST_BIN)" HEIMDAL_TEST_VALGRIND=1
else
TEST_BIN = $(BUILD)/bin
TEST_ENV = HEIMDAL_EXEC_PATH=
endif

$(BUILD)/valgrind-bin: $(BINS) tests/valgrind.supp
	@command -v valgrind >/dev/null || share/install-deps --valgrind
	@rm -rf $@ && mkdir -p $@
	@for b in $(BINS); do \
		printf '#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --suppressions=%s %s "$$@"\n' \
			"$(CURDIR)/tests/valgrind.supp" "$(CURDIR)/$$b" >$@/$${b##*/} && chmod +x $@/$${b##*/}; \
	done

check: all $(if $(filter 1,$(VALGRIND)),$(BUILD)/valgrind-bin)
	@command -v bats >/dev/null || share/install-deps
	PATH="$(CURDIR)/$(TEST_BIN):$$PATH" $(TEST_ENV) SANITIZE=$(SANITIZE) \
		ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0" \
		bats $(BATS_ARGS)

# make soak SEEDS=N: tests/convergence for seeds 1..N (STEPS actions each, default 40).
SEEDS ?= 50
soak: all $(if $(filter 1,$(VALGRIND)),$(BUILD)/valgrind-bin)
	@failed=; for s in $$(seq 1 $(SEEDS)); do \
		PATH="$(CURDIR)/$(TEST_BIN):$$PATH" $(TEST_ENV) tests/convergence $$s $(STEPS) || failed="$$failed $$s"; \
	done; \
	if [ -n "$$failed" ]; then echo "soak: failed seeds:$$failed"; exit 1; fi; \
	echo "soak: $(SEEDS) seeds converged"

bench: all
	@command -v hyperfine >/dev/null && command -v stow >/dev/null || share/install-deps --bench
	PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" tests/bench/run

# make format: .clang-format applied to every C file; make format-check (CI)
# fails, listing the places, when one is not formatted.
FORMAT_SRC = $(sort $(wildcard cmd/*.c cmd/heimdal/*.[ch] libcommon/*.[ch] tests/fuzz/*.c))
format:
	@command -v clang-format >/dev/null || share/install-deps --format
	clang-format -i $(FORMAT_SRC)

format-check:
	@command -v clang-format >/dev/null || share/install-deps --format
	clang-format --dry-run --Werror $(FORMAT_SRC)

# make conversion-check (CI): libcommon free of -Wconversion warnings, signs
# included: every narrowing and every signed/unsigned change is written out.
conversion-check: | $(DEPS_STAMP)
	@for f in $(LIB_SRC); do \
		$(CC) -std=gnu11 -D_GNU_SOURCE -Wconversion -Werror -Ilibcommon $(DEP_CFLAGS) \
			-fsyntax-only $$f || exit 1; \
	done

demo: all
	PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" share/demo

# make sizes: tools over 400 lines and functions over 80 (a report, not a gate).
sizes:
	@share/sizes

# make fuzz: one libFuzzer harness per input surface (tests/fuzz/fuzz_*.c),
# each run FUZZ_SECONDS, seeded from tests/fixtures and tests/fuzz/seeds/<name>.
FUZZ_SECONDS ?= 10
FUZZERS = $(sort $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
fuzz:
	@command -v clang >/dev/null || share/install-deps --fuzz
	$(MAKE) BUILD=build-fuzz CC=clang SANITIZE= \
		SANFLAGS='-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined' \
		build-fuzz/libcommon.a
	@set -e; for f in $(FUZZERS); do \
		clang -g -O1 -std=gnu11 -D_GNU_SOURCE -Ilibcommon $(DEP_CFLAGS) \
			-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
			-o build-fuzz/$$f tests/fuzz/$$f.c build-fuzz/libcommon.a $(DEP_LIBS) -lm -lpthread; \
		name=$${f#fuzz_}; corpus=build-fuzz/corpus/$$name; mkdir -p $$corpus; \
		cp tests/fixtures/*.json $$corpus/ 2>/dev/null || true; \
		if [ -d tests/fuzz/seeds/$$name ]; then cp tests/fuzz/seeds/$$name/* $$corpus/; fi; \
		echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
		ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0" \
		build-fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix=build-fuzz/$$f- $$corpus >build-fuzz/$$f.log 2>&1 || \
			{ tail -n 40 build-fuzz/$$f.log; exit 1; }; \
		grep -E '^(Done|#[0-9]+ +DONE)' build-fuzz/$$f.log | tail -n 1; \
	done

# The pages as installed: .TH's date and source are VERSION_DATE and VERSION.
MAN_TH = sed '/^\.TH /s/^\(\.TH [^ ]* [0-9]\) .*/\1 $(VERSION_DATE) "heimdal $(VERSION)" "heimdal manual"/'
install-man:
	mkdir -p $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	for m in $(MAN1) $(MAN7); do \
		$(MAN_TH) $$m >$(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/} || exit 1; \
	done

install: all install-man
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)/heimdal
	cp $(BUILD)/bin/heimdal $(DESTDIR)$(BINDIR)/heimdal
	for t in $(TOOLS); do \
		cp $(BUILD)/bin/$$t $(DESTDIR)$(LIBEXECDIR)/heimdal/$$t && \
		ln -sf $(LIBEXECDIR)/heimdal/$$t $(DESTDIR)$(BINDIR)/$$t || exit 1; \
	done
	mkdir -p $(DESTDIR)$(DATADIR)/bash-completion/completions \
		$(DESTDIR)$(DATADIR)/zsh/site-functions $(DESTDIR)$(DATADIR)/heimdal/completions
	cp share/completions/heimdal.bash $(DESTDIR)$(DATADIR)/bash-completion/completions/heimdal
	cp share/completions/heimdal.bash $(DESTDIR)$(DATADIR)/heimdal/completions/heimdal.bash
	cp share/completions/_heimdal $(DESTDIR)$(DATADIR)/zsh/site-functions/_heimdal
	mkdir -p $(DESTDIR)$(DATADIR)/heimdal/schema
	cp share/schema/*.schema.json $(DESTDIR)$(DATADIR)/heimdal/schema/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/heimdal
	for t in $(TOOLS); do \
		rm -f $(DESTDIR)$(BINDIR)/$$t $(DESTDIR)$(LIBEXECDIR)/heimdal/$$t; \
	done
	-rmdir $(DESTDIR)$(LIBEXECDIR)/heimdal 2>/dev/null
	for m in $(MAN1) $(MAN7); do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done
	rm -f $(DESTDIR)$(DATADIR)/bash-completion/completions/heimdal \
		$(DESTDIR)$(DATADIR)/heimdal/completions/heimdal.bash \
		$(DESTDIR)$(DATADIR)/zsh/site-functions/_heimdal
	for s in share/schema/*.schema.json; do rm -f $(DESTDIR)$(DATADIR)/heimdal/schema/$${s##*/}; done
	-rmdir $(DESTDIR)$(DATADIR)/heimdal/completions $(DESTDIR)$(DATADIR)/heimdal/schema \
		$(DESTDIR)$(DATADIR)/heimdal 2>/dev/null

clean:
	rm -rf build build-san build-fuzz build-werror

FORCE:

.PHONY: all check soak bench demo sizes fuzz format format-check conversion-check install install-man uninstall clean FORCE

-include $(LIB_OBJ:.o=.d) $(PORCELAIN_OBJ:.o=.d) $(TOOLS:%=$(BUILD)/cmd/%.d)
