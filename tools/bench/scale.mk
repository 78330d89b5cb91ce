# #20 part 4, national scale. The national HQ bench (tools/bench/bench_national.c, README "Figures", #20 part 4): its short
# form is in `make bench`; `make bench-national` is the long form, 700 districts x 14,286
# members (~10M) and ~1,430 booths each (~1M); about 16 GB free under ZILA_BENCH_DIR while it
# generates (a 10.4 GiB replica, its staging file and WAL), about 40 minutes on 2 loaded cores.
build/bench/bench_national: build/obj/tools/bench/bench_national.o build/libzila.a | build/tools/zila_gen
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

NATIONAL ?= 700 14286 1430 3
bench-national: build/.deps-build
	$(Q)$(MAKE) --no-print-directory build/bench/bench_national build/zila build/tools/zila_gen
	$(Q)build/bench/bench_national $(NATIONAL)

.PHONY: bench-national

# HQ's loop while it applies and sends a large window (tools/bench/bench_stall.c): its short
# form (200,000 rows) is in `make bench`; `make bench-stall` sends and clones 1,000,000.
STALL_ROWS ?= 1000000
bench-stall: build/.deps-build
	$(Q)$(MAKE) --no-print-directory build/bench/bench_stall build/zila
	$(Q)build/bench/bench_stall build/zila $(STALL_ROWS)

.PHONY: bench-stall
