# The attachments bench (#25, tools/bench/attach.sh, README "Figures"): 100 photos of 300 KB
# laptop -> HQ beside raw TCP, and a day's rows over a 2G-like link with and without 20
# photos (about 15 minutes: the photos cross 6 MB at 8 KB/s). `make bench-attach`; the LAN
# part alone: `make bench-attach ATTACH=lan`.
ATTACH ?= all
.PHONY: bench-attach
bench-attach: build/zila build/tools/zila_proxy
	$(Q)sh tools/bench/attach.sh $(ATTACH)

# Attachments over the emulated field link (#25, tools/bench/link.sh photos, README
# "Figures"): HQ and a laptop in network namespaces joined by tools/zila_link at 64 kbit/s,
# 300 +- 100 ms, 2% loss; a day's rows with and without 20 photos of 300 KB, alternated
# (ROUNDS, default 2), rows written while photos move, a cut mid-photo. Root; about 40
# minutes (6 MB of photos cross 64 kbit/s twice). LINKS=256k for 256 kbit/s.
.PHONY: bench-link-photos
bench-link-photos: build/.deps-build
	$(Q)$(MAKE) --no-print-directory build/zila $(LINK_TOOLS)
	$(Q)sh tools/bench/link.sh photos
