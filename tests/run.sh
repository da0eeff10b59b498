#!/usr/bin/env bash
# Pantau's test command: installs what the suite needs on a fresh Debian
# machine, then runs the format check, clippy and every test.
# Usage: bash tests/run.sh        (as root: the tests create network namespaces)
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests start: ip (iproute2), unshare and setpriv (util-linux),
# prometheus and promtool (prometheus), systemd-analyze (systemd), pdftotext,
# chromium and python3 (report tests).
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
{ command -v unshare >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1; } || missing+=(util-linux)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# Accuracy tests: nft (nftables) for random loss, ping (iputils-ping) side by side.
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ping >/dev/null 2>&1 || missing+=(iputils-ping)
# Link utilisation test: a real net-snmp agent (snmpd) and snmpget/snmpset (snmp).
{ command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ]; } || missing+=(snmpd)
command -v snmpget >/dev/null 2>&1 || missing+=(snmp)
# Report tests: pdftotext (poppler-utils), headless chromium for the pages,
# python3 to read the screenshot's pixels.
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# Evidence tests set a process's clock (a report issued mid-hour, an agent
# whose clock is hours off) with faketime.
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
# The PostgreSQL store's conformance suite and tests/tests/postgres.rs start a
# server of their own from Debian's package (initdb and postgres).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
# Man pages generated from the CLI are rendered with man (man-db, with groff).
command -v man >/dev/null 2>&1 || missing+=(man-db)
# Alert delivery: a real Alertmanager and amtool (tests/tests/alertmanager.rs).
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
# OpenID Connect sign-in: a real provider (npm `oidc-provider`) runs on node.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust components used by the checks.
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
# cargo-deb builds the .deb packages in tests/tests/package.rs. Pinned: the
# test packages the debug binaries with --profile dev, which later releases
# announce they will refuse.
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --version 3.8.0

# The OpenID Connect provider of tests/tests/oidc.rs, pinned by its lock file,
# installed into the target directory (no install scripts run).
oidc_dir="${CARGO_TARGET_DIR:-target}/oidc-provider"
mkdir -p "$oidc_dir"
cp tests/oidc/package.json tests/oidc/package-lock.json "$oidc_dir/"
(cd "$oidc_dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests start these binaries; build them once, up front.
cargo build --workspace --bins --locked
# The aarch64 (Raspberry Pi class) agent, cross-built with Debian's
# rustc-web and its arm64 standard library (installs them with apt), plus its
# arm64 .deb; tests/tests/aarch64.rs runs it under qemu-user.
bash deploy/cross/build-aarch64.sh
# Fuzz targets' budget: cases of a cheap target (costly ones run a fraction).
export PANTAU_FUZZ_CASES="${PANTAU_FUZZ_CASES:-50000}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every test binary runs even when one fails, so a red run shows all failures.
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "pantau: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log" || status=1
exit "$status"
