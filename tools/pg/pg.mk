# The PostgreSQL mirror (src/office/pgmirror.c, #20): libpq for the office layer, and
# `make bench-pg` (the mirror's initial load and its lag after a day's sync).
BASE_CFLAGS += $(shell pkg-config --cflags libpq 2>/dev/null)
OFFICE_LIBS += $(shell pkg-config --libs libpq 2>/dev/null)

.PHONY: bench-pg
bench-pg: build/.deps-check
	$(Q)$(MAKE) --no-print-directory build/zila build/tools/zila_gen
	$(Q)ZILA=$(CURDIR)/build/zila ZILA_GEN=$(CURDIR)/build/tools/zila_gen sh tools/pg/bench_pg.sh
# `make bench` runs it too (about 20 s).
bench: bench-pg
