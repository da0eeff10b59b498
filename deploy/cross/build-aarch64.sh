#!/usr/bin/env bash
# Cross-build Pantau for aarch64 (Raspberry Pi class boxes, arm64 Debian) on an
# x86_64 Debian bookworm machine, with Debian's own Rust toolchain:
#   rustc-web/cargo-web 1.96 (bookworm-security) + libstd-rust-web-dev:arm64
#   (the aarch64 standard library for that same rustc, via dpkg multiarch)
#   + gcc-aarch64-linux-gnu as C compiler and linker (bundled SQLite, ring).
# rustup is not needed for this (and its default toolchain is left alone).
#
# Usage (as root: installs packages with apt):
#   bash deploy/cross/build-aarch64.sh            # pantau-agent only (CI)
#   bash deploy/cross/build-aarch64.sh --all      # agent and collector
#   bash deploy/cross/build-aarch64.sh --no-deb   # binaries only, no .deb
# Output (release profile of the workspace, separate target directory so the
# normal build is not invalidated):
#   target/cross/aarch64-unknown-linux-gnu/release/pantau-agent[, pantau-collector]
#   target/cross/debian/pantau-agent_*_arm64.deb[, pantau-collector_*_arm64.deb]
set -euo pipefail
cd "$(dirname "$0")/../.."

triple=aarch64-unknown-linux-gnu
target_dir=target/cross
packages=(pantau-agent)
deb=1
for arg in "$@"; do
  case "$arg" in
    --all) packages=(pantau-agent pantau-collector) ;;
    --no-deb) deb=0 ;;
    *) echo "build-aarch64.sh: unknown argument '$arg' (known: --all, --no-deb)" >&2; exit 2 ;;
  esac
done

# Debian's toolchain lives in /usr/bin; rustup's proxies (earlier in PATH) are
# not used here, so name the binaries explicitly.
rustc=/usr/bin/rustc
cargo=/usr/bin/cargo
# qemu-user runs the aarch64 binaries with the arm64 libc6 that dpkg multiarch
# installs in /lib/aarch64-linux-gnu (its own loader, /lib/ld-linux-aarch64.so.1).
# Not -L /usr/aarch64-linux-gnu: that loader (libc6-arm64-cross, used for
# linking) would load /lib/aarch64-linux-gnu/libc.so.6 of another glibc build,
# and the first pthread_create then spins forever.
qemu="qemu-aarch64 -L /"

# 1. Packages. arm64 as a foreign dpkg architecture, for libstd-rust-web-dev:arm64.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "build-aarch64.sh: adding dpkg architecture arm64"
  dpkg --add-architecture arm64
  apt-get update -qq
fi
need=()
for p in rustc-web cargo-web libstd-rust-web-dev:arm64 libc6:arm64 \
         gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "build-aarch64.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The host rustc and the arm64 standard library must be the same build, and
# the workspace needs Rust >= 1.88 (edition 2024): bookworm itself has 1.85,
# bookworm-security has 1.96.
host_ver=$(dpkg-query -W -f='${Version}' rustc-web)
std_ver=$(dpkg-query -W -f='${Version}' libstd-rust-web-dev:arm64)
if [ "$host_ver" != "$std_ver" ]; then
  echo "build-aarch64.sh: rustc-web $host_ver but libstd-rust-web-dev:arm64 $std_ver; they must match (apt-get install rustc-web libstd-rust-web-dev:arm64)" >&2
  exit 1
fi
release=$("$rustc" -vV | sed -n 's/^release: //p')
need_ver=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if [ "$(printf '%s\n%s\n' "$need_ver" "$release" | sort -V | head -n1)" != "$need_ver" ]; then
  echo "build-aarch64.sh: $rustc is $release, the workspace needs >= $need_ver (enable bookworm-security in apt sources)" >&2
  exit 1
fi

# 2. Build. Only this script's variables: none of a calling cargo's
# (e.g. when started from a test) or rustup's.
pkg_args=()
for p in "${packages[@]}"; do pkg_args+=(-p "$p"); done
start=$(date +%s)
env -u RUSTC -u RUSTDOC -u RUSTC_WRAPPER -u RUSTUP_TOOLCHAIN -u CARGO -u CARGO_TARGET_DIR \
  -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET \
  RUSTC="$rustc" RUSTDOC=/usr/bin/rustdoc \
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$qemu" \
  "$cargo" build --locked --release --target "$triple" --target-dir "$target_dir" "${pkg_args[@]}"
out="$target_dir/$triple/release"
echo "build-aarch64.sh: built in $(( $(date +%s) - start ))s with $("$rustc" -V)"
for p in "${packages[@]}"; do
  file "$out/$p" 2>/dev/null || ls -l "$out/$p"
  $qemu "$out/$p" --version
done

# 3. Debian packages. The completions and man pages come from running the
# aarch64 binaries under qemu; cargo deb --target reads
# target/cross/aarch64-unknown-linux-gnu/release/ and writes Architecture: arm64.
if [ "$deb" = 1 ]; then
  command -v cargo-deb >/dev/null 2>&1 || {
    echo "build-aarch64.sh: cargo-deb missing (cargo install cargo-deb --locked --version 3.8.0), or use --no-deb" >&2
    exit 1
  }
  PANTAU_RUNNER="$qemu" sh deploy/debian/gen-assets.sh "$out" "${packages[@]}" >/dev/null
  mkdir -p "$target_dir/debian"
  for p in "${packages[@]}"; do
    CARGO_TARGET_DIR="$target_dir" cargo deb --locked --no-build --target "$triple" \
      -p "$p" -o "$target_dir/debian/"
  done
  for f in "$target_dir"/debian/*_arm64.deb; do
    echo "$f: $(dpkg-deb -f "$f" Architecture)"
  done
fi
