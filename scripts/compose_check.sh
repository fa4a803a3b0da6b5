#!/usr/bin/env bash
# Check the cluster files on a real container engine, end to end: build the image through
# docker-compose.yml, start PostgreSQL, the Ray head, two Ray workers and the dashboard, run a
# small search through the compose `search` service, kill one worker while it trains, and check
# from this host that
#   - the search exited 0,
#   - every trial the search started is in the compose PostgreSQL, none left running, and as
#     many searched candidates trained as --trials asked for,
#   - a trial failed with the killed worker's error, and its retry (retry_of) trained,
#   - the dashboard answers, and lists the study; no Ray object store fell back to disk.
# Everything it starts (containers, network, volumes) is removed on exit, whatever happens.
#
#   scripts/compose_check.sh
#
# Needs a running Docker engine, docker-compose (v1, or `COMPOSE="docker compose"` for v2), and
# python with `nas` installed (PYTHON, default python3), which reads the study. It runs under its
# own compose project name, on free ports of 127.0.0.1, so it leaves a cluster of yours alone.
# Settings, from the environment:
#   NAS_BASE_IMAGE, NAS_TORCH_INDEX_URL, NAS_BUILD_NETWORK   build arguments (.env.example)
#   POSTGRES_VERSION                                          PostgreSQL image tag (default 17)
#   CHECK_SEARCH_ARGS    the search's flags (default: 5 searched candidates of one epoch, as many
#                        as the cluster's CPUs, without the zoo baselines, whose number grows
#                        with the zoo)
#   CHECK_TIMEOUT_S      longest wait for the search to finish (default 3600)
#   CHECK_KEEP_IMAGE=0   also remove the image it built
#   CHECK_LOG_DIR        keep the build's and every service's log there
# Exit status: 0 every check passed; 1 one failed (the line starting "FAIL" says which).
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE=${COMPOSE:-docker-compose}
PYTHON=${PYTHON:-python3}
SEARCH_ARGS=${CHECK_SEARCH_ARGS:---budget-mflops 150 --target armv8 --trials 5 --epochs 1 --no-warm-start --confirm-seeds 0}
TIMEOUT_S=${CHECK_TIMEOUT_S:-3600}
project="nascheck$$"
work=$(mktemp -d)
started=$(date +%s)

say() { printf '[compose-check %4ds] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() {
    say "FAIL: $*"
    exit 1
}
compose() { $COMPOSE -p "$project" --env-file "$work/env" "$@"; }

