#!/usr/bin/env bash
# The service users and groups the daemons drop to (the packages create the same ones through
# sysusers.d). Idempotent; run as root.
set -euo pipefail
nologin=$(command -v nologin || echo /usr/sbin/nologin)
getent group ferroswan >/dev/null || groupadd --system ferroswan
getent group ipsec >/dev/null || groupadd --system ipsec
for d in keyd ikerd confd fwd; do
  u="ferroswan-$d"
  if ! getent passwd "$u" >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell "$nologin" --groups ferroswan --comment "ferroswan $d" "$u"
  fi
done
