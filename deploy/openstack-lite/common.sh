# Settings shared by the openstack-lite scripts (sourced, never run).
# shellcheck shell=bash
#
# Everything lives under OS_LITE_BASE (default /var/tmp/nfv-assure-openstack):
# the services' venv, configs, databases, logs and the PIDs of what start.sh
# started. It is kept between runs, so a second run reuses the installed venv
# and the initialised databases.

OS_LITE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE="${OS_LITE_BASE:-/var/tmp/nfv-assure-openstack}"
mkdir -p "$BASE"
BASE="$(cd "$BASE" && pwd)"
VENV="$BASE/venv"
ETC="$BASE/etc"
LOGS="$BASE/logs"
RUN="$BASE/run"
STATE="$BASE/state"
PIDS="$BASE/pids"
CLOUDS_YAML="$BASE/clouds.yaml"

# Fake nova-compute services, one per host name fake-1 .. fake-N.
N_COMPUTES=2

PASS="${OS_LITE_PASSWORD:-secret}"
HOST_IP=127.0.0.1
# Ports away from the usual ones, so the cloud runs beside a MariaDB on 3306,
# a RabbitMQ on 5672 or an OpenStack on 5000 that the machine may already have.
DB_PORT=13306
RABBIT_PORT=15673
RABBIT_DIST_PORT=25673
KEYSTONE_PORT=15000
GLANCE_PORT=19292
PLACEMENT_PORT=18778
NEUTRON_PORT=19696
NOVA_PORT=18774
KEYSTONE_URL="http://$HOST_IP:$KEYSTONE_PORT/v3"

DB_USER=os
DB_URL="mysql+pymysql://$DB_USER:$PASS@$HOST_IP:$DB_PORT"
TRANSPORT_URL="rabbit://$DB_USER:$PASS@$HOST_IP:$RABBIT_PORT/"
MYSQL_CNF="$ETC/mysql/my.cnf"

log() { echo "[openstack-lite $(date +%H:%M:%S)] $*"; }

# The RabbitMQ node of this cloud: its own name, ports and files; epmd (4369)
# is the machine's, shared with any other Erlang node.
rabbit_env() {
    export RABBITMQ_NODENAME=nfvaos@localhost
    export RABBITMQ_NODE_IP_ADDRESS=$HOST_IP
    export RABBITMQ_NODE_PORT=$RABBIT_PORT
    export RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT
    export RABBITMQ_MNESIA_BASE="$BASE/rabbitmq/mnesia"
    export RABBITMQ_LOG_BASE="$LOGS/rabbitmq"
    export RABBITMQ_CONFIG_FILE="$ETC/rabbitmq/rabbitmq.conf"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$ETC/rabbitmq/enabled_plugins"
    export RABBITMQ_PID_FILE="$BASE/rabbitmq/rabbit.pid"
    export ERL_EPMD_ADDRESS=$HOST_IP
    export ERL_EPMD_PORT=4369
    # a small Erlang VM for a 2-core machine, distribution on loopback only
    export RABBITMQ_SERVER_ERL_ARGS="+S 2:2 +A 8 +P 65536"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="+S 1:1"
    export HOME="$BASE/rabbitmq"
}

mysql_root() { mariadb --defaults-file="$MYSQL_CNF" -uroot "$@"; }

# wait_http URL SECONDS: until anything answers HTTP at URL.
wait_http() {
    local url=$1 deadline=$((SECONDS + ${2:-60}))
    until curl -s -o /dev/null "$url"; do
        if ((SECONDS >= deadline)); then
            echo "openstack-lite: nothing answered at $url within ${2:-60} s" >&2
            return 1
        fi
        sleep 0.2
    done
}

pid_of() { awk -v n="$1" '$1 == n {p = $2} END {print p}' "$PIDS" 2>/dev/null; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# stray_rabbit: the PID of this cloud's RabbitMQ node when it runs but $PIDS does not
# record it: a start interrupted between launching it (in a session of its own, which
# no process-group signal reaches) and recording it. Empty otherwise.
stray_rabbit() {
    local file="$BASE/rabbitmq/rabbit.pid" p
    [ -s "$file" ] || return 0
    p=$(cat "$file")
    [ "$p" != "$(pid_of rabbitmq)" ] || return 0
    # the pid file's process, if it is still this node (a PID is reused once it exits)
    kill -0 "$p" 2>/dev/null && tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null |
        grep -qx -- "RABBITMQ_PID_FILE=$file" && echo "$p"
    return 0
}
