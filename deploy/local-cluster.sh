#!/usr/bin/env bash
# A real multi-node hwnas on one machine, on loopback: a Ray head and a second Ray node (two `ray start`
# processes with their own CPUs and memory), a PostgreSQL database of its own on the local server, two
# `hwnas worker` processes and one API process, the same settings a cluster deployment uses.
#
#   deploy/local-cluster.sh up              start everything; prints the API URL (state in $HWNAS_CLUSTER_DIR)
#   deploy/local-cluster.sh smoke           submit a job over HTTP, wait for it, show which nodes evaluated it
#   deploy/local-cluster.sh kill COMPONENT  SIGKILL one component and all its processes
#                                           (ray-head, ray-node, worker1, worker2, api)
#   deploy/local-cluster.sh status          which components are alive
#   deploy/local-cluster.sh down            stop everything, drop the database, check nothing is left
#
# Every component runs in its own process group (setsid), so `kill` and `down` reach its children too
# (Ray's raylet, GCS and task workers; nothing Ray starts leaves the group). Settings, all optional:
#   HWNAS_CLUSTER_DIR      state and logs (default /tmp/hwnas-cluster)
#   HWNAS_TEST_POSTGRES_URL the server to create the cluster's database on
#                          (default postgresql+psycopg://postgres@127.0.0.1:5432/test)
#   HWNAS_LEASE_SECONDS    how soon a dead worker's job is taken over (default 8 here)
#   RAY_AUTH_MODE          the same for every Ray process and driver (default disabled: loopback only)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${HWNAS_BIN:-$ROOT/.venv/bin}"
PY="$BIN/python"
STATE="${HWNAS_CLUSTER_DIR:-/tmp/hwnas-cluster}"
PG_URL="${HWNAS_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
COMPONENTS=(api worker1 worker2 ray-node ray-head)

die() { echo "local-cluster: $*" >&2; exit 1; }
# N distinct free ports, chosen while all N are held (separate calls could return the same one)
free_ports() {
  "$PY" -c 'import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))' "$1"
}
pgid_of() { [ -f "$STATE/$1.pid" ] && cat "$STATE/$1.pid"; }
group_alive() { [ -n "$1" ] && ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ {found = 1} END {exit !found}'; }

# start NAME CMD...: CMD in a new session (its pid is its process group), output to $STATE/NAME.log
start() {
  local name="$1"; shift
  setsid "$@" >"$STATE/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/$name.pid"
}

wait_for() {  # wait_for SECONDS WHAT CMD...: retry CMD until it succeeds
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what not up after ${seconds}s (logs in $STATE)"
    sleep 0.5
  done
}

pg_admin() {  # pg_admin SQL: run one statement on the server's maintenance connection (autocommit)
  "$PY" - "$PG_URL" "$1" <<'EOF'
import sys
import psycopg
from sqlalchemy.engine import make_url
u = make_url(sys.argv[1])
with psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                     password=u.password, dbname=u.database or "postgres", autocommit=True) as conn:
    conn.execute(sys.argv[2])
EOF
}

