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

# In `make check` as root (tests/check.mk): the package's test is a part of its own. It
# installs zila on this machine and refuses to run where zila is installed already (said so,
# and the part is skipped: a developer's own installation is never touched).
ifeq ($(shell id -u),0)
check: build/.deps-deb
CHECK_PARTS += deb
check.deb.cmd := if dpkg-query -W -f '$${Status}' zila 2>/dev/null | grep -q installed || \
	  [ -e /usr/bin/zila ] || [ -e /var/lib/zila ]; then echo "skip - zila is installed on this \
	  machine; its package test (make check-deb) would remove it"; else \
	  DEB_VERSION='$(DEB_VERSION)' sh tests/deb/test_deb.sh; fi
check.deb.secs := 200
check.deb.net := host
endif
