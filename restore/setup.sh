# What the restore and save actions share, sourced by their entry scripts
# (restore.sh, save.sh): reading the inputs both have, and installing
# statepack without compiling anything: the release archive for the
# runner's OS and architecture, checked against the release's checksums
# file, kept in the runner's tool cache so that the next step or job on the
# same runner downloads nothing.
#
# The release's file names are a contract with `make release`:
#   statepack_<version>_<os>_<arch>.tar.gz  holding the binary `statepack`
#   statepack_<version>_checksums.txt       sha256sum lines: <hex>  <file>
# with <os> linux and <arch> amd64 or arm64.

# statepack_fail prints a GitHub error annotation and exits.
statepack_fail() {
  echo "::error title=statepack::$*"
  exit 1
}

# statepack_settings checks the inputs both actions have and exports them
# as statepack reads them: DATA_DIR, and STATEPACK_REMOTE (the remote input,
# else STATEPACK_REMOTE from the step's env). $1 is what the state is for,
# $2 what is done to the directory.
statepack_settings() {
  [ -n "${INPUT_STATE:-}" ] || statepack_fail "the state input is required: the state to $1, such as pr-42 or main"
  [ -n "${INPUT_DATA_DIR:-}" ] || statepack_fail "the data-dir input is required: the directory to $2 (LocalStack's state/)"
  export DATA_DIR="$INPUT_DATA_DIR"
  export STATEPACK_REMOTE="${INPUT_REMOTE:-${STATEPACK_REMOTE:-}}"
  [ -n "$STATEPACK_REMOTE" ] ||
    statepack_fail "the remote input is required (or STATEPACK_REMOTE in the step's env): where states are pushed, such as s3://bucket/prefix"
}

# json_field NAME FILE prints a top-level field of statepack's --json
# output (two-space indent; nested objects are indented further).
json_field() {
  sed -n "s/^  \"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" "$2" | head -n 1
}

# error_message FILE prints the message of statepack's --json error.
error_message() {
  sed -n 's/^    "message": "\(.*\)",\{0,1\}$/\1/p' "$1" | head -n 1
}

# statepack_sha256 prints the SHA-256 of a file in hex: sha256sum on Linux,
# shasum on macOS.
statepack_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  else
    shasum -a 256 "$1" | cut -d ' ' -f 1
  fi
}

# statepack_install VERSION RELEASE_URL installs statepack VERSION (from
# RELEASE_URL, or GitHub's release downloads when empty), adds its directory
# to GITHUB_PATH for the job's later steps, and sets STATEPACK_BIN to the
# binary.
statepack_install() {
  local version=$1 url=$2 os arch dir archive sums tmp want got
  [ -n "$version" ] || statepack_fail "the version input is empty: name a statepack release, such as v1.2.3"
  case "${RUNNER_OS:-}" in
    Linux) os=linux ;;
    *) statepack_fail "statepack has release binaries for Linux runners only, not RUNNER_OS='${RUNNER_OS:-}'" ;;
  esac
  case "${RUNNER_ARCH:-}" in
    X64) arch=amd64 ;;
    ARM64) arch=arm64 ;;
    *) statepack_fail "statepack has release binaries for X64 and ARM64 runners only, not RUNNER_ARCH='${RUNNER_ARCH:-}'" ;;
  esac
  [ -n "${RUNNER_TOOL_CACHE:-}" ] || statepack_fail "RUNNER_TOOL_CACHE is not set: this action runs on a GitHub Actions runner"
  [ -n "${RUNNER_TEMP:-}" ] || statepack_fail "RUNNER_TEMP is not set: this action runs on a GitHub Actions runner"

  # The layout of @actions/tool-cache: <tool>/<version>/<arch>/, and beside
  # it <arch>.complete once the directory is whole.
  dir="$RUNNER_TOOL_CACHE/statepack/$version/$arch"
  if [ -f "$dir.complete" ] && [ -x "$dir/statepack" ]; then
    echo "statepack $version ($os/$arch) from the tool cache: $dir"
  else
    url=${url:-https://github.com/statepack/statepack/releases/download/$version}
    url=${url%/}
    archive="statepack_${version}_${os}_${arch}.tar.gz"
    sums="statepack_${version}_checksums.txt"
    tmp=$(mktemp -d "$RUNNER_TEMP/statepack-install.XXXXXX")
    echo "downloading statepack $version ($os/$arch) from $url"
    curl -fsSL --retry 3 -o "$tmp/$archive" "$url/$archive" ||
      statepack_fail "could not download $url/$archive: is $version a statepack release with a binary for $os/$arch?"
    curl -fsSL --retry 3 -o "$tmp/$sums" "$url/$sums" ||
      statepack_fail "could not download $url/$sums, the release's checksums"
    want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/$sums")
    [ -n "$want" ] || statepack_fail "$sums has no line for $archive: refusing to install an archive that cannot be checked"
    got=$(statepack_sha256 "$tmp/$archive")
    [ "$got" = "$want" ] ||
      statepack_fail "checksum mismatch for $archive: SHA-256 $got, but $sums says $want; refusing to install it"
    echo "$archive: SHA-256 $got matches $sums"
    tar -xzf "$tmp/$archive" -C "$tmp" statepack ||
      statepack_fail "$archive holds no file named statepack"
    chmod 0755 "$tmp/statepack"
    mkdir -p "$dir"
    # A rename within the tool cache, so that a job running beside this one
    # never sees half a binary.
    mv -f "$tmp/statepack" "$dir/statepack.$$"
    mv -f "$dir/statepack.$$" "$dir/statepack"
    touch "$dir.complete"
    rm -rf "$tmp"
    echo "statepack $version installed in the tool cache: $dir"
  fi
  if [ -n "${GITHUB_PATH:-}" ]; then
    echo "$dir" >>"$GITHUB_PATH"
  fi
  STATEPACK_BIN="$dir/statepack"
  "$STATEPACK_BIN" version
}