cleanup() {
    status=$?
    say "tearing down project $project"
    if [ -f "$work/env" ]; then
        for service in search ray-head ray-worker postgres dashboard; do
            compose logs --no-color "$service" >"$work/$service.log" 2>&1 || true
        done
        compose down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
        if [ "${CHECK_KEEP_IMAGE:-1}" = 0 ]; then
            docker image rm "nas:$project" >/dev/null 2>&1 || true
        fi
        if [ "$status" -ne 0 ]; then
            for service in search ray-head ray-worker; do
                say "last lines of $service's log:"
                tail -n 15 "$work/$service.log" | cut -c1-300 || true
            done
        fi
        if [ -n "${CHECK_LOG_DIR:-}" ]; then
            mkdir -p "$CHECK_LOG_DIR" && cp "$work"/*.log "$CHECK_LOG_DIR"/ 2>/dev/null || true
        fi
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

docker info >/dev/null 2>&1 || fail "no Docker engine answers (start dockerd first)"
$COMPOSE version >/dev/null 2>&1 || fail "$COMPOSE is not installed"
$PYTHON -c "import nas.trials" 2>/dev/null || fail "$PYTHON cannot import nas (pip install . first)"

free_port() { $PYTHON -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
pg_port=$(free_port)
dash_port=$(free_port)
ray_dash_port=$(free_port)
secret() { $PYTHON -c "import secrets; print(secrets.token_hex(24))"; }
pg_password=$(secret)
ray_token=$(secret)

# The settings file: .env.example with its secrets filled in, on this run's ports, with a
# search small enough for a laptop. NAS_MIN_CLUSTER_CPUS: the head's 1 and two workers' 2 each.
{
    cat .env.example
    echo "POSTGRES_PASSWORD=$pg_password"
    echo "RAY_AUTH_TOKEN=$ray_token"
    echo "POSTGRES_PORT=$pg_port"
    echo "DASHBOARD_PORT=$dash_port"
    echo "RAY_DASHBOARD_PORT=$ray_dash_port"
    echo "NAS_IMAGE_TAG=$project"
    echo "NAS_MIN_CLUSTER_CPUS=5"
    echo "NAS_SEARCH_ARGS=$SEARCH_ARGS"
    for name in NAS_BASE_IMAGE NAS_TORCH_INDEX_URL NAS_BUILD_NETWORK POSTGRES_VERSION; do
        if [ -n "${!name:-}" ]; then echo "$name=${!name}"; fi
    done
} >"$work/env"

say "building the image (nas:$project) through docker-compose.yml"
compose build ray-head >"$work/build.log" 2>&1 || {
    tail -n 30 "$work/build.log"
    fail "the image did not build (log above)"
}

# The workers wait for a healthy head (depends_on); started together, docker-compose v1 gives
# up on a head that a busy host keeps starting for longer than its health check allows, while
# its restart policy would have brought it up. So: the services with health checks first,
# waited for here, then the workers.
say "starting PostgreSQL, the Ray head and the dashboard"
compose up -d --no-deps postgres ray-head dashboard >/dev/null 2>&1 || fail "docker-compose up failed"
health() { docker inspect --format '{{.State.Health.Status}}' "$(compose ps -q "$1")" 2>/dev/null; }
deadline=$(($(date +%s) + 600))
for service in postgres ray-head dashboard; do
    until [ "$(health "$service")" = healthy ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "$service not healthy after 600 s ($(health "$service"))"
        sleep 2
    done
done
say "PostgreSQL, the Ray head and the dashboard are healthy; starting 2 Ray workers"
compose up -d --no-deps --scale ray-worker=2 ray-worker >/dev/null 2>&1 ||
    fail "docker-compose up of the workers failed"
mapfile -t workers < <(compose ps -q ray-worker)
[ "${#workers[@]}" -eq 2 ] || fail "expected 2 ray-worker containers, found ${#workers[@]}"

say "search: nas search $SEARCH_ARGS"
compose up -d --no-deps search >/dev/null 2>&1 || fail "the search service did not start"
search_id=$(compose ps -q search)

# Kill a worker once every CPU of the cluster trains a candidate, so the kill lands on a trial.
# Each worker offers 2 CPUs and the head 1; the search starts that many at once.
victim=${workers[0]}
deadline=$(($(date +%s) + TIMEOUT_S))
until [ "$(docker logs "$search_id" 2>&1 | grep -c ' started on worker ')" -ge 5 ]; do
    [ "$(docker inspect --format '{{.State.Running}}' "$search_id")" = true ] ||
        fail "the search ended before 5 trials ran at once"
    [ "$(date +%s)" -lt "$deadline" ] || fail "5 trials were not running after $TIMEOUT_S s"
    sleep 2
done
sleep 10
say "killing worker $(docker inspect --format '{{.Name}}' "$victim" | tr -d /) mid-search"
docker kill "$victim" >/dev/null

remaining=$((deadline - $(date +%s)))
[ "$remaining" -gt 0 ] || remaining=1
search_rc=$(timeout "$remaining" docker wait "$search_id") || fail "the search did not finish in $TIMEOUT_S s"
docker logs "$search_id" >"$work/search.log" 2>&1
grep -E '^(trial [0-9]+ (failed|started)|Pareto|search:|confirm:)' "$work/search.log" | tail -n 30 || true
[ "$search_rc" = 0 ] || fail "the search exited $search_rc"
say "the search exited 0"

# The trials the search said it started, as the host reads them from the compose PostgreSQL.
grep -oE '^trial [0-9]+ started' "$work/search.log" | grep -oE '[0-9]+' | sort -un >"$work/started"
PGPASSWORD=$pg_password $PYTHON - "postgresql+psycopg://nas@127.0.0.1:$pg_port/nas" "$work/started" \
    "$SEARCH_ARGS" <<'PY' || fail "the study in the compose PostgreSQL does not hold what the search did"
import sys

import optuna
from optuna.trial import TrialState

from nas.trials import TrialAttrs

url, started_file, args = sys.argv[1], sys.argv[2], sys.argv[3].split()
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = optuna.storages.RDBStorage(url)
searches = [s for s in optuna.get_all_study_summaries(storage) if "." not in s.study_name]
assert len(searches) == 1, f"expected one search study, found {[s.study_name for s in searches]}"
study = optuna.load_study(study_name=searches[0].study_name, storage=storage)
trials = {t.number: t for t in study.get_trials(deepcopy=False)}
started = {int(line) for line in open(started_file) if line.strip()}
missing = sorted(started - set(trials))
assert not missing, f"trials the search started but the database lacks: {missing}"
unfinished = [n for n, t in trials.items() if t.state in (TrialState.RUNNING, TrialState.WAITING)]
assert not unfinished, f"trials left running or waiting: {unfinished}"
attrs = {n: TrialAttrs.of(t) for n, t in trials.items()}
wanted = int(args[args.index("--trials") + 1]) if "--trials" in args else 10
searched = sum(1 for a in attrs.values() if a.counts_toward_trials)
assert searched == wanted, f"{searched} searched candidates trained, --trials asked for {wanted}"
failed = [n for n, t in trials.items() if t.state == TrialState.FAIL]
assert failed, "no trial failed, so the killed worker was training nothing"
retried = {a.retry_of: n for n, a in attrs.items() if a.retry_of is not None}
for number in failed:
    error = attrs[number].error or ""
    assert error, f"failed trial {number} records no error"
    retry = retried.get(number)
    assert retry is not None, f"failed trial {number} was not retried"
    outcome = attrs[retry].outcome
    assert outcome is not None and outcome.counts, f"retry {retry} of trial {number}: {outcome}"
    print(f"trial {number} failed ({error.splitlines()[0][:100]}); retried as trial {retry}: {outcome.value}")
outcomes = {}
for a in attrs.values():
    key = a.outcome.value if a.outcome else "none"
    outcomes[key] = outcomes.get(key, 0) + 1
open(started_file + ".study", "w").write(study.study_name)
print(
    f"study {study.study_name!r}: {len(trials)} trials in PostgreSQL ({outcomes}), "
    f"{len(started)} started by the search, all present"
)
PY

curl -fsS --max-time 10 "http://127.0.0.1:$dash_port/api/meta" >/dev/null || fail "the dashboard does not answer"
curl -fsS --max-time 10 "http://127.0.0.1:$dash_port/api/studies" | grep -qF "\"$(cat "$work/started.study")\"" ||
    fail "the dashboard does not list the study"
# Ray's dashboard sits behind the cluster's token: an answer is 200 with it, 401 or 403 without.
ray_code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    -H "Authorization: Bearer $ray_token" "http://127.0.0.1:$ray_dash_port/api/version" || true)
case "$ray_code" in
    200 | 401 | 403) ;;
    *) fail "Ray's dashboard does not answer on 127.0.0.1:$ray_dash_port (HTTP $ray_code)" ;;
esac
say "the dashboard answers on 127.0.0.1:$dash_port and lists the study; Ray's dashboard answers (HTTP $ray_code)"
if compose logs --no-color ray-head ray-worker search 2>&1 | grep -m 1 'instead of /dev/shm'; then
    fail "a Ray object store fell back to disk: /dev/shm is smaller than the store"
fi
say "every Ray object store is in /dev/shm"
say "PASS"
