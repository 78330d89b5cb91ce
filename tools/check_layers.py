#!/usr/bin/env python3
"""Enforces the layers of ARCHITECTURE.md on the tree; `make check` runs it first.

Three rules, each a list of offences with file:line when broken:
  1. includes: a file under src/LAYER includes only headers of its own layer or of a layer
     below it (the table LAYERS), and never another module's private header;
  2. the replica's tables: no code outside src/store names a zila_* table in its text
     (the names are read from the store's own CREATE statements, so a new table is covered),
     creates one, or takes the store's own SQLite connection;
  3. sans-I/O: nothing in src/sync opens, reads, writes, maps or renames a file, touches a
     socket or a libuv handle, or includes a header that does.

Usage: tools/check_layers.py [ROOT]   (exit 0: the tree keeps its layers; 1: it does not)
"""
import os
import re
import sys

# Layer ranks: a file may include headers of a layer of lower or equal rank, never higher.
# os and core share the bottom: both are plumbing every layer may use.
LAYERS = {
    "core": 0, "os": 0,
    "store": 1,
    "trust": 2,
    "sync": 3,
    "net": 4,
    "office": 4,
    "cli": 5,
}
# Which layer each public header belongs to: include/zila/NAME.h, or include/zila/DIR/*.h.
HEADERS = {
    "err": "core", "buf": "core", "log": "core", "clock": "core", "pbuf": "core", "os": "os",
    "store": "store", "store_test": "store", "review": "store", "schema": "store", "blob": "store",
    "trust": "trust",
    "noise": "sync", "channel": "sync", "session": "sync", "bundle": "sync", "blobx": "sync",
    "daemon": "net", "sched": "net", "webauth": "net",
    "csvio": "office", "report": "office", "pgmirror": "office", "office": "office",
}
# Layers that may not see each other although their ranks allow it.
APART = {("net", "office"), ("office", "net")}

SYNC_IO_CALLS = re.compile(
    r"(?<![\w.>])(open|openat|fopen|fdopen|close|fclose|read|write|pread|pwrite|fread|fwrite|"
    r"fsync|fdatasync|rename|unlink|mmap|munmap|mkdir|opendir|stat|fstat|lstat|ftruncate|"
    r"socket|connect|bind|listen|accept|send|sendto|recv|recvfrom|poll|select|"
    r"sqlite3_open|sqlite3_open_v2)\s*\(")
SYNC_IO_HEADERS = re.compile(
    r"#\s*include\s*[<\"](uv\.h|fcntl\.h|unistd\.h|sys/mman\.h|sys/socket\.h|sys/stat\.h|"
    r"netinet/[^>\"]+|arpa/inet\.h|dirent\.h|poll\.h)[>\"]")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def strip_comments(text):
    """The text with C comments blanked (line breaks kept, so line numbers hold)."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r"/\*.*?\*/|//[^\n]*", blank, text, flags=re.S)


def sources(root, sub):
    top = os.path.join(root, sub)
    for dirpath, _, names in os.walk(top):
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                yield os.path.join(dirpath, n)


def layer_of_src(root, path):
    parts = os.path.relpath(path, os.path.join(root, "src")).split(os.sep)
    return parts[0] if len(parts) > 1 else None


def header_layer(inc):
    """The layer of an included header named as in `#include "..."`, or None if not ours."""
    m = re.match(r"zila/(?:([a-z_]+)/)?([a-z_0-9]+)\.h$", inc)
    if not m:
        return None
    if m.group(1):                      # include/zila/office/x.h: the directory names it
        return m.group(1) if m.group(1) in LAYERS else "?" + inc
    return HEADERS.get(m.group(2), "?" + inc)


def check_includes(root, offences):
    for path in sources(root, "src"):
        layer = layer_of_src(root, path)
        if layer not in LAYERS:
            offences.append(f"{rel(root, path)}: src/{layer} is no layer of ARCHITECTURE.md "
                            f"(add it to tools/check_layers.py's LAYERS)")
            continue
        for i, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            if inc.startswith("../") or "/" in inc and not inc.startswith("zila/"):
                other = inc.split("/")[-2] if inc.startswith("../") else inc.split("/")[0]
                offences.append(f"{rel(root, path)}:{i}: includes {inc}, the inside of "
                                f"src/{other}; use its public header")
                continue
            hl = header_layer(inc)
            if hl is None:
                continue                # a private header of this directory or generated code
            if hl.startswith("?"):
                offences.append(f"{rel(root, path)}:{i}: {hl[1:]} belongs to no layer "
                                f"(add it to tools/check_layers.py's HEADERS)")
            elif LAYERS[hl] > LAYERS[layer] or (layer, hl) in APART:
                offences.append(f"{rel(root, path)}:{i}: {layer} includes {inc} of {hl}, "
                                f"a layer above it or beside it")


def store_tables(root):
    names = set()
    for path in sources(root, "src/store"):
        text = open(path, encoding="utf-8", errors="replace").read()
        names.update(re.findall(r"CREATE\s+(?:TABLE|VIEW)(?:\s+IF\s+NOT\s+EXISTS)?\s+(zila_\w+)",
                                text))
    return names


def check_tables(root, offences):
    tables = store_tables(root)
    if not tables:
        offences.append("src/store: no CREATE TABLE zila_* found; the check has nothing to guard")
        return
    pat = re.compile(r"\b(" + "|".join(sorted(tables)) + r")\b")
    strings = re.compile(r'"(?:[^"\\\n]|\\.)*"')
    for path in sources(root, "src"):
        if layer_of_src(root, path) == "store":
            continue
        text = strip_comments(open(path, encoding="utf-8", errors="replace").read())
        for i, line in enumerate(text.split("\n"), 1):
            for s in strings.findall(line):
                m = pat.search(s) or re.search(r"\bCREATE\s+\w*\s*(?:TABLE|VIEW)\b.*\b(zila_\w+)", s)
                if m:
                    offences.append(f"{rel(root, path)}:{i}: names the store's table "
                                    f"{m.group(1)}; ask the store (include/zila/store.h)")
            if re.search(r"\bzila_store_db\s*\(", line):
                offences.append(f"{rel(root, path)}:{i}: takes the store's own connection; "
                                f"ask the store (include/zila/store.h)")


def check_sync(root, offences):
    for path in sources(root, "src/sync"):
        text = strip_comments(open(path, encoding="utf-8", errors="replace").read())
        for i, line in enumerate(text.split("\n"), 1):
            m = SYNC_IO_HEADERS.search(line)
            if m:
                offences.append(f"{rel(root, path)}:{i}: sync includes <{m.group(1)}>: "
                                f"the sync layer does no I/O")
            code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', line)
            m = SYNC_IO_CALLS.search(code)
            if m:
                offences.append(f"{rel(root, path)}:{i}: sync calls {m.group(1)}(): "
                                f"the sync layer does no I/O (src/os, or the caller, does it)")
            if re.search(r"(?<![\w])uv_\w+", code):
                offences.append(f"{rel(root, path)}:{i}: sync uses libuv")


def rel(root, path):
    return os.path.relpath(path, root)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    offences = []
    check_includes(root, offences)
    check_tables(root, offences)
    check_sync(root, offences)
    if offences:
        for o in offences:
            print(o)
        print(f"check_layers: {len(offences)} offence(s) against ARCHITECTURE.md's layers")
        return 1
    print("check_layers: the tree keeps its layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
