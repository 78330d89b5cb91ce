# The Windows build (README "Windows"), included by the Makefile: `make windows` cross-builds
# zila.exe with mingw-w64 against libraries built from Debian's source packages
# (tools/windows/srcdeps.sh, cached in build/windows/deps) and the installer (NSIS);
# `make check-windows` runs the unit tests and zila.exe under Wine.
WIN_HOST := x86_64-w64-mingw32
WIN_CC := $(WIN_HOST)-gcc
WIN_DEPS := build/windows/deps
WIN_OUT := build/windows
# Fixed flags and paths: the same tree gives the same zila.exe.
WIN_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -D_POSIX_THREAD_SAFE_FUNCTIONS=200112L \
	-D__USE_MINGW_ANSI_STDIO=1 -D_WIN32_WINNT=0x0A00 -DSODIUM_STATIC -Iinclude -Ibuild/gen \
	-I$(WIN_DEPS)/include -include src/os/os_win.h -MMD -MP $(WARN) -Wno-pedantic-ms-format \
	-O2 -g0 -fno-ident -ffile-prefix-map=$(CURDIR)=. -fstack-protector-strong
WIN_LIBS := -L$(WIN_DEPS)/lib -lsodium -luv -lsqlite3 -lzstd -lprotobuf-c -ljansson -lcsv \
	-lws2_32 -liphlpapi -luserenv -lpsapi -ldbghelp -lole32 -luuid -lshell32 -ladvapi32 -lbcrypt
WIN_LDFLAGS := -static -Wl,--no-insert-timestamp -lwinpthread -lssp
WIN_LIB_SRC := $(filter-out src/os/os_posix.c src/net/webtls.c,$(LIB_SRC)) src/os/os_win.c src/net/webtls_none.c
win_obj = $(patsubst %.c,$(WIN_OUT)/obj/%.o,$(1))
WIN_STAMP := $(WIN_DEPS)/.done

.PHONY: windows windows-deps check-windows
windows: build/.deps-windows
	$(Q)$(MAKE) --no-print-directory windows-deps
	$(Q)$(MAKE) --no-print-directory $(WIN_OUT)/zila.exe $(WIN_OUT)/zila-setup.exe

windows-deps: build/.deps-windows
	$(Q)sh tools/windows/srcdeps.sh $(WIN_DEPS)

$(WIN_STAMP):
	$(Q)sh tools/windows/srcdeps.sh $(WIN_DEPS)

$(WIN_OUT)/obj/%.o: %.c $(WIN_STAMP) | $(PROTO_H)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC win  $<")
	$(Q)$(WIN_CC) $(WIN_CFLAGS) -c $< -o $@

$(WIN_OUT)/obj/zila_rc.o: tools/windows/zila.rc tools/windows/zila.manifest
	@mkdir -p $(@D)
	$(Q)$(WIN_HOST)-windres -I tools/windows $< -O coff -o $@

# The web server's llhttp: the same C files of Debian's node-llhttp (tools/webapi/webapi.mk).
WIN_CFLAGS += -I$(LLHTTP_INC)
WIN_LLHTTP := $(patsubst %,$(WIN_OUT)/obj/llhttp/%.o,$(LLHTTP_NAMES))
$(WIN_OUT)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	$(Q)$(WIN_CC) -std=c11 -I$(LLHTTP_INC) -w -O2 -g0 -c $< -o $@
$(WIN_OUT)/libzila.a: $(WIN_LLHTTP)
$(WIN_OUT)/libzila.a: $(call win_obj,$(WIN_LIB_SRC))
	$(Q)rm -f $@ && $(WIN_HOST)-ar rcsD $@ $^

# No libpq on Windows: the PostgreSQL mirror is HQ's (Linux); pgmirror_none.c says so.
# No libjpeg-turbo either: shrink_none.c says photos are not shrunk by this build.
WIN_OFFICE_SRC := $(filter-out src/office/pgmirror.c src/office/shrink.c,$(OFFICE_SRC)) src/office/pgmirror_none.c \
	src/office/shrink_none.c
$(WIN_OUT)/libzila_office.a: $(call win_obj,$(WIN_OFFICE_SRC))
	$(Q)rm -f $@ && $(WIN_HOST)-ar rcsD $@ $^

$(WIN_OUT)/zila.exe: $(call win_obj,$(CLI_SRC)) $(WIN_OUT)/obj/zila_rc.o $(WIN_OUT)/libzila_office.a $(WIN_OUT)/libzila.a
	$(if $(Q),@echo "  LD win  $@")
	$(Q)$(WIN_CC) -o $@ $^ $(WIN_LIBS) $(WIN_LDFLAGS)

