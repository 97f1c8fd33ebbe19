#!/bin/sh
# uid.sh UID: succeeds when it runs as user id UID.
[ "$(id -u)" = "$1" ]
