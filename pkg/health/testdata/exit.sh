#!/bin/sh
# exit.sh CODE: exits with CODE.
exit "$1"
