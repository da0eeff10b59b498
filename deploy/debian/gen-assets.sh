#!/bin/sh
# Generate the shell completions and man pages that the Debian packages ship,
# from the built binaries' own command-line definitions (so they never drift):
#   deploy/debian/gen-assets.sh target/release
# writes target/release/share/{completions,man}/. `cargo deb` picks them up
# (see [package.metadata.deb] assets in agent/Cargo.toml and collector/Cargo.toml).
# Optional binary names after the directory (default: both). For binaries of
# another architecture, PANTAU_RUNNER is put in front of each run, e.g.
#   PANTAU_RUNNER="qemu-aarch64 -L /" \
#     deploy/debian/gen-assets.sh target/cross/aarch64-unknown-linux-gnu/release pantau-agent
set -eu

dir="${1:?usage: gen-assets.sh TARGET_PROFILE_DIR [BINARY...] (e.g. target/release)}"
shift
[ $# -gt 0 ] || set -- pantau-agent pantau-collector
runner="${PANTAU_RUNNER:-}"
out="$dir/share"
rm -rf "$out"
mkdir -p "$out/completions" "$out/man"
for bin in "$@"; do
    case "$bin" in
        pantau-agent|pantau-collector) ;;
        *) echo "gen-assets.sh: unknown binary '$bin' (pantau-agent or pantau-collector)" >&2; exit 1 ;;
    esac
    exe="$dir/$bin"
    [ -x "$exe" ] || { echo "gen-assets.sh: $exe not built; run cargo build first" >&2; exit 1; }
    # $runner is deliberately split into words (a command and its options).
    $runner "$exe" completions bash > "$out/completions/$bin.bash"
    $runner "$exe" completions zsh > "$out/completions/_$bin"
    $runner "$exe" completions fish > "$out/completions/$bin.fish"
    $runner "$exe" man --out "$out/man" > /dev/null
    gzip -9nf "$out/man/$bin"*.1
    if [ -f "$out/man/$bin.toml.5" ]; then gzip -9nf "$out/man/$bin.toml.5"; fi
done
echo "$out"
