#!/usr/bin/python3
"""Check the committed captures against nDPI 4.2 (Debian's ndpiReader) and the manifest.

Usage:  /usr/bin/python3 pcaps/check.py [pcaps]

1. Rebuilds the flow lists of baseline.pcap and anomalies.pcap in memory (generate.py is
   deterministic), runs `ndpiReader -q -v 2 -i FILE -C CSV` on the files, and checks that every
   generated flow is one ndpiReader flow with the expected application name, and no other flow.
2. Learns the service map from ndpiReader's names for baseline.pcap (source = sender of the
   first packet, non-10.42.0.0/24 = "remote"), computes every anomalies.pcap flow's verdict,
   and checks it against anomalies.manifest.json: planted flows get their verdict, all other
   flows NONE.
3. Prints ndpiReader's view of the edge captures (flow count and names), for information.
Exit status 0 when all checks pass.
"""

import collections
import csv
import json
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate as g  # noqa: E402


def ndpi_flows(path):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "flows.csv")
        subprocess.run(["ndpiReader", "-q", "-v", "2", "-i", path, "-C", out],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if not os.path.exists(out):
            return []
        with open(out) as f:
            rows = list(csv.reader(f))
    if not rows:
        return []
    hdr = [h.lstrip("#") for h in rows[0]]
    return [dict(zip(hdr, r)) for r in rows[1:]]


def key(proto, a, ap, b, bp):
    return (int(proto), frozenset([(a, int(ap)), (b, int(bp))]))


def match(path, flows):
    """Returns (names per generated flow, list of problems)."""
    got = collections.defaultdict(list)
    for r in ndpi_flows(path):
        got[key(r["protocol"], r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"])].append(r)
    problems = []
    names = []
    for f in flows:
        k = key(f["proto"], f["src"], f["sport"], f["dst"], f["dport"])
        rs = got.pop(k, [])
        if len(rs) != 1:
            problems.append("%s: %s %s:%s -> %s:%s seen %d times by ndpiReader" %
                            (os.path.basename(path), f["proto"], f["src"], f["sport"], f["dst"], f["dport"], len(rs)))
            names.append(None)
            continue
        app = rs[0]["ndpi_proto"]
        names.append(app)
        if app != f["app"]:
            problems.append("%s: %s %s:%s -> %s:%s expected %s, ndpiReader says %s (%s)" %
                            (os.path.basename(path), f["proto"], f["src"], f["sport"], f["dst"], f["dport"],
                             f["app"], app, rs[0]["server_name_sni"]))
    for k, rs in got.items():
        for r in rs:
            problems.append("%s: unexpected ndpiReader flow %s %s:%s -> %s:%s %s" %
                            (os.path.basename(path), r["protocol"], r["src_ip"], r["src_port"], r["dst_ip"],
                             r["dst_port"], r["ndpi_proto"]))
    return names, problems


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    problems = []

    base = g.build_baseline()
    bnames, p = match(os.path.join(d, "baseline.pcap"), base.flows)
    problems += p
    learned = [dict(f, app=n) for f, n in zip(base.flows, bnames) if n is not None]
    m = g.learn_map(learned)

    anom, planted = g.build_anomalies(g.learn_map(base.flows))
    anames, p = match(os.path.join(d, "anomalies.pcap"), anom.flows)
    problems += p

    with open(os.path.join(d, "anomalies.manifest.json")) as fh:
        manifest = json.load(fh)
    want = {(a["protocol"], a["src_ip"], a["src_port"], a["dst_ip"], a["dst_port"]): a for a in manifest["anomalies"]}
    verdicts = collections.Counter()
    for f, n in zip(anom.flows, anames):
        if n is None:
            continue
        v = g.verdict(m, dict(f, app=n))
        verdicts[v] += 1
        k = (f["proto"], f["src"], f["sport"], f["dst"], f["dport"])
        a = want.pop(k, None)
        exp = a["verdict"] if a else "NONE"
        if v != exp:
            problems.append("anomalies.pcap: %r is %s (%s), manifest expects %s" % (k, v, n, exp))
        if a and a["app"] != n:
            problems.append("anomalies.pcap: %r app %s, manifest says %s" % (k, n, a["app"]))
    for k in want:
        problems.append("manifest flow %r not found in anomalies.pcap" % (k,))

    for name, flows in (("baseline.pcap", bnames), ("anomalies.pcap", anames)):
        c = collections.Counter(n for n in flows if n)
        print("%s: %d flows: %s" % (name, len(flows), ", ".join("%s %d" % kv for kv in sorted(c.items()))))
    print("anomalies.pcap verdicts (from ndpiReader names): %s" %
          ", ".join("%s %d" % kv for kv in sorted(verdicts.items())))

    ed = os.path.join(d, "edge")
    for fn in sorted(os.listdir(ed)):
        rows = ndpi_flows(os.path.join(ed, fn))
        c = collections.Counter(r["ndpi_proto"] for r in rows)
        print("edge/%s: ndpiReader %d flows: %s" % (fn, len(rows), ", ".join("%s %d" % kv for kv in sorted(c.items()))))

    for pr in problems:
        print("PROBLEM:", pr)
    print("OK" if not problems else "%d problems" % len(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
