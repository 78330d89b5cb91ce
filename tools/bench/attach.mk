# The attachments bench (#25, tools/bench/attach.sh, README "Figures"): 100 photos of 300 KB
# laptop -> HQ beside raw TCP, and a day's rows over a 2G-like link with and without 20
# photos (about 15 minutes: the photos cross 6 MB at 8 KB/s). `make bench-attach`; the LAN
# part alone: `make bench-attach ATTACH=lan`.
ATTACH ?= all
.PHONY: bench-attach
bench-attach: build/zila build/tools/zila_proxy
	$(Q)sh tools/bench/attach.sh $(ATTACH)
