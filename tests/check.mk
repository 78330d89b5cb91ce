# The parts of `make check` (included by the Makefile; README "Tests"). tests/runner.py runs
# them side by side from build/check/parts.tsv and prints each part's output as one block and
# a table of every part's seconds at the end (also in build/check/times.txt).
#
# A part NAME is a shell command run from the top of the tree:
#   check.NAME.cmd   the command (its exit status is the part's result)
#   check.NAME.kind  cpu (default): keeps a core busy, at most CHECK_JOBS at once;
#                    wait: mostly sleeps on timers and daemons, up to CHECK_WAIT_JOBS more
#                    run beside the cpu ones; alone: runs with nothing beside it
#   check.NAME.secs  about how long it takes (longer parts start first; default 60)
#   check.NAME.net   own (default): a network namespace of its own, so loopback ports and LAN
#                    beacons of parts side by side never meet (root; else such parts run one
#                    at a time); host: ours (for parts that make namespaces themselves)
# A fragment adds a part with CHECK_PARTS += NAME, its check.NAME.* and what it needs built
# in CHECK_BUILD. `make check CHECK_ONLY=regex` runs the parts whose names match.
CHECK_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CHECK_WAIT_JOBS ?= 4
CHECK_ONLY ?=
# A waiting part (a script) that fails runs once more; its second result counts, and the table
# names it FLAKY. CHECK_AGAIN=0: no second run.
CHECK_AGAIN ?= 1
# Property seeds run in CHECK_PROP_SHARDS parts side by side (SEEDS in all); the shards
# numbered in CHECK_PROP_CKPT run with checkpoints, collection and replaced laptops
# (ZILA_PROP_CKPT=1).
CHECK_PROP_SHARDS ?= 4
CHECK_PROP_CKPT ?= 3 4

CHECK_BUILD += $(UNIT_BIN) build/asan/zila $(TOOL_BIN)

# Unit tests: every tests/unit/test_*.c but the property test, which runs in shards.
UNIT_PARTS := $(patsubst tests/unit/%.c,unit.%,$(filter-out tests/unit/test_property.c,$(UNIT_SRC)))
CHECK_PARTS += $(UNIT_PARTS)
$(foreach p,$(UNIT_PARTS),$(eval check.$(p).cmd := ZILA_VECTORS=tests/vectors ZILA_SEEDS=$(SEEDS) \
	build/asan/tests/$(patsubst unit.%,%,$(p))))
check.unit.test_store.secs := 40
check.unit.test_session.secs := 40
check.unit.test_trust.secs := 30
check.unit.test_csvio.secs := 20

# The property test, SEEDS seeds in CHECK_PROP_SHARDS ranges (ZILA_SEEDS=FIRST-LAST).
prop_first = $(shell echo $$(( ($(1) - 1) * $(SEEDS) / $(CHECK_PROP_SHARDS) + 1 )))
prop_last = $(shell echo $$(( $(1) * $(SEEDS) / $(CHECK_PROP_SHARDS) )))
PROP_PARTS := $(foreach i,$(shell seq $(CHECK_PROP_SHARDS)),unit.test_property.$(i))
CHECK_PARTS += $(PROP_PARTS)
$(foreach i,$(shell seq $(CHECK_PROP_SHARDS)),$(eval check.unit.test_property.$(i).cmd := \
	ZILA_VECTORS=tests/vectors $(if $(filter $(i),$(CHECK_PROP_CKPT)),ZILA_PROP_CKPT=1 )ZILA_SEEDS=$(call \
	prop_first,$(i))-$(call prop_last,$(i)) build/asan/tests/test_property))
$(foreach p,$(PROP_PARTS),$(eval check.$(p).secs := 300))

# Integration scripts: every tests/integration/test_*.sh, against the ASan build.
IT_PARTS := $(patsubst tests/integration/%.sh,it.%,$(ITEST))
CHECK_PARTS += $(IT_PARTS)
$(foreach p,$(IT_PARTS),$(eval check.$(p).cmd := ZILA=$(CURDIR)/build/asan/zila \
	sh tests/integration/$(patsubst it.%,%,$(p)).sh))

# The scripts wait on daemons, timers and many short processes far more than they compute
# (a few seconds of cpu each): they run side by side beside the cpu parts.
$(foreach p,$(IT_PARTS),$(eval check.$(p).kind ?= wait))
# Seconds, roughly (wall, a loaded machine, 4 side by side), so the long ones start first.
$(foreach p,$(IT_PARTS),$(eval check.$(p).secs ?= 15))
check.it.test_faults.secs := 150
check.it.test_offline.secs := 130
check.it.test_lab.secs := 70
check.it.test_lan.secs := 45
check.it.test_attach.secs := 110
check.it.test_bundle_files.secs := 30
check.it.test_pg_mirror.secs := 60
check.it.test_slow_link.secs := 40
check.it.test_apply_slices.secs := 30
check.it.test_apply_many.secs := 60
$(foreach p,test_hqkey test_cut test_review test_hostile test_busy test_beacon_flood,$(eval \
	check.it.$(p).secs := 35))
$(foreach p,test_secret test_crash test_diskfull test_import test_renewal test_kill test_clock \
	test_write_order,$(eval check.it.$(p).secs := 25))
# Scripts that make network namespaces of their own (netns.sh) run in ours.
check.it.test_netns.net := host
check.it.test_lab.net := host
check.it.test_lan.net := host
check.it.test_link.net := host

empty :=
TAB := $(empty)	$(empty)
check_field = $(or $(check.$(1).$(2)),$(3))
check_line = $(1)$(TAB)$(call check_field,$(1),kind,cpu)$(TAB)$(call check_field,$(1),secs,60)$(TAB)$(call \
	check_field,$(1),net,own)$(TAB)$(check.$(1).cmd)

check-run:
	$(shell mkdir -p build/check)$(file >build/check/parts.tsv)
	$(foreach p,$(CHECK_PARTS),$(file >>build/check/parts.tsv,$(call check_line,$(p))))
	$(Q)CHECK_JOBS=$(CHECK_JOBS) CHECK_WAIT_JOBS=$(CHECK_WAIT_JOBS) CHECK_ONLY='$(value CHECK_ONLY)' CHECK_AGAIN='$(CHECK_AGAIN)' \
	  python3 tests/runner.py build/check/parts.tsv
