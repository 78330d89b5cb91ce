#!/bin/sh
# tools/check_layers.py: passes on the tree, and fails, naming the place, on a copy of the
# tree with one offence of each kind planted (so the check itself can fail).
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
chk="$root/tools/check_layers.py"

expect 0 "the tree keeps its layers" -- python3 "$chk" "$root"

# plant FILE LINE DESCRIPTION WANT: a fresh copy of src/ with LINE appended to FILE must fail
# with WANT in the output
plant() {
	rm -rf "$T/tree" && mkdir -p "$T/tree" && cp -R "$root/src" "$T/tree/"
	printf '%s\n' "$2" >>"$T/tree/$1"
	expect 1 "$3 is caught" -- python3 "$chk" "$T/tree"
	has "$T/out" "$4" "$3 is named"
}
plant src/store/seal.c '#include "zila/session.h"' "the store including the sync layer" \
	"store includes zila/session.h of sync"
plant src/core/err.c '#include "zila/store.h"' "core including the store" \
	"core includes zila/store.h of store"
plant src/cli/main.c 'static const char *q = "SELECT * FROM zila_conflicts";' \
	"the CLI naming a store table" "names the store's table zila_conflicts"
plant src/cli/main.c 'static void f(struct zila_store *s) { (void)zila_store_db(s); }' \
	"the CLI taking the store's connection" "takes the store's own connection"
plant src/sync/session.c 'static int g(void) { return open("x", 0); }' \
	"the sync layer opening a file" "sync calls open()"
plant src/sync/session.c '#include <uv.h>' "the sync layer including libuv" "sync includes <uv.h>"
plant src/net/daemon.c '#include "../store/store_int.h"' "net including the store's inside" \
	"the inside of src/store"

finish
