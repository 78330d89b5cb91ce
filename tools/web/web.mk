# The web interface's front end (src/web/ui, README "Web interface"), included by the Makefile.
# `make web` builds build/web/dist (the server side embeds it in the binary); `make web-check`
# runs the browser tests in Debian's Chromium; `make web-screenshots` rewrites the README's
# pictures in tools/web/screenshots. npm runs only when package-lock.json changed, so `make`
# works offline after the first `npm ci`.
WEB_UI := src/web/ui
WEB_SRC := $(sort $(wildcard $(WEB_UI)/src/*.js)) $(WEB_UI)/index.html $(WEB_UI)/app.css $(WEB_UI)/build.mjs
WEB_DIST := build/web/dist

.PHONY: web web-check web-screenshots
web: build/.deps-web
	$(Q)$(MAKE) --no-print-directory $(WEB_DIST)/index.html

# The server side embeds the built front end (tools/webapi/webapi.mk); build it first.
build/gen/web_assets.c: $(WEB_DIST)/index.html

# --ignore-scripts: nothing of a package runs at install (esbuild finds its binary without).
$(WEB_UI)/node_modules/.zila-npm-ci: $(WEB_UI)/package-lock.json $(WEB_UI)/package.json | build/.deps-web
	$(if $(Q),@echo "  NPM     ci")
	$(Q)cd $(WEB_UI) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
	$(Q)touch $@

$(WEB_DIST)/index.html: $(WEB_SRC) $(WEB_UI)/node_modules/.zila-npm-ci
	$(if $(Q),@echo "  WEB     $(WEB_DIST)")
	$(Q)node $(WEB_UI)/build.mjs $(WEB_DIST)

# Against the API stand-in (tests/web/mock_api.mjs) and against real daemons (ASan build).
web-check: build/.deps-webcheck
	$(Q)$(MAKE) --no-print-directory $(WEB_DIST)/index.html build/asan/zila
	$(Q)node --test-reporter=spec tests/web/i18n_test.mjs
	$(Q)ZILA=$(CURDIR)/build/asan/zila node --test-reporter=spec tests/web/ui_test.mjs

web-screenshots: build/.deps-webcheck
	$(Q)$(MAKE) --no-print-directory $(WEB_DIST)/index.html
	$(Q)node --test-reporter=spec --test-name-pattern='clerk:|HQ:'  tests/web/ui_test.mjs --screenshots tools/web/screenshots

# In `make check` (tests/check.mk): the browser tests are a part of their own; Chromium and
# the daemons they drive share the cores with the rest, so they count as a cpu part.
# Their packages are installed before the build runs side by side (two apt-gets at once fail).
check: build/.deps-web build/.deps-webcheck
CHECK_BUILD += $(WEB_DIST)/index.html
CHECK_PARTS += web
check.web.cmd := node --test-reporter=spec tests/web/i18n_test.mjs && \
	ZILA=$(CURDIR)/build/asan/zila node --test-reporter=spec tests/web/ui_test.mjs
check.web.secs := 110
