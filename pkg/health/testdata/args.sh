#!/bin/sh
# args.sh FILE ARG...: writes each ARG to FILE, one a line.
out=$1
shift
printf '%s\n' "$@" > "$out"
