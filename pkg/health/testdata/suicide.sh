#!/bin/sh
# suicide.sh: dies of SIGKILL.
kill -9 $$
