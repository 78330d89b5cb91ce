# Shrinking phone photos on the way in (#25, src/office/shrink.c): libjpeg-turbo for the
# office layer (Debian's libjpeg62-turbo-dev, README "Dependencies"). The Windows build
# compiles src/office/shrink_none.c instead (tools/windows/windows.mk), which says plainly
# that it cannot shrink. Included by the Makefile after OFFICE_SRC.
OFFICE_SRC := $(filter-out src/office/shrink_none.c,$(OFFICE_SRC))
OFFICE_LIBS += $(shell pkg-config --libs libjpeg 2>/dev/null || echo -ljpeg)

# Its unit test makes its JPEGs with libjpeg itself, and links the office layer.
build/asan/tests/test_shrink: build/asan/obj/tests/unit/test_shrink.o build/asan/libzila_office.a \
		build/asan/libzila.a build/.deps-check
	@mkdir -p $(@D)
	$(Q)$(CC) $(ASAN_FLAGS) -o $@ $< build/asan/libzila_office.a build/asan/libzila.a $(LIBS) \
	  $(OFFICE_LIBS) -lcmocka

# The integration test's phone photos (tests/integration/test_shrink.sh).
build/tools/zila_mkjpeg: build/obj/tools/photo/mkjpeg.o
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -pie -o $@ $^ $(OFFICE_LIBS)
CHECK_BUILD += build/tools/zila_mkjpeg
