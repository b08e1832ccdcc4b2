#!/usr/bin/env bash
# Install what building and testing ferroswan needs on a fresh Debian 12 machine that has the Rust
# toolchain: system packages (apt) and cargo tools. Idempotent; needs root.
set -euo pipefail
need_apt=()
for p in build-essential pkg-config libssl-dev libseccomp-dev iproute2 iptables tcpdump tshark iperf3 \
         strongswan-charon strongswan-swanctl libcharon-extra-plugins \
         libstrongswan-standard-plugins procps psmisc strace iputils-ping; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# strongSwan is installed for interop tests that start it themselves; never as a running service.
if command -v systemctl >/dev/null && systemctl is-active --quiet strongswan 2>/dev/null; then
  systemctl disable --now strongswan || true
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
# The service users the daemons drop to, as the packages create them.
"$(dirname "$0")/setup-users.sh"
