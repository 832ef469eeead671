#!/bin/sh
# Copied into the target with its mode (0755) by `[[files]] source`.
. /usr/local/lib/own-web/check.conf
echo "own-web pre-start check: $CHECK_MESSAGE"
