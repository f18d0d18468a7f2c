#!/usr/bin/env bash
# statepack demo: the round trip a team makes, on a LocalStack-like DATA_DIR.
#
#   generate 64 MiB -> save -> mutate -> save -> push to a directory remote
#   -> wipe the local store and DATA_DIR -> pull --restore
#   -> prove DATA_DIR identical to the second saved state
#
# Run by `make demo` as BIN=/path/to/bin bash ./testdata/demo.sh, where BIN
# holds statepack and statepack-datagen. Everything happens under .demo/ in
# the current directory, wiped at the start; the user's own store, DATA_DIR
# and remote are never touched. Exits non-zero on any difference.
set -euo pipefail
export LC_ALL=C

BIN=${BIN:-$PWD/bin}
SP="$BIN/statepack"
DG="$BIN/statepack-datagen"
for b in "$SP" "$DG"; do
  [[ -x "$b" ]] || { echo "demo: $b not found; run make build (or set BIN)" >&2; exit 1; }
done

DEMO="$PWD/.demo"
rm -rf "$DEMO"
mkdir -p "$DEMO"
export STATEPACK_STORE="$DEMO/store" DATA_DIR="$DEMO/data"
unset STATEPACK_REMOTE
REMOTE="file://$DEMO/remote"
SECONDS=0

step() { printf '\n== %s\n' "$*"; }

step "generate a ~64 MiB LocalStack-like DATA_DIR in $DATA_DIR"
"$DG" generate --dir "$DATA_DIR" --size 64MiB --seed 1

step "save it as the first version of the state 'demo'"
"$SP" save demo -m "generated, seed 1"

step "change it the way a test stage does"
"$DG" mutate --dir "$DATA_DIR" --seed 1 --step 1

step "save the second version: only the changed blocks are stored"
"$SP" save demo -m "after mutate step 1"
"$SP" log demo

step "keep a copy of DATA_DIR as saved, to compare with at the end"
cp -a "$DATA_DIR" "$DEMO/expected"

step "create the remote $REMOTE and push 'demo' to it"
"$SP" init --remote "$REMOTE"
"$SP" push demo --remote "$REMOTE"

step "wipe the local store and DATA_DIR (a fresh CI runner)"
rm -rf "$STATEPACK_STORE" "$DATA_DIR"
echo "removed $STATEPACK_STORE and $DATA_DIR"

step "pull 'demo' from the remote and restore it into DATA_DIR"
"$SP" pull demo --restore --remote "$REMOTE"

step "compare the restored DATA_DIR with the copy: paths, types, modes, sizes, mtimes, link targets, content"
listing() { (cd "$1" && find . -mindepth 1 -printf '%P %y %m %s %T@ %l\n' | sort); }
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
listing "$DEMO/expected" >"$DEMO/expected.list"
listing "$DATA_DIR" >"$DEMO/restored.list"
sums "$DEMO/expected" >"$DEMO/expected.sha256"
sums "$DATA_DIR" >"$DEMO/restored.sha256"
if ! diff -u "$DEMO/expected.list" "$DEMO/restored.list"; then
  echo "demo FAILED: the restored tree's metadata differs (above)" >&2
  exit 1
fi
if ! diff -u "$DEMO/expected.sha256" "$DEMO/restored.sha256"; then
  echo "demo FAILED: the restored files' content differs (above)" >&2
  exit 1
fi
echo "$(wc -l <"$DEMO/restored.list") paths and $(wc -l <"$DEMO/restored.sha256") files identical"
"$SP" status

printf "\ndemo OK (%ss)\n" "$SECONDS"
