#!/usr/bin/env bash
# Starts the services of the openstack-lite cloud (set up by setup.sh), all
# on 127.0.0.1. Idempotent: a service whose recorded PID is alive is left
# alone. Each started process is recorded as "name pid" in $BASE/pids, which
# is all stop.sh stops. Then waits for the APIs and both nova-computes, maps
# the hosts into cell1 and seeds flavours, images and a network.
# Usage: start.sh [--infra | --keystone]   (only MariaDB + RabbitMQ / also Keystone)
set -euo pipefail
MODE=all
case "${1:-}" in --infra) MODE=infra ;; --keystone) MODE=keystone ;; esac
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
T0=$SECONDS
B="$VENV/bin"
[ -f "$VENV/.installed" ] || { echo "openstack-lite: not set up; run setup.sh first" >&2; exit 2; }
touch "$PIDS"

# start_bg NAME CMD...: detached, in its own session, output in $LOGS/NAME.out
start_bg() {
    local name=$1
    shift
    alive "$name" && return 0
    setsid "$@" >"$LOGS/$name.out" 2>&1 </dev/null &
    echo "$name $!" >>"$PIDS"
    log "started $name (pid $!)"
}

# start_wsgi NAME PORT MODULE ENV=VALUE...: one gunicorn worker with a few threads
start_wsgi() {
    local name=$1 port=$2 module=$3
    shift 3
    local envs=()
    for e in "$@"; do envs+=(--env "$e"); done
    start_bg "$name" "$B/gunicorn" --bind "$HOST_IP:$port" --workers 1 \
        --worker-class gthread --threads 4 --timeout 300 --graceful-timeout 5 \
        --name "$name" --access-logfile "$LOGS/$name-access.log" \
        --pythonpath "$OS_LITE_DIR" --no-control-socket "${envs[@]}" \
        "wsgi_app:load(\"$module\")"
}

epmd_pid() { ss -ltnpH "sport = :4369" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }

# ------------------------------------------------------------------ infrastructure
start_bg mysqld mariadbd --defaults-file="$MYSQL_CNF"
stray=$(stray_rabbit)
if [ -n "$stray" ] && ! alive rabbitmq; then
    echo "rabbitmq $stray" >>"$PIDS"
    log "adopted rabbitmq (pid $stray), left running by an interrupted start"
fi
if ! alive rabbitmq; then
    (
        rabbit_env
        # epmd is shared by every Erlang node of the machine: it is ours to stop
        # only when this start launched it.
        epmd_before=$(epmd_pid)
        rm -f "$RABBITMQ_PID_FILE"
        setsid rabbitmq-server >"$LOGS/rabbitmq.out" 2>&1 </dev/null &
        for _ in $(seq 1 150); do [ -s "$RABBITMQ_PID_FILE" ] && break; sleep 0.2; done
        [ -s "$RABBITMQ_PID_FILE" ] || { echo "openstack-lite: rabbitmq did not start" >&2; exit 1; }
        echo "rabbitmq $(cat "$RABBITMQ_PID_FILE")" >>"$PIDS"
        rabbitmqctl wait --timeout 120 "$RABBITMQ_PID_FILE" >/dev/null
        log "started rabbitmq (pid $(cat "$RABBITMQ_PID_FILE"))"
        if [ -z "$epmd_before" ] && [ -n "$(epmd_pid)" ]; then echo "epmd $(epmd_pid)" >>"$PIDS"; fi
    )
fi
deadline=$((SECONDS + 60))
until mysql_root -e 'select 1' >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "openstack-lite: MariaDB did not answer" >&2; exit 1; }
    sleep 0.2
done
[ "$MODE" = infra ] && exit 0

# ------------------------------------------------------------------ APIs
start_wsgi keystone "$KEYSTONE_PORT" keystone.wsgi.api \
    "OS_KEYSTONE_CONFIG_FILES=$ETC/keystone/keystone.conf"
wait_http "$KEYSTONE_URL" 120
[ "$MODE" = keystone ] && exit 0

start_wsgi glance-api "$GLANCE_PORT" glance.wsgi.api "OS_GLANCE_CONFIG_DIR=$ETC/glance"
start_wsgi placement-api "$PLACEMENT_PORT" placement.wsgi.api \
    "OS_PLACEMENT_CONFIG_DIR=$ETC/placement"
start_wsgi neutron-api "$NEUTRON_PORT" neutron.wsgi.api \
    "OS_NEUTRON_CONFIG_FILES=$ETC/neutron/neutron.conf"
start_wsgi nova-api "$NOVA_PORT" nova.wsgi.osapi_compute \
    "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf" "OS_NOVA_CONFIG_DIR=$ETC/nova"
NC=(--config-file "$ETC/nova/nova.conf")
start_bg nova-conductor "$B/nova-conductor" "${NC[@]}" --log-file "$LOGS/nova-conductor.log"
start_bg nova-scheduler "$B/nova-scheduler" "${NC[@]}" --log-file "$LOGS/nova-scheduler.log"
for i in $(seq 1 "$N_COMPUTES"); do
    start_bg "nova-compute-$i" "$B/nova-compute" --config-file "$ETC/nova/nova-compute.conf" \
        --config-file "$ETC/nova/compute-$i.conf" --log-file "$LOGS/nova-compute-$i.log"
done
for port in "$GLANCE_PORT" "$PLACEMENT_PORT" "$NEUTRON_PORT" "$NOVA_PORT"; do
    wait_http "http://$HOST_IP:$port/" 180
done

export OS_CLIENT_CONFIG_FILE="$CLOUDS_YAML"
"$B/python" "$OS_LITE_DIR/bootstrap.py" wait-computes --count "$N_COMPUTES"
# The scheduler maps new hosts too (discover_hosts_in_cells_interval): when both
# map one at once, nova-manage fails with "Duplicate host mapping" although the
# host is mapped. Run it again then; any other failure is shown and stops here.
for attempt in 1 2 3 4 5; do
    if "$B/nova-manage" "${NC[@]}" cell_v2 discover_hosts >"$LOGS/discover_hosts.last" 2>&1; then
        break
    fi
    cat "$LOGS/discover_hosts.last" >>"$LOGS/discover_hosts.log"
    if ! grep -q "Duplicate host mapping" "$LOGS/discover_hosts.last" || ((attempt == 5)); then
        echo "openstack-lite: nova-manage cell_v2 discover_hosts failed:" >&2
        tail -5 "$LOGS/discover_hosts.last" >&2
        exit 1
    fi
    sleep 2
done
cat "$LOGS/discover_hosts.last" >>"$LOGS/discover_hosts.log"
"$B/python" "$OS_LITE_DIR/bootstrap.py" seed --count "$N_COMPUTES" --image-dir "$STATE"
log "all services up in $((SECONDS - T0)) s; OS_CLIENT_CONFIG_FILE=$CLOUDS_YAML"
