#!/usr/bin/env bash
# The save action's entry point (action.yml runs it with the inputs in
# INPUT_* variables): when the job has succeeded, install statepack, save
# DATA_DIR as a new version of the state and push it. After a failed or
# cancelled job it saves and pushes nothing, so that a broken state never
# becomes the one the next job starts from.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The restore action's, so that both read their inputs and install alike.
# shellcheck source=restore/setup.sh
. "$here/../restore/setup.sh"

state=${INPUT_STATE:-}
status=${INPUT_JOB_STATUS:-}
if [ "$status" != success ]; then
  echo "::notice title=statepack::not saving ${state:-the state}: the job's status is '$status', and only a job that succeeded saves and pushes its state"
  exit 0
fi

statepack_settings "save and push" save

statepack_install "${INPUT_VERSION:-}" "${INPUT_RELEASE_URL:-}"

# The commit and branch the version was made from, as `statepack log` shows.
args=(save "$state")
if [ -n "${GITHUB_SHA:-}" ]; then
  args+=(--label "commit=$GITHUB_SHA")
fi
branch=${GITHUB_HEAD_REF:-${GITHUB_REF_NAME:-}}
if [ -n "$branch" ]; then
  args+=(--label "branch=$branch")
fi
if [ -n "${INPUT_LOCALSTACK:-}" ]; then
  args+=(--localstack="$INPUT_LOCALSTACK")
fi

tmp=$(mktemp -d "$RUNNER_TEMP/statepack-save.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rc=0
"$STATEPACK_BIN" "${args[@]}" --json >"$tmp/save.json" || rc=$?
[ "$rc" -eq 0 ] || statepack_fail "statepack ${args[*]} failed (exit $rc)"
snapshot=$(json_field snapshot "$tmp/save.json")
[ -n "$snapshot" ] || {
  cat "$tmp/save.json"
  statepack_fail "could not read the snapshot from statepack save --json (above)"
}
echo "::group::statepack ${args[*]} --json"
cat "$tmp/save.json"
echo "::endgroup::"
echo "saved $DATA_DIR as $state (snapshot $snapshot)"

rc=0
"$STATEPACK_BIN" push "$state" || rc=$?
[ "$rc" -eq 0 ] || statepack_fail "statepack push $state failed (exit $rc)"
echo "snapshot=$snapshot" >>"$GITHUB_OUTPUT"
