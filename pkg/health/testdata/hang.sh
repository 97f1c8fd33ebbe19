#!/bin/sh
# hang.sh PIDFILE: starts a child that would outlive a plain kill of this
# shell, writes its pid to PIDFILE, and waits.
sleep 30 &
echo $! > "$1"
wait
