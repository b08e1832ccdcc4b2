#!/usr/bin/env bash
# The demo gateway pair: two ferroswan instances in two network namespaces joined by a veth link
# (192.0.2.1 <-> 192.0.2.2, documentation addresses inside the namespaces only), each with its own
# config and run dir. Shows both instances' status, then tears everything down. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh must run as root (network namespaces)" >&2; exit 1; }
scripts/setup-debian.sh
cargo build --workspace --bins --release
BIN="$PWD/target/release"
work=$(mktemp -d /tmp/ferroswan-demo.XXXXXX)
chmod 755 "$work"
west=fsdemo-west-$$; east=fsdemo-east-$$

cleanup() {
  for gw in west east; do
    [ -d "$work/$gw/run" ] && ip netns exec "fsdemo-$gw-$$" "$BIN/ipsecctl" --config-dir "$work/$gw/etc" --run-dir "$work/$gw/run" stop >/dev/null 2>&1 || true
  done
  ip netns del "$west" 2>/dev/null || true
  ip netns del "$east" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$west"; ip netns add "$east"
ip link add veth-w netns "$west" type veth peer name veth-e netns "$east"
ip -n "$west" addr add 192.0.2.1/24 dev veth-w; ip -n "$west" link set veth-w up; ip -n "$west" link set lo up
ip -n "$east" addr add 192.0.2.2/24 dev veth-e; ip -n "$east" link set veth-e up; ip -n "$east" link set lo up

for gw in west east; do
  mkdir -p "$work/$gw/etc/ipsec.d" "$work/$gw/run"
  printf 'version 2\n\nconfig setup\n' > "$work/$gw/etc/ipsec.conf"
  install -m 600 /dev/null "$work/$gw/etc/ipsec.secrets"
  ns="fsdemo-$gw-$$"
  echo "== starting $gw (namespace $ns)"
  ip netns exec "$ns" "$BIN/ipsecctl" --config-dir "$work/$gw/etc" --run-dir "$work/$gw/run" start
done
for gw in west east; do
  echo; echo "== ipsecctl status on $gw"
  ip netns exec "fsdemo-$gw-$$" "$BIN/ipsecctl" --config-dir "$work/$gw/etc" --run-dir "$work/$gw/run" status
done
echo; echo "== west reaches east over the link"
ip netns exec "$west" ping -c 2 -W 1 192.0.2.2 | tail -n 2
echo; echo "== stopping both gateways"
