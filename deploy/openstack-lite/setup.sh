#!/usr/bin/env bash
# Installs and initialises a small real OpenStack on 127.0.0.1 for the
# OpenStack test tier, then starts it (start.sh): Keystone, Glance, Placement,
# the Neutron API (ML2, no agents), Nova with the fake virt driver on two
# compute hosts (fake-1, fake-2), and its own MariaDB and RabbitMQ.
#
# Idempotent: every step checks what is already there, so it can run on a
# fresh machine and again on a set-up one. Needs root (apt-get, and MariaDB and
# RabbitMQ run as their Debian users). NO_START=1 skips the start.
# Usage: deploy/openstack-lite/setup.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
T0=$SECONDS
[ "$(id -u)" = 0 ] || { echo "openstack-lite: setup.sh needs root" >&2; exit 2; }
mkdir -p "$ETC" "$LOGS" "$RUN" "$STATE"

# Set up before by these same scripts: only start (re-checking every step costs ~40 s).
SETUP_MARK="$(cat "$OS_LITE_DIR"/*.sh "$OS_LITE_DIR"/*.py "$OS_LITE_DIR"/*.txt \
    "$OS_LITE_DIR"/loopback_ml2/loopback_ml2.py "$OS_LITE_DIR"/loopback_ml2/pyproject.toml |
    sha256sum)"
if [ "$(cat "$BASE/.set-up" 2>/dev/null)" = "$SETUP_MARK" ] && [ -d "$BASE/mysql/mysql" ] &&
    [ -f "$VENV/.installed" ] && [ -f "$CLOUDS_YAML" ]; then
    [ "${NO_START:-0}" = 1 ] || exec "$OS_LITE_DIR/start.sh"
    exit 0
fi
rm -f "$BASE/.set-up"

# ------------------------------------------------------------------ packages
missing=()
command -v mariadbd >/dev/null || missing+=(mariadb-server mariadb-client)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    # The Debian packages would start machine-wide services: keep them off (this
    # cloud runs its own instances under $BASE), unless a policy is already set.
    ours_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        ours_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$LOGS/apt.log" 2>&1 || { tail -20 "$LOGS/apt.log" >&2; exit 1; }
    if [ "$ours_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

# The services' venv, pinned by constraints.txt; redone when the pins change.
MARK="$(cat "$OS_LITE_DIR/constraints.txt" "$OS_LITE_DIR/requirements.txt" \
    "$OS_LITE_DIR"/loopback_ml2/loopback_ml2.py "$OS_LITE_DIR"/loopback_ml2/pyproject.toml |
    sha256sum)"
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$MARK" ]; then
    log "pip install the OpenStack services into $VENV (a minute or two)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    {
        "$VENV/bin/pip" install -q --disable-pip-version-check -c "$OS_LITE_DIR/constraints.txt" \
            -r "$OS_LITE_DIR/requirements.txt"
        # built from a copy: pip leaves build files beside the sources
        rm -rf "$BASE/build" && mkdir -p "$BASE/build"
        cp -r "$OS_LITE_DIR/loopback_ml2" "$BASE/build/"
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$BASE/build/loopback_ml2"
    } >"$LOGS/pip.log" 2>&1 || { tail -20 "$LOGS/pip.log" >&2; exit 1; }
    echo "$MARK" >"$VENV/.installed"
fi
B="$VENV/bin"

# ------------------------------------------------------------------ configs
mkdir -p "$ETC"/{mysql,rabbitmq,keystone,glance,placement,nova,neutron}
cat >"$MYSQL_CNF" <<EOF
[mysqld]
user=mysql
datadir=$BASE/mysql
socket=$RUN/mysqld.sock
pid-file=$RUN/mysqld.pid
bind-address=$HOST_IP
port=$DB_PORT
log-error=$LOGS/mysqld.log
skip-name-resolve
innodb_buffer_pool_size=128M
innodb_flush_log_at_trx_commit=0
innodb_doublewrite=0
sync_binlog=0
max_connections=1000
performance_schema=off
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
[client]
socket=$RUN/mysqld.sock
EOF

cat >"$ETC/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = $HOST_IP:$RABBIT_PORT
loopback_users = none
EOF
echo '[].' >"$ETC/rabbitmq/enabled_plugins"

