#!/usr/bin/env bash
# The restore action's entry point (action.yml runs it with the inputs in
# INPUT_* variables): install statepack, pull the newest version of the
# state, or of the first fallback the remote has, and restore it into
# DATA_DIR. A state found nowhere is a cache miss, not a failure: the job
# starts from an empty DATA_DIR and cache-hit is empty.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=restore/setup.sh
. "$here/setup.sh"

statepack_settings restore "restore into"
state=$INPUT_STATE

statepack_install "${INPUT_VERSION:-}" "${INPUT_RELEASE_URL:-}"

# Fallbacks as restore-keys take them, one a line, or separated by commas.
args=(pull "$state" --json)
while read -r f; do # read trims the blanks around each
  if [ -n "$f" ]; then
    args+=(--fallback "$f")
  fi
done < <(printf '%s\n' "${INPUT_FALLBACK:-}" | tr ',\r' '\n\n')
# With a LocalStack to reload, restore runs on its own after the pull: it
# is restore that asks LocalStack to load what it wrote.
if [ -z "${INPUT_LOCALSTACK:-}" ]; then
  args+=(--restore)
fi

tmp=$(mktemp -d "$RUNNER_TEMP/statepack-restore.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rc=0
"$STATEPACK_BIN" "${args[@]}" >"$tmp/out.json" 2>"$tmp/err.json" || rc=$?
if [ "$rc" -ne 0 ]; then
  msg=$(error_message "$tmp/err.json")
  if [ "$rc" -eq 3 ]; then
    echo "::notice title=statepack::cache miss: ${msg:-no saved state for $state or its fallbacks}; DATA_DIR starts empty"
    {
      echo "cache-hit="
      echo "snapshot="
      echo "matched-state="
    } >>"$GITHUB_OUTPUT"
    exit 0
  fi
  cat "$tmp/err.json" >&2
  statepack_fail "statepack pull failed (exit $rc): ${msg:-see the output above}"
fi

if [ -s "$tmp/err.json" ]; then
  cat "$tmp/err.json" >&2 # warnings
fi
found=$(json_field state "$tmp/out.json")
snapshot=$(json_field snapshot "$tmp/out.json")
hit=exact
if [ "$(json_field fallback "$tmp/out.json")" = true ]; then
  hit=fallback
fi
[ -n "$found" ] && [ -n "$snapshot" ] || {
  cat "$tmp/out.json"
  statepack_fail "could not read the state and snapshot from statepack pull --json (above)"
}
echo "::group::statepack ${args[*]}"
cat "$tmp/out.json"
echo "::endgroup::"

if [ -n "${INPUT_LOCALSTACK:-}" ]; then
  rc=0
  "$STATEPACK_BIN" restore "$snapshot" --localstack="$INPUT_LOCALSTACK" || rc=$?
  [ "$rc" -eq 0 ] || statepack_fail "statepack restore $snapshot --localstack=$INPUT_LOCALSTACK failed (exit $rc)"
fi

if [ "$hit" = exact ]; then
  echo "restored $state (snapshot $snapshot) into $DATA_DIR"
else
  echo "restored $found (snapshot $snapshot) into $DATA_DIR: $state is not on the remote yet, $found is its first fallback there"
fi
{
  echo "cache-hit=$hit"
  echo "snapshot=$snapshot"
  echo "matched-state=$found"
} >>"$GITHUB_OUTPUT"
