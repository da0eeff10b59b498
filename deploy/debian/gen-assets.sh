#!/bin/sh
# Generate the shell completions and man pages that the Debian packages ship,
# from the built binaries' own command-line definitions (so they never drift):
#   deploy/debian/gen-assets.sh target/release
# writes target/release/share/{completions,man}/. `cargo deb` picks them up
# (see [package.metadata.deb] assets in agent/Cargo.toml and collector/Cargo.toml).
set -eu

dir="${1:?usage: gen-assets.sh TARGET_PROFILE_DIR (e.g. target/release)}"
out="$dir/share"
rm -rf "$out"
mkdir -p "$out/completions" "$out/man"
for bin in pantau-agent pantau-collector; do
    exe="$dir/$bin"
    [ -x "$exe" ] || { echo "gen-assets.sh: $exe not built; run cargo build first" >&2; exit 1; }
    "$exe" completions bash > "$out/completions/$bin.bash"
    "$exe" completions zsh > "$out/completions/_$bin"
    "$exe" completions fish > "$out/completions/$bin.fish"
    "$exe" man --out "$out/man" > /dev/null
    gzip -9nf "$out/man/$bin"*.1
done
echo "$out"