-include $(shell find $(WIN_OUT)/obj -name '*.d' 2>/dev/null)

# The unit tests, built for Windows and run under Wine (Debian's wine64) in a private prefix.
WIN_UNIT := $(patsubst tests/unit/%.c,$(WIN_OUT)/tests/%.exe,$(UNIT_SRC))
$(WIN_OUT)/tests/%.exe: $(WIN_OUT)/obj/tests/unit/%.o $(WIN_OUT)/libzila_office.a $(WIN_OUT)/libzila.a
	@mkdir -p $(@D)
	$(Q)$(WIN_CC) -o $@ $^ -lcmocka $(WIN_LIBS) $(WIN_LDFLAGS)
$(WIN_OUT)/obj/tests/%.o: WIN_CFLAGS += -Wno-format

# Not test_os_full: it limits the file size with setrlimit, which Windows has not.
WIN_UNIT_RUN := $(filter-out $(WIN_OUT)/tests/test_os_full.exe,$(WIN_UNIT))
.PHONY: check-windows-core
check-windows: check-windows-core
	$(Q)$(MAKE) --no-print-directory check-windows-setup
check-windows-core: build/.deps-windows
	$(Q)$(MAKE) --no-print-directory windows-deps
	$(Q)$(MAKE) --no-print-directory $(WIN_OUT)/zila.exe $(WIN_UNIT_RUN) build/asan/zila
	$(Q)sh tools/windows/check.sh $(WIN_OUT) $(WIN_UNIT_RUN)
	@# Linux HQ (the ASan build make check uses) and a Windows laptop under Wine, on loopback
	$(Q)ZILA=$(CURDIR)/build/asan/zila ZILA_EXE=$(CURDIR)/$(WIN_OUT)/zila.exe WINEPREFIX=$(CURDIR)/$(WIN_OUT)/wine \
	  sh tests/windows/test_cross.sh

# The installer run in a fresh Wine prefix (tests/windows/test_setup.sh): install, service,
# Start menu, firewall commands, enrolment, update, uninstall. In make check: a part of its
# own (windows-setup), beside the other (both built in make check's build step).
WIN_SETUP_TEST := $(WIN_OUT)/zila-setup.exe $(WIN_OUT)/tests/fake_netsh.exe $(WIN_OUT)/tests/fake_net.exe build/asan/zila
$(WIN_OUT)/tests/fake_netsh.exe $(WIN_OUT)/tests/fake_net.exe: $(WIN_OUT)/tests/%.exe: tests/windows/%.c
	@mkdir -p $(@D)
	$(Q)$(WIN_CC) -std=c11 $(WARN) -O2 -g0 -fno-ident -Wl,--no-insert-timestamp -o $@ $<
.PHONY: check-windows-setup
check-windows-setup: build/.deps-windows
	$(Q)$(MAKE) --no-print-directory windows-deps
	$(Q)$(MAKE) --no-print-directory $(WIN_SETUP_TEST)
	$(Q)ZILA=$(CURDIR)/build/asan/zila SETUP_EXE=$(CURDIR)/$(WIN_OUT)/zila-setup.exe \
	  FAKE_NETSH=$(CURDIR)/$(WIN_OUT)/tests/fake_netsh.exe FAKE_NET=$(CURDIR)/$(WIN_OUT)/tests/fake_net.exe \
	  sh tests/windows/test_setup.sh

# The installer (Debian's nsis), README "Windows".
$(WIN_OUT)/zila-setup.exe: tools/windows/zila.nsi $(WIN_OUT)/zila.exe
	$(if $(Q),@echo "  NSIS    $@")
	$(Q)makensis -V2 -DOUTFILE=$(CURDIR)/$@ -DEXE=$(CURDIR)/$(WIN_OUT)/zila.exe tools/windows/zila.nsi

# In `make check` (tests/check.mk): the Windows build and its tests under Wine are a part of
# their own (the libraries are built once into build/windows/deps). Ten property seeds: each
# costs about ten times its Linux time under Wine; Linux runs all of them.
# The libraries are built from Debian's sources (apt-get source: the network) in make check's
# build step, before the parts run, each in a network namespace of its own.
check: build/.deps-windows
CHECK_BUILD += $(WIN_STAMP)
CHECK_PARTS += windows
check.windows.cmd := $(MAKE) --no-print-directory check-windows-core WIN_SEEDS=10
check.windows.secs := 900
check.windows.net := own
CHECK_BUILD += $(WIN_OUT)/zila.exe $(WIN_SETUP_TEST)
CHECK_PARTS += windows-setup
check.windows-setup.cmd := $(MAKE) --no-print-directory check-windows-setup
check.windows-setup.kind := wait
check.windows-setup.secs := 120
check.windows-setup.net := own
