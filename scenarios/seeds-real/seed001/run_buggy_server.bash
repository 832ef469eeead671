#!/bin/bash
# Seed 001's run script, written for the lab from the seed's description: start the Python
# server, then be its watchdog: curl it, and while it answers tell systemd with
# systemd-notify (`--ready` once, then `WATCHDOG=1`). When the server hangs, curl times out,
# the pings stop and systemd's WatchdogSec= fires.
/usr/bin/python3 /opt/seed001/buggy_server.py --port 8080 --hang-probability 0.25 --seed 2 &

# Half the watchdog interval systemd gives us (WatchdogSec=5 -> 2.5 s), as the seed's design
# implies; curl gets the same as its limit.
interval=$(awk -v usec="${WATCHDOG_USEC:-5000000}" 'BEGIN { printf "%.1f", usec / 2000000 }')
ready=0
while true; do
    if curl -fsS --max-time "$interval" -o /dev/null http://127.0.0.1:8080/; then
        if [ "$ready" = 0 ]; then
            /bin/systemd-notify --ready
            echo "watchdog: server answers, told systemd READY=1"
            ready=1
        fi
        /bin/systemd-notify WATCHDOG=1
        echo "watchdog: server answers, sent WATCHDOG=1"
    else
        echo "watchdog: no answer within ${interval}s, no WATCHDOG=1"
    fi
    sleep "$interval"
done
