#!/usr/bin/env bash
# The demo gateway pair: two ferroswan gateways in network namespaces with a LAN namespace behind
# each (the test topology: documentation addresses, nothing in the root namespace), RSA keys from
# `ipsecctl rsasigkey`, an IKEv1 tunnel between the LANs, its status, a ping across and what the WAN carried.
# Everything is torn down at the end. Needs root; installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh must run as root (network namespaces)" >&2; exit 1; }
scripts/setup-debian.sh
cargo build --workspace --bins --release --locked
exec target/release/demo
