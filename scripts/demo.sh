#!/bin/sh
# The seed's story end to end on the shipped captures: learn the service map from normal use
# (pcaps/baseline.pcap), detect on a capture with anomalies (pcaps/anomalies.pcap), print the
# report. Everything is written under out/demo/.
set -eu
cd "$(dirname "$0")/.."
out=out/demo
mkdir -p "$out"
rm -f "$out"/map.json "$out"/anomalies.log* "$out"/report.txt* "$out"/*.csv
common="-t 2 -m $out/map.json --log $out/anomalies.log --report $out/report.txt -q"

echo "== learn: ./svcsensor --learn -r pcaps/baseline.pcap $common --print none"
./svcsensor --learn -r pcaps/baseline.pcap $common --print none -o "$out/baseline.flows.csv"

echo
echo "== detect: ./svcsensor -r pcaps/anomalies.pcap $common --print anomalies"
./svcsensor -r pcaps/anomalies.pcap $common --print anomalies -o "$out/anomalies.flows.csv"

echo
echo "== report: ./svcsensor -a --report $out/report.txt"
./svcsensor -a --report "$out/report.txt"
echo
echo "Outputs in $out/: map.json (service map), anomalies.log (one JSON object per anomaly),"
echo "report.txt and report.txt.json, baseline.flows.csv and anomalies.flows.csv (flow export)."
