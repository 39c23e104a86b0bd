#!/bin/sh
# Install exactly the Debian packages svcsensor needs to build, test, demo and bench.
# Idempotent and quiet when everything is already present.
set -eu
PKGS="build-essential pkg-config clang llvm libndpi-dev libndpi-bin liburcu-dev libpcap-dev
libjansson-dev libyajl-dev libcsv-dev libbpf-dev bpftool libcriterion-dev python3 python3-scapy tcpreplay iproute2
ethtool libclang-rt-14-dev time python3-cryptography universal-ctags"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "svcsensor: install-deps: missing packages:$missing (run as root)" >&2; exit 1
	fi
else SUDO=""; fi
echo "svcsensor: installing Debian packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
