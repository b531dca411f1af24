#!/usr/bin/env bash
# Stops what start.sh started: every process recorded in $BASE/pids, by PID
# (the OpenStack services together, then RabbitMQ, the epmd it may have
# started, and MariaDB), TERM first and KILL after a grace period. Nothing
# else on the machine is touched. ONLY=name,name stops just those.
# Usage: stop.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# A RabbitMQ node a start launched but was interrupted before recording is stopped too.
stray=$(stray_rabbit)
[ -z "$stray" ] || [ -n "${ONLY:-}" ] || echo "rabbitmq $stray" >>"$PIDS"
[ -s "$PIDS" ] || exit 0

# stop_all GRACE NAME:PID...
stop_all() {
    local grace=$1 np
    shift
    for np in "$@"; do kill -TERM "${np#*:}" 2>/dev/null; done
    local deadline=$((SECONDS + grace))
    while ((SECONDS < deadline)); do
        local left=0
        for np in "$@"; do kill -0 "${np#*:}" 2>/dev/null && left=1; done
        ((left)) || break
        sleep 0.2
    done
    for np in "$@"; do
        if kill -0 "${np#*:}" 2>/dev/null; then
            kill -KILL "${np#*:}" 2>/dev/null
            log "killed ${np%%:*} (pid ${np#*:})"
        else
            log "stopped ${np%%:*} (pid ${np#*:})"
        fi
    done
}

services=() rabbitmq=() epmd=() mysqld=() kept=()
while read -r name pid; do
    [ -n "$name" ] || continue
    if [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$name,"* ]]; then
        kept+=("$name $pid")
        continue
    fi
    kill -0 "$pid" 2>/dev/null || continue
    case $name in
        rabbitmq) rabbitmq+=("$name:$pid") ;;
        epmd) epmd+=("$name:$pid") ;;
        mysqld) mysqld+=("$name:$pid") ;;
        *) services+=("$name:$pid") ;;
    esac
done <"$PIDS"
((${#services[@]})) && stop_all 15 "${services[@]}"
((${#rabbitmq[@]})) && stop_all 30 "${rabbitmq[@]}"
((${#epmd[@]})) && stop_all 5 "${epmd[@]}"
((${#mysqld[@]})) && stop_all 30 "${mysqld[@]}"
if ((${#kept[@]})); then printf '%s\n' "${kept[@]}" >"$PIDS"; else : >"$PIDS"; fi