cmd_up() {
  [ -x "$PY" ] || die "no virtualenv at $BIN: run 'make install' first"
  if [ -f "$STATE/env" ]; then die "a cluster is already up in $STATE ('$0 down' first)"; fi
  mkdir -p "$STATE"
  local db="hwnas_cluster_$(date +%s)_$$"
  pg_admin "CREATE DATABASE $db" >/dev/null || die "cannot create database $db on $PG_URL"
  echo "DATABASE=$db" >"$STATE/env"
  # a failed start leaves nothing behind either
  trap 'echo "local-cluster: up failed; the logs, then stopping what started" >&2; show_logs >&2; cmd_down >&2' EXIT
  local url
  url="$("$PY" -c 'import sys; from sqlalchemy.engine import make_url; print(make_url(sys.argv[1]).set(database=sys.argv[2]).render_as_string(hide_password=False))' "$PG_URL" "$db")"
  local ray_port client_port api_port
  read -r ray_port client_port api_port <<<"$(free_ports 3)"
  # Ray's sockets live under its temp dir, and a Unix socket path has at most 107 bytes: keep it short
  local ray_temp="/tmp/hwr-$$-$RANDOM"
  cat >>"$STATE/env" <<EOF
HWNAS_DATABASE_URL=$url
HWNAS_RAY_ADDRESS=ray://127.0.0.1:$client_port
RAY_GCS=127.0.0.1:$ray_port
API_URL=http://127.0.0.1:$api_port
RAY_TEMP=$ray_temp
EOF
  # ray: each node its own CPU and memory (two nodes on one host would each claim the whole machine's)
  local node=(--node-ip-address 127.0.0.1 --num-cpus 1 --memory $((768 * 1024 * 1024))
              --object-store-memory $((100 * 1024 * 1024)) --block)
  # the drivers (workers, API) attach through the Ray Client server, as from outside a real cluster
  start ray-head "$BIN/ray" start --head --port "$ray_port" --ray-client-server-port "$client_port" \
    --include-dashboard=false --temp-dir "$ray_temp" "${node[@]}"
  wait_for 60 "the Ray head" "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $ray_port), 1)"
  start ray-node "$BIN/ray" start --address "127.0.0.1:$ray_port" "${node[@]}"
  # the schema once, before any worker or API process starts
  HWNAS_DATABASE_URL="$url" "$BIN/hwnas" db upgrade >"$STATE/migrate.log" 2>&1 || die "migration failed: $(cat "$STATE/migrate.log")"
  local common=(env HWNAS_DATABASE_URL="$url" HWNAS_RAY_ADDRESS="ray://127.0.0.1:$client_port"
                HWNAS_LEASE_SECONDS="${HWNAS_LEASE_SECONDS:-8}" HWNAS_HEARTBEAT_SECONDS="${HWNAS_HEARTBEAT_SECONDS:-2}"
                HWNAS_POLL_SECONDS=0.5)
  start worker1 "${common[@]}" "$BIN/hwnas" worker --name cluster-worker1
  start worker2 "${common[@]}" "$BIN/hwnas" worker --name cluster-worker2
  start api "${common[@]}" "$BIN/hwnas" serve --no-worker --host 127.0.0.1 --port "$api_port" --log-level warning
  wait_for 90 "the API" "$PY" -c "import json, urllib.request as u; r = json.load(u.urlopen('http://127.0.0.1:$api_port/readyz', timeout=5)); assert r['status'] == 'ok', r"
  # both nodes up; each node's id goes into the state file (trials name the node that evaluated them). The
  # script is passed with -c: a heredoc on stdin would be read by the first try only, and a retry would run
  # an empty script and "succeed"
  local nodes_py='import logging, sys
import ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
alive = [n for n in ray.nodes() if n["Alive"]]
ray.shutdown()
if len(alive) != 2:
    sys.exit(1)
with open(sys.argv[2], "a") as env:
    for n in alive:
        role = "HEAD" if "node:__internal_head__" in n["Resources"] else "NODE"
        env.write("RAY_" + role + "_ID=" + n["NodeID"] + "\n")'
  wait_for 60 "the second Ray node" "$PY" -c "$nodes_py" "127.0.0.1:$ray_port" "$STATE/env"
  trap - EXIT
  echo "local-cluster: up: API http://127.0.0.1:$api_port, Ray ray://127.0.0.1:$client_port (2 nodes), database $db," \
    "2 workers"
  echo "local-cluster: state and logs in $STATE"
}

