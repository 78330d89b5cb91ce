# The Debian package (tools/debian; README "Install"). `make deb` builds build/deb/zila_VERSION_ARCH.deb
# with debhelper in a staging tree (tools/debian/build.sh) and checks it with lintian;
# `make check-deb` (root; .ci/run) installs it, runs the service as the unit would, upgrades,
# removes and purges it, and leaves the machine as it was (tests/deb/test_deb.sh).
DEB_VERSION ?= $(shell sed -n 's/^\#define ZILA_VERSION "\(.*\)"/\1/p' include/zila/store.h)
.PHONY: deb check-deb
deb: build/.deps-deb
	$(Q)sh tools/debian/build.sh '$(DEB_VERSION)'

check-deb: build/.deps-deb
	$(Q)DEB_VERSION='$(DEB_VERSION)' sh tests/deb/test_deb.sh
