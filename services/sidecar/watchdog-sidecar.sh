#!/bin/bash
# watchdog-sidecar: readiness and liveness for a server that does not speak sd_notify
# itself (the seed-001 pattern). It starts the server as a child, polls it with curl,
# sends READY=1 once (at the first healthy poll) and WATCHDOG=1 after every healthy poll,
# and nothing while the server is unhealthy, so WatchdogSec= ends a hung server.
#
# Installed as /usr/local/bin/watchdog-sidecar. Unit sketch:
#
#   [Service]
#   Type=notify
#   NotifyAccess=all
#   WatchdogSec=5s
#   ExecStart=/usr/local/bin/watchdog-sidecar --url http://127.0.0.1:8080/healthz -- --listen 0.0.0.0:8080
#
# Why NotifyAccess=all: systemd-notify is a separate process, so its datagrams carry its
# own PID, not the main PID (this script). Under the default NotifyAccess=main (Type=notify)
# systemd drops them ("reception only permitted for main PID"), the unit never becomes
# ready and times out. One exception to measure rather than rely on: systemd-notify tries
# to send with its parent's PID (this script, the main PID), which the kernel only allows
# with CAP_SYS_ADMIN, so a root service may get through under NotifyAccess=main.
#
# Usage: watchdog-sidecar [--url URL] [--interval SECONDS] [--timeout SECONDS]
#                         [--server PATH] [--notify PATH] [--] [SERVER ARGS...]
#   --url       health URL to poll (default http://127.0.0.1:8080/healthz)
#   --interval  seconds between polls, fractions allowed (default WATCHDOG_USEC/2, else 1)
#   --timeout   curl --max-time per poll (default: the interval)
#   --server    server binary (default /usr/local/bin/buggy-server)
#   --notify    systemd-notify binary (default /bin/systemd-notify)
# Exit: the server's exit code; if the server died of a signal, the sidecar re-raises it
# so systemd sees the same signal. Usage errors exit 2.

set -u

log() { echo "watchdog-sidecar: $*" >&2; }
usage_error() { log "$*"; log "usage: watchdog-sidecar [--url URL] [--interval S] [--timeout S] [--server PATH] [--notify PATH] [--] [SERVER ARGS...]"; exit 2; }

url=http://127.0.0.1:8080/healthz
interval=
timeout=
server=/usr/local/bin/buggy-server
notify=/bin/systemd-notify

is_seconds() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

while (($#)); do
    case $1 in
        --url) (($# >= 2)) || usage_error "--url needs a value"; url=$2; shift 2 ;;
        --interval) (($# >= 2)) && is_seconds "$2" || usage_error "--interval needs seconds, e.g. 0.5"; interval=$2; shift 2 ;;
        --timeout) (($# >= 2)) && is_seconds "$2" || usage_error "--timeout needs seconds, e.g. 0.5"; timeout=$2; shift 2 ;;
        --server) (($# >= 2)) || usage_error "--server needs a path"; server=$2; shift 2 ;;
        --notify) (($# >= 2)) || usage_error "--notify needs a path"; notify=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,/^# so systemd sees/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) usage_error "unknown option $1" ;;
        *) break ;;
    esac
done

[[ -x $server ]] || usage_error "server $server is not executable"
command -v curl >/dev/null || usage_error "curl not found"
[[ -x $notify ]] || log "warning: $notify is not executable; READY=1/WATCHDOG=1 cannot be sent"

if [[ -z $interval ]]; then
    if [[ ${WATCHDOG_USEC:-} =~ ^[0-9]+$ ]] && ((WATCHDOG_USEC > 0)); then
        half=$((WATCHDOG_USEC / 2))
        interval=$(printf '%d.%06d' $((half / 1000000)) $((half % 1000000)))
    else
        interval=1
    fi
fi
timeout=${timeout:-$interval}

# The protocol belongs to the sidecar: the server must not see the notify environment,
# or its own READY=1 would race ours (and WATCHDOG_PID names us, not it).
env -u NOTIFY_SOCKET -u WATCHDOG_USEC -u WATCHDOG_PID "$server" "$@" &
child=$!
log "started $server (pid $child); polling $url every ${interval}s, timeout ${timeout}s"

# systemctl stop signals the whole cgroup; these traps also cover a manual kill of the
# sidecar alone, so the server never outlives it.
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP

ready=0
state=unknown
while kill -0 "$child" 2>/dev/null; do
    if curl -fsS -o /dev/null --max-time "$timeout" "$url" 2>/dev/null; then
        if ((ready == 0)); then
            if "$notify" --ready; then log "READY=1 sent"; else log "systemd-notify --ready failed"; fi
            ready=1
        fi
        if "$notify" WATCHDOG=1; then
            [[ $state == healthy ]] || log "healthy: WATCHDOG=1 sent"
        else
            log "systemd-notify WATCHDOG=1 failed"
        fi
        state=healthy
    else
        [[ $state == unhealthy ]] || log "unhealthy ($url): WATCHDOG=1 withheld"
        state=unhealthy
    fi
    # Sleep in the background so a trapped signal is handled at once, not after it.
    sleep "$interval" &
    wait $! 2>/dev/null
done

wait "$child"
rc=$?
if ((rc > 128)) && kill -l $((rc - 128)) >/dev/null 2>&1; then
    sig=$(kill -l $((rc - 128)))
    log "server died of SIG$sig; re-raising it"
    trap - "$sig" 2>/dev/null
    kill -s "$sig" $$
fi
log "server exited with code $rc"
exit "$rc"