# keystonemiddleware of a service: validates the tokens it is given.
authtoken() {
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://$HOST_IP:$KEYSTONE_PORT/
auth_url = http://$HOST_IP:$KEYSTONE_PORT/
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $PASS
service_token_roles_required = true
EOF
}
# How a service calls another one: SECTION USER.
client_auth() {
    cat <<EOF
[$1]
auth_type = password
auth_url = http://$HOST_IP:$KEYSTONE_PORT/
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $PASS
region_name = RegionOne
EOF
}

cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOGS/keystone.log
[database]
connection = $DB_URL/keystone
[token]
provider = fernet
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
[cache]
enabled = false
EOF

cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
log_file = $LOGS/glance-api.log
enabled_backends = fs:file
bind_host = $HOST_IP
bind_port = $GLANCE_PORT
worker_self_reference_url = http://$HOST_IP:$GLANCE_PORT
[database]
connection = $DB_URL/glance
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $STATE/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $STATE/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $STATE/glance/tasks
[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $STATE/glance/lock
$(authtoken glance)
EOF

cat >"$ETC/placement/placement.conf" <<EOF
[DEFAULT]
log_file = $LOGS/placement-api.log
[api]
auth_strategy = keystone
[placement_database]
connection = $DB_URL/placement
$(authtoken placement)
EOF

cp "$VENV/etc/nova/api-paste.ini" "$ETC/nova/"
cat >"$ETC/nova/nova.conf" <<EOF
[DEFAULT]
compute_driver = fake.FakeDriverWithoutFakeNodes
transport_url = $TRANSPORT_URL
state_path = $STATE/nova
instances_path = $STATE/nova/instances
my_ip = $HOST_IP
enabled_apis = osapi_compute
osapi_compute_workers = 1
heal_instance_info_cache_interval = -1
graceful_shutdown_timeout = 5
# a nova-compute that stops reporting shows down within 30 s (Nova's default: 60 s)
report_interval = 5
service_down_time = 30
[compute]
# Neutron here has no agent to report a port plugged on the destination host:
# a live migration must not wait for that event.
live_migration_wait_for_vif_plug = false
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api]
auth_strategy = keystone
[api_database]
connection = $DB_URL/nova_api
[database]
connection = $DB_URL/nova_cell1
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 10
[filter_scheduler]
# the defaults plus the hints a VIM driver sends (different_host, same_host)
enabled_filters = ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,DifferentHostFilter,SameHostFilter
[oslo_concurrency]
lock_path = $STATE/nova/lock
[oslo_messaging_notifications]
driver = noop
[glance]
region_name = RegionOne
[cinder]
os_region_name = RegionOne
$(authtoken nova)
$(client_auth placement nova)
$(client_auth neutron nova)
$(client_auth service_user nova)
send_service_user_token = true
EOF
# The computes get no database credentials: they go through the conductor.
awk '/^\[/ {skip = ($0 == "[database]" || $0 == "[api_database]")} !skip' \
    "$ETC/nova/nova.conf" >"$ETC/nova/nova-compute.conf"
for i in $(seq 1 "$N_COMPUTES"); do
    mkdir -p "$STATE/nova-compute-$i"
    cat >"$ETC/nova/compute-$i.conf" <<EOF
[DEFAULT]
host = fake-$i
state_path = $STATE/nova-compute-$i
instances_path = $STATE/nova-compute-$i/instances
EOF
done

cp "$VENV/etc/neutron/api-paste.ini" "$ETC/neutron/"
cat >"$ETC/neutron/neutron.conf" <<EOF
[DEFAULT]
log_file = $LOGS/neutron-api.log
core_plugin = ml2
service_plugins = router,port_forwarding
auth_strategy = keystone
transport_url = $TRANSPORT_URL
bind_host = $HOST_IP
bind_port = $NEUTRON_PORT
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
dhcp_agent_notification = false
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
api_paste_config = $ETC/neutron/api-paste.ini
state_path = $STATE/neutron
[database]
connection = $DB_URL/neutron
[oslo_concurrency]
lock_path = $STATE/neutron/lock
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
# binds every port on any host, with no agent (see loopback_ml2/)
mechanism_drivers = loopback
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[ml2_type_vxlan]
vni_ranges = 1000:1999
$(authtoken neutron)
EOF

# ------------------------------------------------------------------ data
mkdir -p "$STATE"/{glance/images,glance/staging,glance/tasks,nova,neutron} \
    "$STATE/keystone/fernet-keys" "$STATE/keystone/credential-keys" \
    "$BASE/rabbitmq/mnesia" "$LOGS/rabbitmq"
