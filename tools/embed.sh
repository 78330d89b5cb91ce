#!/bin/sh
# Prints a C file defining `const char NAME[]` with the contents of FILE.
# usage: tools/embed.sh NAME FILE
set -eu
printf '/* Generated from %s by tools/embed.sh; do not edit. */\n' "$2"
printf 'extern const char %s[];\nconst char %s[] =\n' "$1" "$1"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/\t"/' -e 's/$/\\n"/' "$2"
printf ';\n'
