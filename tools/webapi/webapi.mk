# The web interface's server side (#18, proto/web/API.md): llhttp compiled in from Debian's
# node-llhttp (its C sources in /usr/share/llhttp; not copied into this tree), and the front
# end's built files (build/web/dist) embedded as build/gen/web_assets.c. Included by the
# Makefile after LIB_SRC.
# Included before the Makefile's `all`: its rules must not become the default goal (a plain
# `make` builds build/zila and the tools, as the README says).
.DEFAULT_GOAL := all
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
LLHTTP_NAMES := api http llhttp
LLHTTP_REL := $(patsubst %,build/obj/llhttp/%.o,$(LLHTTP_NAMES))
LLHTTP_ASAN := $(patsubst %,build/asan/obj/llhttp/%.o,$(LLHTTP_NAMES))
LLHTTP_FUZZ := $(patsubst %,build/fuzz/obj/llhttp/%.o,$(LLHTTP_NAMES))
LLHTTP_CFLAGS := -std=c11 -I$(LLHTTP_INC) -w
BASE_CFLAGS += -I$(LLHTTP_INC)
LIB_SRC += build/gen/web_assets.c
# TLS for the interface on the LAN (HQ): OpenSSL's libssl (README "Dependencies"); the
# Windows build compiles src/net/webtls_none.c instead (tools/windows/windows.mk).
LIB_SRC := $(filter-out src/net/webtls_none.c,$(LIB_SRC))
BASE_CFLAGS += $(shell pkg-config --cflags openssl 2>/dev/null)
LIBS += $(shell pkg-config --libs openssl 2>/dev/null)
WEB_DIST ?= build/web/dist

build/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c build/.deps-build
	@mkdir -p $(@D)
	$(Q)$(CC) $(LLHTTP_CFLAGS) $(HARDEN) $(CFLAGS) -c $< -o $@
build/asan/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c build/.deps-build
	@mkdir -p $(@D)
	$(Q)$(CC) $(LLHTTP_CFLAGS) $(ASAN_FLAGS) -c $< -o $@
build/fuzz/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c build/.deps-fuzz
	@mkdir -p $(@D)
	$(Q)clang $(LLHTTP_CFLAGS) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
build/libzila.a: $(LLHTTP_REL)
build/asan/libzila.a: $(LLHTTP_ASAN)
build/fuzz/libzila.a: $(LLHTTP_FUZZ)

# Always looked at; rewritten (and so recompiled) only when the front end's files changed.
.PHONY: web-assets-check
build/gen/web_assets.c: web-assets-check
	$(Q)mkdir -p build/gen && sh tools/webapi/embed_dir.sh $(WEB_DIST) $@

# The web interface's bench (in `make bench` with the others): the pages link the office layer;
# it runs zila_gen and the daemon of build/zila.
build/bench/bench_web: build/obj/tools/bench/bench_web.o build/libzila_office.a build/libzila.a | build/tools/zila_gen build/zila
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(OFFICE_LIBS)

# The pages' unit test links the office layer.
build/asan/tests/test_webapi: build/asan/obj/tests/unit/test_webapi.o build/asan/libzila_office.a \
		build/asan/libzila.a build/.deps-check
	@mkdir -p $(@D)
	$(Q)$(CC) $(ASAN_FLAGS) -o $@ $< build/asan/libzila_office.a build/asan/libzila.a $(LIBS) \
	  $(OFFICE_LIBS) -lcmocka
