# shellcheck shell=bash
# Starts moto_keepalive.py (moto's WSGI application on waitress: connections kept open, as
# AWS does) in the background; sourced by bench/sqs/run.sh and bench/curves/run.sh.
#
#   source bench/sqs/moto_keepalive.sh
#   moto_keepalive_start <port> <log>   # sets moto_keepalive_pid and moto_keepalive_url
#
# Its venv (moto[server] and waitress) is $BENCH_SQS_VENV, default
# ${TOMODACHI_RS_CACHE:-~/.cache/tomodachi-rs}/venv-bench-moto, created when missing.
# Fails when something already listens on the port or the server does not come up in 20 s.
moto_keepalive_venv=${BENCH_SQS_VENV:-${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}/venv-bench-moto}

moto_keepalive_start() {
  local port=$1 log=$2 here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  moto_keepalive_url=http://127.0.0.1:$port
  if ! "$moto_keepalive_venv/bin/python" -c 'import moto.server, waitress' 2>/dev/null; then
    python3 -m venv "$moto_keepalive_venv"
    nice -n 19 "$moto_keepalive_venv/bin/pip" install -q "moto[server]" waitress
  fi
  if curl -s -o /dev/null --max-time 2 "$moto_keepalive_url/"; then
    echo "something already listens on $moto_keepalive_url" >&2
    return 1
  fi
  "$moto_keepalive_venv/bin/python" "$here/moto_keepalive.py" 127.0.0.1 "$port" >"$log" 2>&1 &
  moto_keepalive_pid=$!
  local _
  for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$moto_keepalive_url/__bench/counts" && return 0
    kill -0 "$moto_keepalive_pid" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.2
  done
  echo "moto on $moto_keepalive_url did not come up (log: $log)" >&2
  return 1
}
