#!/usr/bin/env bash
# ferroswan's whole test suite, as the README states it: installs what it needs, builds, runs the unit,
# property and end-to-end tests (root: the end-to-end tests create network namespaces), then each fuzz
# target for a bounded time. Budget: under 45 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export FERROSWAN_CORPUS="${FERROSWAN_CORPUS:-$(cd .. && pwd)/shared/corpus}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
start=$(date +%s)

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh must run as root (the end-to-end tests create network namespaces)" >&2
  exit 1
fi
scripts/setup-debian.sh

echo "== build"
cargo build --workspace --bins --locked
echo "== tests (unit, property, end-to-end)"
cargo test --workspace --locked --no-fail-fast
echo "== disk after the tests: $(du -sh target 2>/dev/null | cut -f1) in target/; $(df -h --output=avail . | tail -n 1 | tr -d ' ') free"

echo "== fuzz (each target ${FUZZ_SECONDS}s)"
(
  cd fuzz
  for t in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
    seeds="corpus/$t"
    mkdir -p "$seeds"
    # Seed the parsers with real files from the shared corpus.
    case "$t" in
      conf_parser) find "$FERROSWAN_CORPUS/libreswan-conf" "$FERROSWAN_CORPUS/strongswan-ipsecconf" -type f -size -16k | head -n 300 | xargs -r cp -t "$seeds" 2>/dev/null || true ;;
      setkey_script) printf 'flush;\nspdflush;\nadd 192.0.2.1 192.0.2.2 esp 0x1001 -m tunnel -E 3des-cbc 0x%048d -A hmac-md5 0x%032d;\nspdadd 10.1.0.0/24[any] 10.2.0.0/24[any] any -P out ipsec esp/tunnel/192.0.2.1-192.0.2.2/require;\nspddump;\n' 0 0 > "$seeds/seed-tunnel" ;;
      racoon_conf) printf 'remote 192.0.2.2 {\n\texchange_mode main;\n\tproposal {\n\t\tencryption_algorithm 3des;\n\t\thash_algorithm md5;\n\t\tauthentication_method pre_shared_key;\n\t\tdh_group modp1024;\n\t}\n}\nsainfo anonymous {\n\tpfs_group modp1024;\n\tencryption_algorithm 3des;\n\tauthentication_algorithm hmac_md5;\n\tcompression_algorithm deflate;\n}\n\377192.0.2.2 secret\n\377spdadd 10.1.0.0/24 10.2.0.0/24 any -P out ipsec esp/tunnel/192.0.2.1-192.0.2.2/require;\n' > "$seeds/seed-net" ;;
      secrets_parser) find "$FERROSWAN_CORPUS/libreswan-secrets" "$FERROSWAN_CORPUS/strongswan-ipsecsecrets" -type f -size -16k | head -n 300 | xargs -r cp -t "$seeds" 2>/dev/null || true ;;
    esac
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "$seeds" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 2>&1 | tail -n 3
  done
)
echo "== all tests passed in $(( $(date +%s) - start )) s"