if [ ! -d "$BASE/mysql/mysql" ]; then
    log "mariadb-install-db"
    mkdir -p "$BASE/mysql" && chown mysql:mysql "$BASE/mysql"
    mariadb-install-db --defaults-file="$MYSQL_CNF" --auth-root-authentication-method=normal \
        --skip-test-db >"$LOGS/mysql-install.log" 2>&1
fi
chown -R mysql:mysql "$BASE/mysql"
chown -R rabbitmq:rabbitmq "$BASE/rabbitmq" "$LOGS/rabbitmq" "$ETC/rabbitmq"
chmod 755 "$BASE" "$ETC" "$RUN" "$LOGS"
chown mysql "$RUN"

"$OS_LITE_DIR/start.sh" --infra
log "databases and schemas"
mysql_root <<EOF
CREATE USER IF NOT EXISTS '$DB_USER'@'$HOST_IP' IDENTIFIED BY '$PASS';
CREATE DATABASE IF NOT EXISTS keystone;
CREATE DATABASE IF NOT EXISTS glance;
CREATE DATABASE IF NOT EXISTS placement;
CREATE DATABASE IF NOT EXISTS nova_api;
CREATE DATABASE IF NOT EXISTS nova_cell0;
CREATE DATABASE IF NOT EXISTS nova_cell1;
CREATE DATABASE IF NOT EXISTS neutron;
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'$HOST_IP';
FLUSH PRIVILEGES;
EOF
(
    rabbit_env
    rabbitmqctl add_user "$DB_USER" "$PASS" >/dev/null 2>&1 || true
    rabbitmqctl set_permissions -p / "$DB_USER" '.*' '.*' '.*' >/dev/null
)

KC=(--config-file "$ETC/keystone/keystone.conf")
NC=(--config-file "$ETC/nova/nova.conf")
{
    "$B/keystone-manage" "${KC[@]}" db_sync
    [ -f "$STATE/keystone/fernet-keys/0" ] ||
        "$B/keystone-manage" "${KC[@]}" fernet_setup --keystone-user root --keystone-group root
    [ -f "$STATE/keystone/credential-keys/0" ] ||
        "$B/keystone-manage" "${KC[@]}" credential_setup --keystone-user root --keystone-group root
    "$B/keystone-manage" "${KC[@]}" bootstrap --bootstrap-password "$PASS" \
        --bootstrap-admin-url "$KEYSTONE_URL" --bootstrap-internal-url "$KEYSTONE_URL" \
        --bootstrap-public-url "$KEYSTONE_URL" --bootstrap-region-id RegionOne
    "$B/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync
    "$B/placement-manage" --config-file "$ETC/placement/placement.conf" db sync
    "$B/nova-manage" "${NC[@]}" api_db sync
    "$B/nova-manage" "${NC[@]}" cell_v2 map_cell0 --database_connection "$DB_URL/nova_cell0"
    "$B/nova-manage" "${NC[@]}" cell_v2 list_cells | grep -q ' cell1 ' ||
        "$B/nova-manage" "${NC[@]}" cell_v2 create_cell --name cell1
    "$B/nova-manage" "${NC[@]}" db sync
    "$B/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf" upgrade heads
} >>"$LOGS/setup-db.log" 2>&1 || { tail -30 "$LOGS/setup-db.log" >&2; exit 1; }

"$OS_LITE_DIR/start.sh" --keystone
log "keystone catalogue, users, clouds.yaml"
OS_LITE_PASSWORD="$PASS" "$B/python" "$OS_LITE_DIR/bootstrap.py" catalogue \
    --keystone "$KEYSTONE_URL" --clouds-yaml "$CLOUDS_YAML" \
    --endpoint "image=http://$HOST_IP:$GLANCE_PORT" \
    --endpoint "placement=http://$HOST_IP:$PLACEMENT_PORT" \
    --endpoint "network=http://$HOST_IP:$NEUTRON_PORT" \
    --endpoint "compute=http://$HOST_IP:$NOVA_PORT/v2.1"
echo "$SETUP_MARK" >"$BASE/.set-up"
log "set up in $((SECONDS - T0)) s"

[ "${NO_START:-0}" = 1 ] || "$OS_LITE_DIR/start.sh"