show_logs() {
  local f
  for f in "$STATE"/*.log; do
    [ -f "$f" ] && { echo "--- $f (last 30 lines)"; tail -n 30 "$f"; }
  done
  return 0
}

cmd_status() {
  [ -f "$STATE/env" ] || { echo "local-cluster: not up"; return 0; }
  cat "$STATE/env"
  for c in "${COMPONENTS[@]}"; do
    if group_alive "$(pgid_of "$c" || true)"; then echo "$c: alive"; else echo "$c: dead"; fi
  done
}

cmd_kill() {
  local c="${1:-}"
  [[ " ${COMPONENTS[*]} " == *" $c "* ]] || die "kill: COMPONENT is one of ${COMPONENTS[*]}"
  local g; g="$(pgid_of "$c")" || die "kill: $c was never started"
  kill -KILL -- "-$g" 2>/dev/null || true
  echo "local-cluster: killed $c (process group $g)"
}

cmd_smoke() {
  [ -f "$STATE/env" ] || die "not up ('$0 up' first)"
  # shellcheck disable=SC1091
  . "$STATE/env"
  "$PY" - "$API_URL" <<'EOF'
import collections, json, sys, time, urllib.request as u
api = sys.argv[1]
def call(method, path, body=None):
    req = u.Request(api + path, method=method, data=json.dumps(body).encode() if body else None,
                    headers={"Content-Type": "application/json"})
    return json.load(u.urlopen(req, timeout=30))
job = call("POST", "/api/v1/jobs", {"name": "local-cluster smoke", "space": "mobilenetv2-cifar",
            "objectives": [{"metric": "proxy:synflow", "direction": "maximize"},
                           {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"}],
            "budget": {"trials": 24}, "workers": 2})
while (state := call("GET", f"/api/v1/jobs/{job['id']}"))["status"] in ("queued", "running"):
    time.sleep(1)
trials = call("GET", f"/api/v1/jobs/{job['id']}/trials?limit=1000")["data"]
print(f"job {job['id']}: {state['status']}, {len(trials)} trials; evaluated per Ray node:",
      dict(collections.Counter(t["node"] for t in trials)))
sys.exit(0 if state["status"] == "succeeded" else 1)
EOF
}

cmd_down() {
  [ -d "$STATE" ] || { echo "local-cluster: nothing to stop"; return 0; }
  local groups=() c g
  for c in "${COMPONENTS[@]}"; do
    g="$(pgid_of "$c" || true)"; [ -n "$g" ] && groups+=("$g") && kill -TERM -- "-$g" 2>/dev/null || true
  done
  local deadline=$((SECONDS + 10)) left
  while :; do
    left=()
    for g in "${groups[@]}"; do group_alive "$g" && left+=("$g"); done
    [ ${#left[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      for g in "${left[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
      sleep 1
      left=(); for g in "${groups[@]}"; do group_alive "$g" && left+=("$g"); done
      [ ${#left[@]} -eq 0 ] || die "processes left in groups ${left[*]}"
      break
    fi
    sleep 0.5
  done
  local temp=""
  [ -f "$STATE/env" ] && temp="$(sed -n 's/^RAY_TEMP=//p' "$STATE/env")"
  if [[ "$temp" == /tmp/hwr-* ]]; then  # any Ray process outside the groups (none seen so far) goes too
    local strays; strays="$(pgrep -f -- "$temp" || true)"
    if [ -n "$strays" ]; then
      echo "local-cluster: stopping Ray processes outside the recorded groups: $strays" >&2
      kill -KILL $strays 2>/dev/null || true
    fi
  fi
  if [ -f "$STATE/env" ]; then
    local db; db="$(sed -n 's/^DATABASE=//p' "$STATE/env")"
    [ -n "$db" ] && { pg_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" || echo "local-cluster: could not drop $db" >&2; }
  fi
  [[ "$temp" == /tmp/hwr-* ]] && rm -rf "$temp"
  rm -rf "$STATE"
  echo "local-cluster: down (no process left, database dropped)"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  smoke) cmd_smoke ;;
  kill) shift; cmd_kill "$@" ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
