#!/bin/sh
# Tunnel throughput benchmark: plain forwarding beside ferroswan tunnels (AES-GCM, AES-CBC+SHA1,
# AES-256+SHA2, 3DES+MD5) in the test topology (namespaces only), iperf3 TCP median of 3 and 64-byte
# UDP packet rate, printed as a Markdown table. Needs root; installs what it needs.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-tunnel.sh: run as root (network namespaces)" >&2; exit 1; }
bash scripts/setup-debian.sh
cargo build --release --locked --workspace --bins
exec target/release/bench-tunnel "$@"
