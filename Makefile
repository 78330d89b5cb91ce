# zila build. `make` builds build/zila; `make check` builds with ASan+UBSan into build/asan
# and runs every test; `make bench`, `make bench-compare BASE=COMMIT`, `make fuzz`, `make demo`;
# `make install`.
PREFIX ?= /usr/local
# `make` alone builds all, whatever target a fragment included below defines first.
.DEFAULT_GOAL := all
DESTDIR ?=
CC ?= cc
PKGS := libsodium libuv sqlite3 libzstd libprotobuf-c jansson
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
FUZZ_SECONDS ?= 15
SEEDS ?= 500

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla -Wwrite-strings -Wno-format-nonliteral -Wno-overlength-strings
HARDEN := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
BASE_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Iinclude -Ibuild/gen -MMD -MP $(WARN) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
OFFICE_LIBS := -lcsv
include tools/pg/pg.mk
CFLAGS ?= -O2 -g
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

PROTOS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,build/gen/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
LIB_SRC := $(sort $(filter-out src/os/os_win.c,$(wildcard src/core/*.c src/os/*.c src/store/*.c src/trust/*.c \
	src/sync/*.c src/net/*.c))) $(PROTO_C) build/gen/schema_sql.c
# The office layer (src/office: spreadsheet import and export, the HQ report) sits above the
# engine in a library of its own: libzila builds and passes its tests without it.
OFFICE_SRC := $(sort $(filter-out src/office/pgmirror_none.c,$(wildcard src/office/*.c)))
include tools/webapi/webapi.mk
include tools/photo/photo.mk
TOOL_SRC := $(sort $(wildcard tools/*.c))
TOOL_BIN := $(patsubst tools/%.c,build/tools/%,$(TOOL_SRC))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard tools/bench/bench_*.c))
ITEST := $(sort $(wildcard tests/integration/test_*.sh))

rel_obj = $(patsubst %.c,build/obj/%.o,$(1))
asan_obj = $(patsubst %.c,build/asan/obj/%.o,$(1))

# Keep generated headers and objects: make would otherwise delete them as intermediates.
.SECONDARY:

.PHONY: all check check-run layers unit integration bench bench-link bench-compare fuzz fuzz-run demo install clean property-long lab
# Top-level targets install missing packages first, then build in a fresh make so the
# pkg-config flags are read after the install. The front end is built by this make, not by a
# sub-make for `web`: two makes at once ran `npm ci` twice side by side (esbuild ETXTBSY).
all: build/.deps-build build/.deps-web
	$(Q)$(MAKE) --no-print-directory $(WEB_DIST)/index.html build/zila $(TOOL_BIN)

# Tools (sample-data generator, lab helpers): tools/NAME.c -> build/tools/NAME
build/tools/%: build/obj/tools/%.o build/libzila.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -pie -o $@ $^ $(LIBS)
# The sample-data generator writes CSV through the office layer.
build/tools/zila_gen: build/obj/tools/zila_gen.o build/libzila_office.a build/libzila.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -pie -o $@ $^ $(LIBS) $(OFFICE_LIBS)

build/.deps-%: tools/deps.sh
	$(Q)mkdir -p build && sh tools/deps.sh $* && touch $@

build/gen/%.pb-c.c build/gen/%.pb-c.h: proto/%.proto build/.deps-build
	$(Q)mkdir -p build/gen && protoc-c --proto_path=proto --c_out=build/gen $<

# The default schema, compiled in as a string.
build/gen/schema_sql.c: proto/schema/default.sql tools/embed.sh
	$(Q)mkdir -p build/gen && sh tools/embed.sh zila_default_schema_sql $< > $@

build/obj/%.o: %.c build/.deps-build | $(PROTO_H)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(BASE_CFLAGS) $(HARDEN) $(CFLAGS) -c $< -o $@

build/asan/obj/%.o: %.c build/.deps-build | $(PROTO_H)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC asan $<")
	$(Q)$(CC) $(BASE_CFLAGS) $(ASAN_FLAGS) -c $< -o $@

build/libzila.a: $(call rel_obj,$(LIB_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

build/asan/libzila.a: $(call asan_obj,$(LIB_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

build/libzila_office.a: $(call rel_obj,$(OFFICE_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

build/asan/libzila_office.a: $(call asan_obj,$(OFFICE_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

build/zila: $(call rel_obj,$(CLI_SRC)) build/libzila_office.a build/libzila.a
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -pie -Wl,-z,relro,-z,now -o $@ $^ $(LIBS) $(OFFICE_LIBS)

build/asan/zila: $(call asan_obj,$(CLI_SRC)) build/asan/libzila_office.a build/asan/libzila.a
	$(if $(Q),@echo "  LD asan $@")
	$(Q)$(CC) $(ASAN_FLAGS) -o $@ $^ $(LIBS) $(OFFICE_LIBS)

build/asan/tests/%: build/asan/obj/tests/unit/%.o build/asan/libzila.a build/.deps-check
	@mkdir -p $(@D)
	$(Q)$(CC) $(ASAN_FLAGS) -o $@ $< build/asan/libzila.a $(LIBS) -lcmocka

# The unit tests of the office layer link it too.
OFFICE_UNIT := build/asan/tests/test_csvio build/asan/tests/test_report
$(OFFICE_UNIT): build/asan/tests/%: build/asan/obj/tests/unit/%.o build/asan/libzila_office.a \
		build/asan/libzila.a build/.deps-check
	@mkdir -p $(@D)
	$(Q)$(CC) $(ASAN_FLAGS) -o $@ $< build/asan/libzila_office.a build/asan/libzila.a $(LIBS) \
	  $(OFFICE_LIBS) -lcmocka

UNIT_BIN := $(patsubst tests/unit/%.c,build/asan/tests/%,$(UNIT_SRC))

unit: $(UNIT_BIN)
	$(Q)for t in $(UNIT_BIN); do echo "== $$t"; \
	  ZILA_VECTORS=tests/vectors ZILA_SEEDS=$(SEEDS) $$t || exit 1; done

integration: build/asan/zila $(TOOL_BIN) build/.deps-check
	$(Q)for t in $(ITEST); do echo "== $$t"; \
	  ZILA=$(CURDIR)/build/asan/zila sh $$t || exit 1; done

# The layers of ARCHITECTURE.md, checked on the tree (tools/check_layers.py); first in `make check`.
layers:
	$(Q)python3 tools/check_layers.py

# `make check` (README "Tests"): the layers, then what CHECK_BUILD names (make -j CHECK_JOBS),
# then tests/runner.py runs the parts of CHECK_PARTS side by side and prints a table of their
# seconds. Parts are added in tests/check.mk, and by fragments:
#   CHECK_BUILD += build/foo/thing;  CHECK_PARTS += foo;  check.foo.cmd := sh tools/foo/test.sh
check: build/.deps-check
	$(Q)$(MAKE) --no-print-directory layers
	$(Q)t0=$$(date +%s) && $(MAKE) --no-print-directory -j$(CHECK_JOBS) $(CHECK_BUILD) && \
	  echo "make check: built in $$(($$(date +%s) - t0)) s"
	$(Q)$(MAKE) --no-print-directory check-run
	@echo "make check: all tests passed"
include tests/check.mk

# The fault-injection lab (tools/lab, README "Tests"): `make lab SEED=n SECONDS=m` runs seed n
# with m seconds of faults of every class (FAULTS=cut,kill,... picks some) and writes
# build/lab/seed-n/report.txt. Needs root (network namespaces).
SEED ?= 1
SECONDS ?= 120
FAULTS ?= all
lab: build/.deps-build
	$(Q)$(MAKE) --no-print-directory build/zila
	$(Q)ZILA=$(CURDIR)/build/zila LAB_SEED=$(SEED) LAB_SECONDS=$(SECONDS) LAB_FAULTS=$(FAULTS) \
	  LAB_OUT=$(CURDIR)/build/lab/seed-$(SEED) sh tools/lab/lab.sh

# The long property run: `make property-long` (10,000 seeds).
property-long: build/asan/tests/test_property
	ZILA_SEEDS=10000 build/asan/tests/test_property

BENCH_BIN := $(patsubst tools/bench/%.c,build/bench/%,$(BENCH_SRC))
build/bench/%: build/obj/tools/bench/%.o build/libzila.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS)
build/bench/bench_import: build/obj/tools/bench/bench_import.o build/libzila_office.a build/libzila.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(OFFICE_LIBS)
# bench_bytes exports CSV through the office layer and generates its district with zila_gen.
build/bench/bench_bytes: build/obj/tools/bench/bench_bytes.o build/libzila_office.a build/libzila.a | build/tools/zila_gen
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(OFFICE_LIBS)

bench: build/.deps-build
	$(Q)$(MAKE) --no-print-directory $(BENCH_BIN) build/zila $(LINK_TOOLS)
	$(Q)for b in $(BENCH_BIN); do $$b || exit 1; done
	@# the incremental goal is for 100k-row laptops; the run above is at 1M
	$(Q)build/bench/bench_sync 100000
	@# the field link (#24), short form: 2G, a small district, a day's work (root; else skipped)
	$(Q)sh tools/bench/link.sh short

# The field-link bench's long form (tools/bench/link.sh, README "Figures"): 2G and 32 kbit/s,
# a 20,000-person district's first clone, a day's work, a return with 50,000 changes. Root.
LINK_TOOLS := build/tools/zila_link build/tools/zila_gen build/tools/zila_changeset
bench-link: build/.deps-build
	$(Q)$(MAKE) --no-print-directory build/zila $(LINK_TOOLS)
	$(Q)sh tools/bench/link.sh long

# Base against work tree, alternately, in one run (tools/bench/compare.sh): `make
# bench-compare BASE=COMMIT` (default: the merge base of HEAD and main), ROUNDS=3, ROWS=100000,
# BENCHES="store sync import channel" (also: bytes, bench_bytes).
bench-compare: build/.deps-build
	$(Q)BASE='$(BASE)' ROUNDS='$(ROUNDS)' ROWS='$(ROWS)' BENCHES='$(BENCHES)' sh tools/bench/compare.sh

FUZZ_CFLAGS := $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRC))
FUZZ_OFFICE_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(OFFICE_SRC))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
build/fuzz/obj/%.o: %.c build/.deps-fuzz | $(PROTO_H)
	@mkdir -p $(@D)
	$(Q)clang $(FUZZ_CFLAGS) -c $< -o $@
build/fuzz/libzila.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
build/fuzz/libzila_office.a: $(FUZZ_OFFICE_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
build/fuzz/%: build/fuzz/obj/tests/fuzz/%.o build/fuzz/libzila.a
	$(Q)clang -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ $^ $(LIBS)
build/fuzz/fuzz_csv: build/fuzz/obj/tests/fuzz/fuzz_csv.o build/fuzz/libzila_office.a build/fuzz/libzila.a
	$(Q)clang -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ $^ $(LIBS) \
	  $(OFFICE_LIBS)

fuzz: build/.deps-fuzz
	$(Q)$(MAKE) --no-print-directory fuzz-run

fuzz-run: $(FUZZ_BIN)
	$(Q)for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build/fuzz/corpus/$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build/fuzz/corpus/$$n tests/fuzz/corpus/$$n \
	    2>build/fuzz/$$n.log || { tail -40 build/fuzz/$$n.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units' build/fuzz/$$n.log; done

demo: build/.deps-demo
	$(Q)$(MAKE) --no-print-directory build/zila $(TOOL_BIN)
	$(Q)sh tools/demo.sh

# The systemd unit goes to /lib/systemd/system when PREFIX is /usr (Debian's place for
# packaged units), else under PREFIX; its ExecStart names the installed binary.
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
install: build/zila
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(UNITDIR)
	install -m 0755 build/zila $(DESTDIR)$(PREFIX)/bin/zila
	install -m 0644 zila.1 $(DESTDIR)$(PREFIX)/share/man/man1/zila.1
	sed 's|/usr/local/bin/zila|$(PREFIX)/bin/zila|' tools/zila.service >build/zila.service
	install -m 0644 build/zila.service $(DESTDIR)$(UNITDIR)/zila.service

.PHONY: uninstall
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/zila $(DESTDIR)$(PREFIX)/share/man/man1/zila.1 \
	  $(DESTDIR)$(UNITDIR)/zila.service

clean:
	rm -rf build

include tools/debian/deb.mk
include tools/web/web.mk
# The Windows build: make windows, make check-windows.
include tools/windows/windows.mk
include tools/bench/scale.mk
include tools/bench/attach.mk

# (not those of the base commits bench-compare builds under build/compare, nor the Windows
# build's, which tools/windows/windows.mk reads)
-include $(shell find build \( -path build/compare -o -path build/windows \) -prune -o -name '*.d' -print 2>/dev/null)
