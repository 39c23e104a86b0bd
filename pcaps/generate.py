#!/usr/bin/python3
"""svcsensor capture generator.

Usage:  /usr/bin/python3 pcaps/generate.py pcaps

Writes, under the given directory:
  baseline.pcap              ~1 h of normal use of a streaming device (the map is learned on it)
  anomalies.pcap             the next day: the same normal use plus the seed's anomalies
  anomalies.manifest.json    the planted anomalous flows and their expected verdicts
  edge/*.pcap[ng]            small captures for link types / encapsulations / IPv6 / fragments
  malformed/*                small broken captures (lying lengths, bad files)

Everything is deterministic: fixed seeds (one random.Random per output file), fixed base
timestamps, integer microsecond clocks, no wall clock, no set/dict-order dependence.  Running it
twice gives byte-identical files.  Nothing is ever sent on a network: the packets are only
built in memory and written to files.  Remote servers use the documentation ranges
192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24, which nDPI has in none of its IP lists, so
the application names come from the payloads (SNI, DNS names, HTTP Host, banners) only.

Needs Debian's python3-scapy and python3-cryptography (QUIC Initial protection, certificates).
pcaps/check.py compares the result with nDPI 4.2's ndpiReader and the manifest; README.md lists
every file, its flows and its purpose.
"""

import calendar
import hashlib
import hmac
import json
import os
import random
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509.oid import NameOID
import datetime

from scapy.config import conf
conf.verb = 0
from scapy.packet import Raw
from scapy.layers.inet import IP, TCP, UDP, ICMP, IPOption_Router_Alert, fragment
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrSegmentRouting, IPv6ExtHdrFragment, PadN)
from scapy.layers.dns import DNS, DNSQR, DNSRR

# ---------------------------------------------------------------------------------------------
# Fixed identities
# ---------------------------------------------------------------------------------------------

LOCAL_NET = "10.42.0.0/24"
DEV_IP = "10.42.0.130"          # the streaming device
GW_IP = "10.42.0.1"             # the gateway / DNS resolver (the hotspot of the seed)
NEW_IP = "10.42.0.96"           # a local host never seen in the baseline
DEV_MAC = "a8:23:fe:42:01:30"
GW_MAC = "dc:a6:32:42:00:01"
NEW_MAC = "00:1e:06:42:00:96"

BASE_BASELINE = calendar.timegm((2026, 1, 10, 20, 0, 0)) * 1000000
BASE_ANOMALIES = calendar.timegm((2026, 1, 11, 20, 0, 0)) * 1000000
BASE_EDGE = calendar.timegm((2026, 1, 12, 9, 0, 0)) * 1000000

SEC = 1000000
MS = 1000


def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))


def is_local(ip):
    return ip.startswith("10.42.0.")


def ip_mac(ip):
    """MAC of the L2 endpoint that carries packets for `ip` on the device's LAN."""
    if ip == DEV_IP:
        return DEV_MAC
    if ip == GW_IP:
        return GW_MAC
    if ip == NEW_IP:
        return NEW_MAC
    if ip == "255.255.255.255":
        return "ff:ff:ff:ff:ff:ff"
    first = int(ip.split(".")[0]) if "." in ip else 0
    if 224 <= first <= 239:
        o = [int(x) for x in ip.split(".")]
        return "01:00:5e:%02x:%02x:%02x" % (o[1] & 0x7f, o[2], o[3])
    return GW_MAC           # everything remote is behind the gateway


DEV6 = "2001:db8:42::130"       # the device on IPv6 (edge/ipv6.pcap)
GW6 = "2001:db8:42::1"


def mac6(ip):
    if ip == DEV6:
        return DEV_MAC
    if ip == GW6:
        return GW_MAC
    if ip.lower().startswith("ff"):
        return "33:33:00:00:00:%02x" % (int(ip.split(":")[-1] or "0", 16) & 0xff)
    return GW_MAC


# ---------------------------------------------------------------------------------------------
# Trace: timestamped L3 packets, encapsulated when written
# ---------------------------------------------------------------------------------------------

class Host:
    """An IP endpoint: keeps its IPv4 ID counter and TTL as seen on the LAN."""

    def __init__(self, ip, rng, ttl=64):
        self.ip = ip
        self.ttl = ttl
        self.ipid = rng.randrange(1, 65535)

    def next_id(self):
        self.ipid = (self.ipid + 1) & 0xffff
        return self.ipid


class Trace:
    """A list of packets (ts in integer microseconds) plus the registry of the flows built."""

    def __init__(self, rng):
        self.rng = rng
        self.ev = []           # (ts, seq, l3 bytes, src mac, dst mac, ethertype)
        self.flows = []        # dicts: src, dst, proto, sport, dport, app, kind, ...
        self.hosts = {}
        self.used_ports = set()
        self.v6_ext = None     # callable(src, dst, l4) -> list of IPv6 extension headers

    def host(self, ip):
        h = self.hosts.get(ip)
        if h is None:
            if is_local(ip) or ":" in ip:
                ttl = 64
            else:
                # remote hosts are some hops away: TTL as received on the LAN
                ttl = 64 - (8 + int(hashlib.sha256(ip.encode()).hexdigest(), 16) % 12)
            h = Host(ip, self.rng, ttl)
            self.hosts[ip] = h
        return h

    def add_l3(self, ts, l3, smac, dmac, ethertype=0x0800):
        self.ev.append((int(ts), len(self.ev), bytes(l3), smac, dmac, ethertype))

    def ip4(self, ts, src, dst, l4, proto=None, df=True, options=None, ttl=None):
        s = self.host(src)
        kw = {}
        if options:
            kw["options"] = options
        pkt = IP(src=src, dst=dst, ttl=ttl or s.ttl, id=s.next_id(), flags="DF" if df else 0, **kw) / l4
        if proto is not None:
            pkt[IP].proto = proto
        self.add_l3(ts, bytes(pkt), ip_mac(src), ip_mac(dst))

    def ip6(self, ts, src, dst, l4, ext=None):
        """IPv6 packet; ext is the list of extension header layers (or None) put before l4."""
        pkt = IPv6(src=src, dst=dst, hlim=self.host(src).ttl)
        for h in (ext or []):
            pkt = pkt / h
        pkt = pkt / l4
        self.add_l3(ts, bytes(pkt), mac6(src), mac6(dst), 0x86dd)

    def send(self, ts, src, dst, l4, df=True):
        """Send an L4 packet over IPv4 or IPv6 (chosen by the address); for IPv6 the trace's
        v6_ext hook may add extension headers."""
        if ":" in src:
            self.ip6(ts, src, dst, l4, self.v6_ext(src, dst, l4) if self.v6_ext else None)
        else:
            self.ip4(ts, src, dst, l4, df=df)

    def flow(self, **kw):
        self.flows.append(kw)
        return kw

    def sorted_events(self):
        return sorted(self.ev, key=lambda e: (e[0], e[1]))


# ---------------------------------------------------------------------------------------------
# Capture writers (hand-written so every byte is under control)
# ---------------------------------------------------------------------------------------------

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


def eth_frame(e, vlans=()):
    """Ethernet II frame; vlans = ((tpid, vid), ...) outermost first."""
    _, _, l3, smac, dmac, et = e
    hdr = mac_bytes(dmac) + mac_bytes(smac)
    for tpid, vid in vlans:
        hdr += struct.pack("!HH", tpid, vid & 0x0fff)
    hdr += struct.pack("!H", et)
    return hdr + l3


def sll_frame(e):
    """Linux cooked v1 (DLT 113): pkttype, ARPHRD, addr len, addr[8], protocol."""
    _, _, l3, smac, dmac, et = e
    pkttype = 4 if smac == DEV_MAC else 0          # 4 = outgoing, 0 = to us
    return struct.pack("!HHH", pkttype, 1, 6) + mac_bytes(smac) + b"\0\0" + struct.pack("!H", et) + l3


def sll2_frame(e, ifindex=3):
    """Linux cooked v2 (DLT 276): protocol, reserved, ifindex, ARPHRD, pkttype, addr len, addr[8]."""
    _, _, l3, smac, dmac, et = e
    pkttype = 4 if smac == DEV_MAC else 0
    return (struct.pack("!HHIHBB", et, 0, ifindex, 1, pkttype, 6) + mac_bytes(smac) + b"\0\0" + l3)


def pcap_header(linktype, snaplen=262144, magic=0xa1b2c3d4, endian="<"):
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(ts, data, wirelen=None, endian="<", nsec=False):
    if wirelen is None:
        wirelen = len(data)
    frac = (ts % SEC) * (1000 if nsec else 1)
    return struct.pack(endian + "IIII", ts // SEC, frac, len(data), wirelen) + data


def write_pcap(path, frames, linktype=LINKTYPE_ETHERNET, snaplen=262144):
    """frames: iterable of (ts, bytes). Frames longer than snaplen are cut like a capture would."""
    with open(path, "wb") as f:
        f.write(pcap_header(linktype, snaplen))
        for ts, data in frames:
            f.write(pcap_record(ts, data[:snaplen], len(data)))


def pcapng_block(btype, body):
    pad = (-len(body)) % 4
    total = 12 + len(body) + pad
    return struct.pack("<II", btype, total) + body + b"\0" * pad + struct.pack("<I", total)


def pcapng_opt(code, value):
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def write_pcapng(path, frames, linktype=LINKTYPE_ETHERNET, snaplen=262144, ifname=b"wlan0"):
    with open(path, "wb") as f:
        shb = struct.pack("<IHHq", 0x1a2b3c4d, 1, 0, -1)
        shb += pcapng_opt(4, b"svcsensor pcaps/generate.py") + pcapng_opt(0, b"")   # shb_userappl
        f.write(pcapng_block(0x0a0d0d0a, shb))
        idb = struct.pack("<HHI", linktype, 0, snaplen)
        idb += pcapng_opt(2, ifname) + pcapng_opt(9, b"\x06") + pcapng_opt(0, b"")  # if_name, if_tsresol=us
        f.write(pcapng_block(1, idb))
        for ts, data in frames:
            cap = data[:snaplen]
            epb = struct.pack("<IIIII", 0, ts >> 32, ts & 0xffffffff, len(cap), len(data)) + cap
            pad = (-len(cap)) % 4
            epb += b"\0" * pad
            f.write(pcapng_block(6, epb))


def eth_frames(trace, vlans=()):
    return [(e[0], eth_frame(e, vlans)) for e in trace.sorted_events()]


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def u8(v):
    return struct.pack("!B", v)


def u16(v):
    return struct.pack("!H", v)


def u24(v):
    return struct.pack("!I", v)[1:]


def u32(v):
    return struct.pack("!I", v)


def vec8(b):
    return u8(len(b)) + b


def vec16(b):
    return u16(len(b)) + b


def vec24(b):
    return u24(len(b)) + b


def ephemeral(tr):
    """A source port from Linux's default ephemeral range, never reused within one trace (so
    every flow has its own 5-tuple)."""
    while True:
        p = tr.rng.randrange(32768, 60999)
        if p not in tr.used_ports:
            tr.used_ports.add(p)
            return p


# ---------------------------------------------------------------------------------------------
# TCP conversation
# ---------------------------------------------------------------------------------------------

class TcpFlow:
    """One TCP connection between a client and a server, with its own clock `t` (us).

    Sequence/ack numbers are tracked exactly; the receiver ACKs every second full segment and
    the last one of a burst, as a Linux stack would.
    """

    def __init__(self, tr, t, cli, cport, srv, sport, rtt=30 * MS, mss=1448):
        self.tr, self.t = tr, int(t)
        self.cli, self.srv, self.cport, self.sport = cli, srv, cport, sport
        self.rtt = rtt
        self.mss = mss
        self.cseq = tr.rng.getrandbits(32)
        self.sseq = tr.rng.getrandbits(32)
        self.cwin = 502
        self.swin = 65535 if (tr.rng.random() < 0.5) else 501
        self.pkts = 0

    def send(self, from_cli, flags, payload=b"", options=None):
        if from_cli:
            src, dst, sp, dp, seq, ack, win = self.cli, self.srv, self.cport, self.sport, self.cseq, self.sseq, self.cwin
        else:
            src, dst, sp, dp, seq, ack, win = self.srv, self.cli, self.sport, self.cport, self.sseq, self.cseq, self.swin
        tcp = TCP(sport=sp, dport=dp, seq=seq, ack=ack if "A" in flags else 0, flags=flags, window=win,
                  options=options or [])
        if payload:
            tcp = tcp / Raw(payload)
        self.tr.send(self.t, src, dst, tcp)
        inc = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        if from_cli:
            self.cseq = (self.cseq + inc) & 0xffffffff
        else:
            self.sseq = (self.sseq + inc) & 0xffffffff
        self.pkts += 1

    def wait(self, us):
        self.t += int(us)

    def handshake(self):
        rng = self.tr.rng
        self.send(True, "S", options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (rng.getrandbits(32), 0)),
                                      ("NOP", None), ("WScale", 7)])
        self.wait(self.rtt)
        self.send(False, "SA", options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("NOP", None),
                                         ("NOP", None), ("WScale", 9)])
        self.wait(150)
        self.send(True, "A")
        self.wait(200)

    def data(self, from_cli, payload, gap=90, ack=True):
        """Send payload in MSS-sized segments, PSH on the last; the peer ACKs."""
        n = 0
        for i in range(0, len(payload), self.mss):
            seg = payload[i:i + self.mss]
            last = i + self.mss >= len(payload)
            self.send(from_cli, "PA" if last else "A", seg)
            n += 1
            self.wait(gap + self.tr.rng.randrange(0, gap + 1))
            if ack and (n % 2 == 0 or last):
                self.send(not from_cli, "A")
                self.wait(40)

    def exchange(self, req, resp, think=None, gap=90):
        """Client request, server response one RTT later."""
        if req:
            self.data(True, req, ack=False)
        self.wait(self.rtt if think is None else think)
        if resp:
            self.data(False, resp, gap=gap)

    def close(self, cli_first=True):
        self.send(cli_first, "FA")
        self.wait(self.rtt // 2 + 300)
        self.send(not cli_first, "FA")
        self.wait(self.rtt // 2 + 200)
        self.send(cli_first, "A")
        self.wait(100)

    def reset(self, from_cli=True):
        self.send(from_cli, "RA")


# ---------------------------------------------------------------------------------------------
# TLS records
# ---------------------------------------------------------------------------------------------

def ext(t, data):
    return u16(t) + vec16(data)


def sni_ext(name):
    n = name.encode()
    return ext(0, vec16(u8(0) + vec16(n)))


def alpn_ext(protos):
    return ext(0x10, vec16(b"".join(vec8(p) for p in protos)))


GREASE = [0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a, 0x8a8a, 0x9a9a, 0xaaaa, 0xbaba]


def client_hello(rng, sni, tls13=True, alpn=(b"h2", b"http/1.1"), quic_tp=None):
    """A TLS ClientHello handshake message (no record header), Chrome/Android-like."""
    grease = rng.choice(GREASE)
    if quic_tp is not None:
        suites = [0x1301, 0x1302, 0x1303]
        sid = b""
    else:
        suites = ([grease, 0x1301, 0x1302, 0x1303] if tls13 else []) + \
            [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
        sid = rng.randbytes(32) if tls13 else b""
    exts = []
    if quic_tp is None and tls13:
        exts.append(ext(grease, b""))
    exts.append(sni_ext(sni))
    if quic_tp is None:
        exts.append(ext(0x17, b""))                       # extended_master_secret
        exts.append(ext(0xff01, b"\x00"))                 # renegotiation_info
    exts.append(ext(0x0a, vec16(u16(0x001d) + u16(0x0017) + u16(0x0018))))   # supported_groups
    if quic_tp is None:
        exts.append(ext(0x0b, vec8(b"\x00")))             # ec_point_formats
        exts.append(ext(0x23, b""))                       # session_ticket
    exts.append(alpn_ext(alpn))
    exts.append(ext(0x05, b"\x01\x00\x00\x00\x00"))       # status_request
    exts.append(ext(0x0d, vec16(b"".join(u16(x) for x in
                                         (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)))))
    exts.append(ext(0x12, b""))                           # signed_certificate_timestamp
    if tls13 or quic_tp is not None:
        exts.append(ext(0x33, vec16(u16(0x001d) + vec16(rng.randbytes(32)))))   # key_share x25519
        exts.append(ext(0x2d, vec8(b"\x01")))             # psk_key_exchange_modes
        vers = (u16(0x0304),) if quic_tp is not None else (u16(0x0304), u16(0x0303))
        exts.append(ext(0x2b, vec8(b"".join(vers))))      # supported_versions
        exts.append(ext(0x1b, vec8(u16(0x0002))))         # compress_certificate brotli
    if quic_tp is not None:
        exts.append(ext(0x39, quic_tp))                   # quic_transport_parameters
    body = u16(0x0303) + rng.randbytes(32) + vec8(sid) + vec16(b"".join(u16(s) for s in suites)) + \
        vec8(b"\x00") + vec16(b"".join(exts))
    return u8(1) + vec24(body)


def server_hello(rng, sid, tls13=True, quic=False):
    if tls13:
        exts = ext(0x2b, u16(0x0304)) + ext(0x33, u16(0x001d) + vec16(rng.randbytes(32)))
        suite = 0x1301
    else:
        exts = ext(0xff01, b"\x00") + ext(0x0b, vec8(b"\x00")) + ext(0x17, b"") + alpn_ext((b"h2",))
        suite = 0xc02f
    body = u16(0x0303) + rng.randbytes(32) + vec8(b"" if quic else sid) + u16(suite) + u8(0) + vec16(exts)
    return u8(2) + vec24(body)


def record(ctype, body, version=0x0303):
    out = b""
    for i in range(0, max(len(body), 1), 16384):
        chunk = body[i:i + 16384]
        out += u8(ctype) + u16(version) + vec16(chunk)
    return out


CCS = record(0x14, b"\x01")

_CERT_CACHE = {}
_CA_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"svcsensor demo CA").digest())


def certificate_der(name):
    """A deterministic Ed25519 leaf certificate for `name`, signed by a fixed demo CA key."""
    if name in _CERT_CACHE:
        return _CERT_CACHE[name]
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"leaf " + name.encode()).digest())
    labels = name.split(".")
    wildcard = "*." + ".".join(labels[1:]) if len(labels) > 2 else name
    ser = int(hashlib.sha256(b"serial " + name.encode()).hexdigest()[:30], 16)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wildcard)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
                                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "svcsensor test data"),
                                    x509.NameAttribute(NameOID.COMMON_NAME, "svcsensor demo CA (not a real CA)")]))
            .public_key(key.public_key())
            .serial_number(ser)
            .not_valid_before(datetime.datetime(2025, 12, 1, 0, 0, 0))
            .not_valid_after(datetime.datetime(2026, 3, 1, 0, 0, 0))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(wildcard), x509.DNSName(".".join(labels[-2:]))]),
                           critical=False)
            .sign(_CA_KEY, None))
    der = cert.public_bytes(serialization.Encoding.DER)
    _CERT_CACHE[name] = der
    return der


def tls_session(tr, t, srv_ip, sni, tls13=True, requests=((600, 12000),), think=(80 * MS, 900 * MS),
                rtt=None, close=True, alpn=(b"h2", b"http/1.1"), client_close_notify=True, sport=443,
                cport=None, gap=90, cli=DEV_IP):
    """A full TLS-over-TCP connection: handshake, ClientHello with SNI, server flight, app data
    (requests = ((client bytes, server bytes), ...)), close_notify, FIN both ways, final ACK.
    Returns the flow (its end time in flow['end'])."""
    rng = tr.rng
    rtt = rtt if rtt is not None else rng.randrange(12, 45) * MS
    cport = cport if cport is not None else ephemeral(tr)
    f = TcpFlow(tr, t, cli, cport, srv_ip, sport, rtt=rtt)
    f.handshake()
    ch = client_hello(rng, sni, tls13=tls13, alpn=alpn)
    sid = ch[4 + 2 + 32 + 1: 4 + 2 + 32 + 1 + ch[4 + 2 + 32]]
    f.data(True, record(0x16, ch, 0x0301), ack=False)
    f.wait(rtt)
    if tls13:
        flight = record(0x16, server_hello(rng, sid, True)) + CCS + \
            record(0x17, rng.randbytes(rng.randrange(1600, 3200))) + record(0x17, rng.randbytes(53))
        f.data(False, flight)
        f.wait(2 * MS)
        f.data(True, CCS + record(0x17, rng.randbytes(53)), ack=False)
    else:
        cert = certificate_der(sni)
        certs = vec24(vec24(cert))
        skx = u8(3) + u16(0x001d) + vec8(rng.randbytes(32)) + u16(0x0807) + vec16(rng.randbytes(64))
        hs = server_hello(rng, sid, False) + u8(11) + vec24(certs) + u8(12) + vec24(skx) + u8(14) + u24(0)
        f.data(False, record(0x16, hs))
        f.wait(2 * MS)
        f.data(True, record(0x16, u8(16) + vec24(vec8(rng.randbytes(32)))) + CCS +
               record(0x16, rng.randbytes(40)), ack=False)
        f.wait(rtt)
        f.data(False, record(0x16, u8(4) + vec24(u32(7200) + vec16(rng.randbytes(192)))) + CCS +
               record(0x16, rng.randbytes(40)))
    f.wait(3 * MS)
    for i, (cb, sb) in enumerate(requests):
        if i:
            f.wait(rng.randrange(think[0], think[1]))
        f.data(True, record(0x17, rng.randbytes(cb)), ack=False)
        f.wait(rtt + rng.randrange(1, 40) * MS)
        if sb:
            f.data(False, record(0x17, rng.randbytes(sb)), gap=gap)
    if close:
        f.wait(rng.randrange(200, 3000) * MS)
        if client_close_notify:
            f.data(True, record(0x15, rng.randbytes(26)), ack=False)
        f.close(cli_first=True)
    return {"flow": f, "end": f.t, "sport": cport}


# ---------------------------------------------------------------------------------------------
# QUIC (RFC 9000/9001 v1 Initial packets, really protected)
# ---------------------------------------------------------------------------------------------

QUIC_V1_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand_label(secret, label, context, length):
    full = b"tls13 " + label
    info = u16(length) + vec8(full) + vec8(context)
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + u8(i), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def quic_initial_keys(dcid, server):
    init = hkdf_extract(QUIC_V1_SALT, dcid)
    sec = hkdf_expand_label(init, b"server in" if server else b"client in", b"", 32)
    return (hkdf_expand_label(sec, b"quic key", b"", 16), hkdf_expand_label(sec, b"quic iv", b"", 12),
            hkdf_expand_label(sec, b"quic hp", b"", 16))


def varint(v):
    if v < 0x40:
        return u8(v)
    if v < 0x4000:
        return u16(0x4000 | v)
    if v < 0x40000000:
        return u32(0x80000000 | v)
    return struct.pack("!Q", 0xc000000000000000 | v)


def quic_protect_long(ptype, dcid, scid, pn, frames, keys, token=b"", pad_to=None):
    """Build a long-header packet of type ptype (0 Initial, 2 Handshake), AEAD + header protection."""
    key, iv, hp = keys
    pn_len = 2
    first = 0xc0 | (ptype << 4) | (pn_len - 1)
    hdr = u8(first) + u32(1) + vec8(dcid) + vec8(scid)
    if ptype == 0:
        hdr += varint(len(token)) + token
    if pad_to:
        total = len(hdr) + 2 + pn_len + len(frames) + 16
        if total < pad_to:
            frames += b"\x00" * (pad_to - total)          # PADDING frames
    length = pn_len + len(frames) + 16
    hdr += u16(0x4000 | length) + pn.to_bytes(pn_len, "big")
    nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big")))
    ct = AESGCM(key).encrypt(nonce, frames, hdr)
    sample = ct[4 - pn_len: 4 - pn_len + 16]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    h = bytearray(hdr)
    h[0] ^= mask[0] & 0x0f
    pn_off = len(hdr) - pn_len
    for i in range(pn_len):
        h[pn_off + i] ^= mask[1 + i]
    return bytes(h) + ct


def quic_transport_params(rng, scid):
    def tp(i, v):
        return varint(i) + vec8(v) if len(v) < 64 else varint(i) + varint(len(v)) + v
    return (tp(0x01, varint(30000)) + tp(0x03, varint(1472)) + tp(0x04, varint(15728640)) +
            tp(0x05, varint(6291456)) + tp(0x06, varint(6291456)) + tp(0x07, varint(6291456)) +
            tp(0x08, varint(100)) + tp(0x09, varint(103)) + tp(0x0f, scid) +
            tp(0x3127, rng.randbytes(8)))                  # a GREASE parameter


def quic_session(tr, t, srv_ip, sni, down_pkts=60, up_ratio=6, alpn=(b"h3",), cport=None, cli=DEV_IP):
    """Client Initial (ClientHello + SNI, padded to 1250) → server Initial+Handshake → 1-RTT
    short-header traffic (random protected payloads) → end. Returns dict with end/sport."""
    rng = tr.rng
    cport = cport if cport is not None else ephemeral(tr)
    dcid = rng.randbytes(8)
    scid = b""                                  # Chrome-like: zero-length client CID
    server_cid = rng.randbytes(8)
    rtt = rng.randrange(10, 40) * MS
    now = int(t)

    def send(from_cli, payload):
        nonlocal now
        if from_cli:
            tr.send(now, cli, srv_ip, UDP(sport=cport, dport=443) / Raw(payload), df=True)
        else:
            tr.send(now, srv_ip, cli, UDP(sport=443, dport=cport) / Raw(payload), df=False)

    ch = client_hello(rng, sni, tls13=True, alpn=alpn, quic_tp=quic_transport_params(rng, scid))
    frames = u8(0x06) + varint(0) + varint(len(ch)) + ch
    send(True, quic_protect_long(0, dcid, scid, 0, frames, quic_initial_keys(dcid, False), pad_to=1250))
    now += rtt
    sh = server_hello(rng, b"", True, quic=True)
    sframes = u8(0x02) + varint(0) + varint(0) + varint(0) + varint(0) + \
        u8(0x06) + varint(0) + varint(len(sh)) + sh
    s_init = quic_protect_long(0, scid, server_cid, 0, sframes, quic_initial_keys(dcid, True))
    hs_keys = (rng.randbytes(16), rng.randbytes(12), rng.randbytes(16))        # stand-in handshake keys
    s_hs = quic_protect_long(2, scid, server_cid, 0, rng.randbytes(1000), hs_keys)
    send(False, s_init + s_hs)
    now += 300
    send(False, quic_protect_long(2, scid, server_cid, 1, rng.randbytes(1150), hs_keys))
    now += 2 * MS
    # client: ACK of the server Initial + Handshake finished, coalesced
    c_ack = quic_protect_long(0, server_cid, scid, 1, u8(0x02) + varint(0) + varint(0) + varint(0) + varint(0),
                              quic_initial_keys(dcid, False))
    c_hs = quic_protect_long(2, server_cid, scid, 0, rng.randbytes(60), hs_keys)
    send(True, c_ack + c_hs + b"\x40" + server_cid + rng.randbytes(rng.randrange(60, 120)))
    now += rtt
    sent = 0
    while sent < down_pkts:
        burst = min(down_pkts - sent, rng.randrange(8, 30))
        for i in range(burst):
            send(False, u8(0x40 | rng.randrange(0, 32)) + rng.randbytes(rng.randrange(1180, 1230)))
            now += rng.randrange(80, 260)
            if (i + 1) % up_ratio == 0:
                send(True, u8(0x40 | rng.randrange(0, 32)) + server_cid + rng.randbytes(rng.randrange(20, 40)))
                now += 50
        sent += burst
        send(True, u8(0x40 | rng.randrange(0, 32)) + server_cid + rng.randbytes(rng.randrange(20, 40)))
        now += rng.randrange(200, 4000) * MS
    # client closes: CONNECTION_CLOSE in a short packet
    send(True, u8(0x40 | rng.randrange(0, 32)) + server_cid + rng.randbytes(rng.randrange(30, 50)))
    return {"end": now, "sport": cport}


# ---------------------------------------------------------------------------------------------
# DNS, HTTP, NTP
# ---------------------------------------------------------------------------------------------

def dns_exchange(tr, t, names, answers, qtypes=("A",), sport=None, server=GW_IP, ttl=300, cli=DEV_IP):
    """One UDP flow: for each (name, qtype) a query and its answer, all from one socket.
    answers: name -> list of IPv4 strings (A) or a CNAME chain (list of ('CNAME', target))."""
    rng = tr.rng
    sport = sport if sport is not None else ephemeral(tr)
    now = int(t)
    for name in names:
        for qt in qtypes:
            qid = rng.getrandbits(16)
            q = DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype=qt))
            tr.send(now, cli, server, UDP(sport=sport, dport=53) / q, df=False)
            now += rng.randrange(2, 35) * MS
            an = None
            rrs = []
            if qt == "A":
                target = name
                for cname in answers.get(name, {}).get("cname", []):
                    rrs.append(DNSRR(rrname=target, type="CNAME", ttl=ttl, rdata=cname))
                    target = cname
                for a in answers.get(name, {}).get("a", []):
                    rrs.append(DNSRR(rrname=target, type="A", ttl=ttl, rdata=a))
            elif qt == "AAAA":
                target = name
                for cname in answers.get(name, {}).get("cname", []):
                    rrs.append(DNSRR(rrname=target, type="CNAME", ttl=ttl, rdata=cname))
                    target = cname
                for a in answers.get(name, {}).get("a", []):
                    o = a.split(".")
                    rrs.append(DNSRR(rrname=target, type="AAAA", ttl=ttl,
                                     rdata="2001:db8:%x:%x::%x" % (int(o[0]), int(o[1]), int(o[3]))))
            for rr in rrs:
                an = rr if an is None else an / rr
            r = DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype=qt), an=an)
            tr.send(now, server, cli, UDP(sport=53, dport=sport) / r, df=False)
            now += rng.randrange(1, 5) * MS
    return {"end": now, "sport": sport}


def http_session(tr, t, srv_ip, host, path="/", resp_body=2000, status=b"200 OK", ctype=b"text/html", cli=DEV_IP,
                 ua=b"Mozilla/5.0 (Linux; Android 11; SmartTV) AppleWebKit/537.36 (KHTML, like Gecko)"):
    rng = tr.rng
    cport = ephemeral(tr)
    f = TcpFlow(tr, t, cli, cport, srv_ip, 80, rtt=rng.randrange(15, 40) * MS)
    f.handshake()
    req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUser-Agent: " + ua +
           b"\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
    body = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 <>/=\"\n") for _ in range(resp_body))
    resp = (b"HTTP/1.1 " + status + b"\r\nDate: Sat, 10 Jan 2026 20:00:00 GMT\r\nServer: nginx\r\n" +
            b"Content-Type: " + ctype + b"\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\nConnection: close\r\n\r\n" + body)
    f.exchange(req, resp)
    f.wait(5 * MS)
    f.close(cli_first=False)           # HTTP/1.1 "Connection: close": the server closes first
    return {"end": f.t, "sport": cport}


NTP_EPOCH = 2208988800


def ntp_ts(us):
    sec = us // SEC + NTP_EPOCH
    frac = ((us % SEC) << 32) // SEC
    return struct.pack("!II", sec & 0xffffffff, frac)


def ntp_exchange(tr, t, srv_ip, sport=None, cli=DEV_IP):
    rng = tr.rng
    sport = sport if sport is not None else ephemeral(tr)
    now = int(t)
    req = u8(0x23) + u8(0) + u8(3) + u8(0xe9) + u32(0) + u32(0) + u32(0) + b"\0" * 24 + ntp_ts(now)
    tr.send(now, cli, srv_ip, UDP(sport=sport, dport=123) / Raw(req), df=True)
    later = now + rng.randrange(15, 45) * MS
    resp = (u8(0x24) + u8(2) + u8(3) + u8(0xe9) + u32(0x00000010) + u32(0x00000020) + bytes([192, 0, 2, 1]) +
            ntp_ts(now - 40 * SEC) + ntp_ts(now) + ntp_ts(now + 12 * MS) + ntp_ts(now + 12 * MS + 40))
    tr.send(later, srv_ip, cli, UDP(sport=123, dport=sport) / Raw(resp), df=False)
    return {"end": later, "sport": sport}


# ---------------------------------------------------------------------------------------------
# Services of the streaming device (names chosen for what nDPI 4.2 makes of them)
# ---------------------------------------------------------------------------------------------

# name -> (expected nDPI application for TLS/QUIC/HTTP by the name, expected DNS app, [IPs])
SERVICES = [
    # Prime Video
    ("atv-ps.amazon.com", "AmazonVideo", ["192.0.2.10", "192.0.2.11"]),
    ("atv-ext.amazon.com", "AmazonVideo", ["192.0.2.12"]),
    ("www.primevideo.com", "AmazonVideo", ["192.0.2.14"]),
    ("s3-dub-ww.cf.videorolls.row.aiv-cdn.net", "AmazonVideo", ["192.0.2.20", "192.0.2.21"]),
    ("a1v2c3.aiv-delivery.net", "AmazonVideo", ["192.0.2.22"]),
    ("dmqdd6hw24ucf.cloudfront.net", "AmazonVideo", ["192.0.2.24"]),
    ("m.media-amazon.com", "AmazonVideo", ["192.0.2.30"]),
    ("fls-eu.amazon.com", "Amazon", ["192.0.2.31"]),
    ("unagi.amazon.com", "Amazon", ["192.0.2.32"]),
    # Netflix
    ("www.netflix.com", "NetFlix", ["198.51.100.10"]),
    ("api-global.netflix.com", "NetFlix", ["198.51.100.11"]),
    ("ichnaea.netflix.com", "NetFlix", ["198.51.100.12"]),
    ("occ-0-2773-2774.1.nflxso.net", "NetFlix", ["198.51.100.14"]),
    ("ipv4-c042-fra002-ix.1.oca.nflxvideo.net", "NetFlix", ["198.51.100.20"]),
    ("ipv4-c017-mxp001-ix.1.oca.nflxvideo.net", "NetFlix", ["198.51.100.21"]),
    # YouTube / Google
    ("www.youtube.com", "YouTube", ["203.0.113.10"]),
    ("youtubei.googleapis.com", "YouTube", ["203.0.113.11"]),
    ("i.ytimg.com", "YouTube", ["203.0.113.12"]),
    ("rr3---sn-h5q7knes.googlevideo.com", "YouTube", ["203.0.113.20"]),
    ("rr5---sn-4g5lznlz.googlevideo.com", "YouTube", ["203.0.113.21"]),
    ("www.google.com", "Google", ["203.0.113.30"]),
    ("clients4.google.com", "Google", ["203.0.113.31"]),
    ("android.clients.google.com", "PlayStore", ["203.0.113.32"]),
    ("play.googleapis.com", "GoogleServices", ["203.0.113.33"]),
    ("connectivitycheck.gstatic.com", "Google", ["203.0.113.34"]),
    # the TV vendor and generic CDNs nDPI has no name for
    ("api.tvplatform-example.net", "", ["198.51.100.40"]),
    ("d3k8x7vy2m4pq9.cloudfront.net", "AmazonAWS", ["198.51.100.41"]),
    ("fw.tvplatform-example.net", "", ["198.51.100.42"]),
    ("pool.ntp.org", "", ["198.51.100.123"]),
]
SVC = {n: (app, ips) for n, app, ips in SERVICES}
DNS_ANSWERS = {n: {"a": ips} for n, app, ips in SERVICES}
# a few CNAME chains like real CDNs answer
DNS_ANSWERS["www.netflix.com"]["cname"] = ["www.dradis.netflix.com", "www.eu-west-1.internal.dradis.netflix.com"]
DNS_ANSWERS["i.ytimg.com"]["cname"] = ["ytimg.l.google.com"]
DNS_ANSWERS["www.primevideo.com"]["cname"] = ["d2ey3hmnbl8dkf.cloudfront.net"]

# names used by the anomalies only (new applications)
NEW_APPS = [
    ("www.wikipedia.org", "Wikipedia", ["198.51.100.60"]),
    ("en.wikipedia.org", "Wikipedia", ["198.51.100.60"]),
    ("github.com", "Github", ["198.51.100.61"]),
    ("www.reddit.com", "Reddit", ["198.51.100.62"]),
]
for n, app, ips in NEW_APPS:
    SVC[n] = (app, ips)
    DNS_ANSWERS[n] = {"a": ips}
DNS_ANSWERS["vps.example.net"] = {"a": ["203.0.113.22"]}
DNS_ANSWERS["tracker.opentrackr.org"] = {"a": ["203.0.113.180"]}


def app_name(master, name):
    sub = SVC[name][0] if name in SVC else ""
    return master + "." + sub if sub else master


# ---------------------------------------------------------------------------------------------
# Building blocks for activity: resolve-then-connect
# ---------------------------------------------------------------------------------------------

class Activity:
    def __init__(self, tr):
        self.tr = tr

    def resolve(self, t, names, aaaa=False):
        """The device resolves names (A, and AAAA from the same socket when aaaa)."""
        qt = ("A", "AAAA") if aaaa else ("A",)
        r = dns_exchange(self.tr, t, names, DNS_ANSWERS, qtypes=qt)
        self.tr.flow(src=DEV_IP, dst=GW_IP, proto=17, sport=r["sport"], dport=53,
                     app=app_name("DNS", names[0]), what="dns " + ",".join(names), start=t)
        return r["end"]

    def tls(self, t, name, **kw):
        ip = self.pick_ip(name)
        r = tls_session(self.tr, t, ip, name, **kw)
        self.tr.flow(src=DEV_IP, dst=ip, proto=6, sport=r["sport"], dport=kw.get("sport", 443),
                     app=app_name("TLS", name), what="tls " + name, start=t)
        return r["end"]

    def quic(self, t, name, **kw):
        ip = self.pick_ip(name)
        r = quic_session(self.tr, t, ip, name, **kw)
        self.tr.flow(src=DEV_IP, dst=ip, proto=17, sport=r["sport"], dport=443,
                     app=app_name("QUIC", name), what="quic " + name, start=t)
        return r["end"]

    def http(self, t, name, **kw):
        ip = self.pick_ip(name)
        r = http_session(self.tr, t, ip, name, **kw)
        self.tr.flow(src=DEV_IP, dst=ip, proto=6, sport=r["sport"], dport=80,
                     app=app_name("HTTP", name), what="http " + name, start=t)
        return r["end"]

    def ntp(self, t):
        ip = SVC["pool.ntp.org"][1][0]
        r = ntp_exchange(self.tr, t, ip)
        self.tr.flow(src=DEV_IP, dst=ip, proto=17, sport=r["sport"], dport=123, app="NTP",
                     what="ntp", start=t)
        return r["end"]

    def pick_ip(self, name):
        ips = SVC[name][1]
        return ips[self.tr.rng.randrange(len(ips))]


def bulk_requests(rng, chunks, chunk_kb=(16, 40)):
    """Video segment fetches: small request, big response."""
    return tuple((rng.randrange(380, 700), rng.randrange(chunk_kb[0], chunk_kb[1]) * 1024) for _ in range(chunks))


def small_requests(rng, n):
    return tuple((rng.randrange(300, 900), rng.randrange(150, 2200)) for _ in range(n))


def jitter(rng, ms=900):
    return rng.randrange(0, ms) * MS + rng.randrange(0, 1000)


# ---------------------------------------------------------------------------------------------
# Normal-use scenarios (shared by baseline and anomalies)
# ---------------------------------------------------------------------------------------------

def browse(a, t, names, n, spread_s, dns_p=0.6, reqs=(1, 4), tls12_p=0.0):
    """n short TLS connections to `names` over spread_s seconds, each resolved first with
    probability dns_p (otherwise the device's DNS cache answered)."""
    rng = a.tr.rng
    end = t
    for i in range(n):
        name = names[rng.randrange(len(names))]
        st = t + rng.randrange(0, spread_s * 1000) * MS + rng.randrange(0, 1000)
        if rng.random() < dns_p:
            st = a.resolve(st, [name])
        end = max(end, a.tls(st + 2 * MS, name, requests=small_requests(rng, rng.randrange(*reqs)),
                             tls13=rng.random() >= tls12_p))
    return end


def heartbeats(a, t, span_s, every_s, name, tls13=True):
    """Periodic telemetry/keep-alive connections (resolve + short TLS) during an activity."""
    rng = a.tr.rng
    end = t
    k = 1
    while k * every_s < span_s:
        st = t + k * every_s * SEC + jitter(rng, 5000)
        tt = a.resolve(st, [name])
        end = max(end, a.tls(tt + 2 * MS, name, requests=small_requests(rng, 1), tls13=tls13))
        k += 1
    return end


def sc_boot(a, t):
    """Device wakes up: NTP, connectivity check, Google services, vendor platform."""
    rng = a.tr.rng
    t += jitter(rng)
    t1 = a.resolve(t, ["pool.ntp.org"])
    a.ntp(t1 + 5 * MS)
    t2 = a.resolve(t + 40 * MS, ["connectivitycheck.gstatic.com"])
    a.http(t2 + 3 * MS, "connectivitycheck.gstatic.com", path="/generate_204", resp_body=0,
           status=b"204 No Content")
    t3 = a.resolve(t + 300 * MS, ["clients4.google.com"], aaaa=True)
    a.tls(t3 + 2 * MS, "clients4.google.com", requests=small_requests(rng, 2))
    t4 = a.resolve(t + 900 * MS, ["android.clients.google.com"])
    a.tls(t4 + 2 * MS, "android.clients.google.com", requests=small_requests(rng, 3), tls13=True)
    t5 = a.resolve(t + 1500 * MS, ["play.googleapis.com"])
    a.tls(t5 + 2 * MS, "play.googleapis.com", requests=small_requests(rng, 2))
    t6 = a.resolve(t + 2 * SEC, ["api.tvplatform-example.net"])
    a.tls(t6 + 2 * MS, "api.tvplatform-example.net", requests=small_requests(rng, 3), tls13=False)
    t7 = a.resolve(t + 3 * SEC, ["fw.tvplatform-example.net"])
    a.http(t7 + 2 * MS, "fw.tvplatform-example.net", path="/firmware/latest.xml?model=TV55", resp_body=1800,
           ctype=b"application/xml")
    end = browse(a, t + 4 * SEC, ["play.googleapis.com", "clients4.google.com", "www.google.com",
                                  "api.tvplatform-example.net", "d3k8x7vy2m4pq9.cloudfront.net"], 8, 20)
    return max(end, t + 8 * SEC)


def sc_primevideo(a, t, minutes=6, bulk_flows=3, aaaa=True, browse_n=12):
    rng = a.tr.rng
    t += jitter(rng)
    end = t
    tt = a.resolve(t, ["atv-ps.amazon.com"], aaaa=aaaa)
    end = max(end, a.tls(tt + 2 * MS, "atv-ps.amazon.com", requests=small_requests(rng, 5)))
    tt = a.resolve(t + 400 * MS, ["atv-ext.amazon.com"])
    end = max(end, a.tls(tt + 2 * MS, "atv-ext.amazon.com", requests=small_requests(rng, 3), tls13=False))
    tt = a.resolve(t + 700 * MS, ["www.primevideo.com"])
    end = max(end, a.tls(tt + 2 * MS, "www.primevideo.com", requests=small_requests(rng, 4)))
    tt = a.resolve(t + 1 * SEC, ["m.media-amazon.com"], aaaa=aaaa)
    for i in range(rng.randrange(3, 6)):        # catalogue artwork, several parallel connections
        end = max(end, a.tls(tt + 2 * MS + i * rng.randrange(30, 300) * MS, "m.media-amazon.com",
                             requests=small_requests(rng, rng.randrange(2, 8))))
    tt = a.resolve(t + 2 * SEC, ["fls-eu.amazon.com"])
    end = max(end, a.tls(tt + 2 * MS, "fls-eu.amazon.com", requests=small_requests(rng, 2)))
    tt = a.resolve(t + 6 * SEC, ["unagi.amazon.com"])
    end = max(end, a.tls(tt + 2 * MS, "unagi.amazon.com", requests=small_requests(rng, 2), tls13=False))
    # the user browses the catalogue for a while
    end = max(end, browse(a, t + 3 * SEC, ["m.media-amazon.com", "atv-ps.amazon.com", "www.primevideo.com",
                                           "atv-ext.amazon.com", "unagi.amazon.com"], browse_n, 30, tls12_p=0.3))
    # playback
    p = t + rng.randrange(35, 50) * SEC
    cdn = ["s3-dub-ww.cf.videorolls.row.aiv-cdn.net", "a1v2c3.aiv-delivery.net", "dmqdd6hw24ucf.cloudfront.net"]
    tt = a.resolve(p, cdn[:2], aaaa=False)
    tt = a.resolve(tt + 5 * MS, cdn[2:], aaaa=False)
    span = minutes * 60 * SEC
    for i in range(bulk_flows):
        name = cdn[i % len(cdn)]
        st = tt + 3 * MS + i * (span // bulk_flows)
        end = max(end, a.tls(st, name, requests=bulk_requests(rng, rng.randrange(9, 13) if i == 0 else rng.randrange(4, 6)), think=(4 * SEC, 12 * SEC),
                             gap=60))
    # playback telemetry and the odd artwork refresh
    end = max(end, heartbeats(a, p, minutes * 60, 40, "fls-eu.amazon.com"))
    end = max(end, heartbeats(a, p + 10 * SEC, minutes * 60, 75, "atv-ps.amazon.com"))
    return end


def sc_youtube(a, t, minutes=5, quic_bulk=2, aaaa=True, browse_n=12):
    rng = a.tr.rng
    t += jitter(rng)
    end = t
    tt = a.resolve(t, ["www.youtube.com"], aaaa=aaaa)
    end = max(end, a.tls(tt + 2 * MS, "www.youtube.com", requests=small_requests(rng, 4)))
    end = max(end, a.quic(tt + 30 * MS, "www.youtube.com", down_pkts=24))
    tt = a.resolve(t + 300 * MS, ["youtubei.googleapis.com"])
    end = max(end, a.tls(tt + 2 * MS, "youtubei.googleapis.com", requests=small_requests(rng, 6)))
    tt = a.resolve(t + 600 * MS, ["i.ytimg.com"], aaaa=aaaa)
    for i in range(rng.randrange(2, 5)):
        end = max(end, a.tls(tt + 2 * MS + i * rng.randrange(30, 300) * MS, "i.ytimg.com",
                             requests=small_requests(rng, rng.randrange(2, 6))))
    tt = a.resolve(t + 900 * MS, ["www.google.com"])
    end = max(end, a.quic(tt + 2 * MS, "www.google.com", down_pkts=12))
    end = max(end, browse(a, t + 2 * SEC, ["i.ytimg.com", "youtubei.googleapis.com", "www.youtube.com",
                                           "play.googleapis.com"], browse_n, 25))
    p = t + rng.randrange(25, 40) * SEC
    vids = ["rr3---sn-h5q7knes.googlevideo.com", "rr5---sn-4g5lznlz.googlevideo.com"]
    tt = a.resolve(p, vids[:1])
    tt = a.resolve(tt + 5 * MS, vids[1:])
    span = minutes * 60 * SEC
    for i in range(quic_bulk):
        st = tt + 5 * MS + i * (span // (quic_bulk + 1))
        end = max(end, a.quic(st, vids[i % 2], down_pkts=rng.randrange(90, 160)))
    st = tt + 5 * MS + quic_bulk * (span // (quic_bulk + 1))
    end = max(end, a.tls(st, vids[0], requests=bulk_requests(rng, rng.randrange(3, 5)), think=(4 * SEC, 10 * SEC),
                         gap=60))
    end = max(end, heartbeats(a, p, minutes * 60, 45, "youtubei.googleapis.com"))
    end = max(end, heartbeats(a, p + 20 * SEC, minutes * 60, 90, "www.youtube.com"))
    return end


def sc_netflix(a, t, minutes=6, bulk_flows=3, aaaa=True, browse_n=12):
    rng = a.tr.rng
    t += jitter(rng)
    end = t
    tt = a.resolve(t, ["www.netflix.com"], aaaa=aaaa)
    end = max(end, a.tls(tt + 2 * MS, "www.netflix.com", requests=small_requests(rng, 3)))
    tt = a.resolve(t + 250 * MS, ["api-global.netflix.com"])
    end = max(end, a.tls(tt + 2 * MS, "api-global.netflix.com", requests=small_requests(rng, 8)))
    tt = a.resolve(t + 500 * MS, ["occ-0-2773-2774.1.nflxso.net"])
    for i in range(rng.randrange(3, 6)):
        end = max(end, a.tls(tt + 2 * MS + i * rng.randrange(30, 300) * MS, "occ-0-2773-2774.1.nflxso.net",
                             requests=small_requests(rng, rng.randrange(2, 8))))
    tt = a.resolve(t + 3 * SEC, ["ichnaea.netflix.com"])
    end = max(end, a.tls(tt + 2 * MS, "ichnaea.netflix.com", requests=small_requests(rng, 2)))
    end = max(end, browse(a, t + 4 * SEC, ["occ-0-2773-2774.1.nflxso.net", "api-global.netflix.com",
                                           "www.netflix.com", "ichnaea.netflix.com"], browse_n, 30))
    p = t + rng.randrange(35, 50) * SEC
    cdn = ["ipv4-c042-fra002-ix.1.oca.nflxvideo.net", "ipv4-c017-mxp001-ix.1.oca.nflxvideo.net"]
    tt = a.resolve(p, cdn[:1])
    tt = a.resolve(tt + 3 * MS, cdn[1:])
    span = minutes * 60 * SEC
    for i in range(bulk_flows):
        st = tt + 3 * MS + i * (span // bulk_flows)
        end = max(end, a.tls(st, cdn[i % 2], requests=bulk_requests(rng, rng.randrange(9, 13) if i == 0 else rng.randrange(4, 6)),
                             think=(4 * SEC, 12 * SEC), gap=60))
    end = max(end, heartbeats(a, p, minutes * 60, 35, "ichnaea.netflix.com"))
    end = max(end, heartbeats(a, p + 15 * SEC, minutes * 60, 60, "api-global.netflix.com"))
    return end


def sc_background(a, t):
    """Idle device: periodic check-ins."""
    rng = a.tr.rng
    t += jitter(rng)
    end = a.resolve(t, ["connectivitycheck.gstatic.com"])
    end = a.http(end + 2 * MS, "connectivitycheck.gstatic.com", path="/generate_204", resp_body=0,
                 status=b"204 No Content")
    tt = a.resolve(t + 2 * SEC, ["api.tvplatform-example.net"])
    end = max(end, a.tls(tt + 2 * MS, "api.tvplatform-example.net", requests=small_requests(rng, 2), tls13=False))
    tt = a.resolve(t + 4 * SEC, ["d3k8x7vy2m4pq9.cloudfront.net"])
    end = max(end, a.tls(tt + 2 * MS, "d3k8x7vy2m4pq9.cloudfront.net", requests=small_requests(rng, 3)))
    tt = a.resolve(t + 6 * SEC, ["fw.tvplatform-example.net"])
    end = max(end, a.http(tt + 2 * MS, "fw.tvplatform-example.net", path="/firmware/latest.xml?model=TV55",
                          resp_body=1800, ctype=b"application/xml"))
    tt = a.resolve(t + 9 * SEC, ["pool.ntp.org"])
    end = max(end, a.ntp(tt + 2 * MS))
    tt = a.resolve(t + 12 * SEC, ["play.googleapis.com"])
    end = max(end, a.tls(tt + 2 * MS, "play.googleapis.com", requests=small_requests(rng, 2)))
    end = max(end, browse(a, t + 14 * SEC, ["clients4.google.com", "android.clients.google.com",
                                            "api.tvplatform-example.net", "unagi.amazon.com"], 5, 20))
    return end


# ---------------------------------------------------------------------------------------------
# Anomalous activity (anomalies.pcap)
# ---------------------------------------------------------------------------------------------

def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):     # keys sorted, as bencoding requires (and deterministic)
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(v)


def bt_msg(mid, payload=b""):
    return u32(1 + len(payload)) + u8(mid) + payload


def bittorrent_peer(tr, t, peer_ip, peer_port, info_hash, my_id, peer_id, blocks):
    """A BitTorrent peer-wire connection: handshake both ways, extension handshake, bitfield,
    interested/unchoke, request/piece exchanges (16 KiB blocks), then FIN."""
    rng = tr.rng
    cport = ephemeral(tr)
    f = TcpFlow(tr, t, DEV_IP, cport, peer_ip, peer_port, rtt=rng.randrange(30, 160) * MS)
    f.handshake()
    reserved = bytes([0, 0, 0, 0, 0, 0x10, 0, 0x05])
    hs_c = b"\x13BitTorrent protocol" + reserved + info_hash + my_id
    ext_c = bt_msg(20, b"\x00" + bencode({b"m": {b"ut_metadata": 3, b"ut_pex": 1}, b"p": 6881,
                                          b"v": b"qBittorrent/4.5.2", b"reqq": 500}))
    f.data(True, hs_c + ext_c, ack=False)
    f.wait(f.rtt)
    hs_s = b"\x13BitTorrent protocol" + reserved + info_hash + peer_id
    ext_s = bt_msg(20, b"\x00" + bencode({b"m": {b"ut_metadata": 2, b"ut_pex": 1}, b"v": b"Transmission 3.00",
                                          b"reqq": 512}))
    npieces = 1200
    bitfield = bytes(rng.choice((0xff, 0xff, 0xff, 0xfe, 0xbf)) for _ in range(npieces // 8))
    f.data(False, hs_s + ext_s + bt_msg(5, bitfield))
    f.wait(5 * MS)
    f.data(True, bt_msg(2), ack=False)                   # interested
    f.wait(f.rtt)
    f.data(False, bt_msg(1))                             # unchoke
    f.wait(3 * MS)
    piece = rng.randrange(npieces)
    done = 0
    while done < blocks:
        n = min(4, blocks - done)
        reqs = b"".join(bt_msg(6, u32(piece) + u32((done + i) * 16384) + u32(16384)) for i in range(n))
        f.data(True, reqs, ack=False)
        f.wait(f.rtt)
        data = b"".join(bt_msg(7, u32(piece) + u32((done + i) * 16384) + rng.randbytes(16384)) for i in range(n))
        f.data(False, data, gap=120)
        done += n
        f.wait(rng.randrange(5, 60) * MS)
        if done % 16 == 0:
            f.data(True, bt_msg(4, u32(piece)), ack=False)   # have
            piece = rng.randrange(npieces)
    f.wait(rng.randrange(500, 4000) * MS)
    f.close(cli_first=rng.random() < 0.5)
    return {"end": f.t, "sport": cport}


def dht_exchange(tr, t, node_ip, node_port, my_id, info_hash, sport=6881):
    """Mainline DHT (BEP 5) over UDP: get_peers / find_node queries and their bencoded replies."""
    rng = tr.rng
    now = int(t)
    for i, q in enumerate((b"get_peers", b"find_node")):
        tid = rng.randbytes(2)
        args = {b"id": my_id}
        if q == b"get_peers":
            args[b"info_hash"] = info_hash
        else:
            args[b"target"] = rng.randbytes(20)
        tr.ip4(now, DEV_IP, node_ip, UDP(sport=sport, dport=node_port) /
               Raw(bencode({b"a": args, b"q": q, b"t": tid, b"y": b"q", b"v": b"qB\x45\x02"})), df=False)
        now += rng.randrange(40, 250) * MS
        nodes = b"".join(rng.randbytes(20) + bytes([198, 51, 100, rng.randrange(100, 250)]) +
                         u16(rng.randrange(1025, 65535)) for _ in range(8))
        r = {b"id": rng.randbytes(20), b"nodes": nodes}
        if q == b"get_peers":
            r[b"token"] = rng.randbytes(8)
        tr.ip4(now, node_ip, DEV_IP, UDP(sport=node_port, dport=sport) /
               Raw(bencode({b"r": r, b"t": tid, b"y": b"r"})), df=False)
        now += rng.randrange(300, 2000) * MS
    return {"end": now, "sport": sport}


def ssh_string(b):
    return u32(len(b)) + b


def ssh_packet(rng, payload, block=8):
    padlen = block - ((5 + len(payload)) % block)
    if padlen < 4:
        padlen += block
    return u32(1 + len(payload) + padlen) + u8(padlen) + payload + rng.randbytes(padlen)


def ssh_kexinit(rng, server):
    lists = [b"curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group16-sha512,"
             b"ext-info-" + (b"s" if server else b"c") + b",kex-strict-" + (b"s" if server else b"c") + b"-v00@openssh.com",
             b"ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256" if not server else b"rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256,ssh-ed25519",
             b"chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
             b"chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
             b"umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com",
             b"umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com",
             b"none,zlib@openssh.com", b"none,zlib@openssh.com", b"", b""]
    payload = u8(20) + rng.randbytes(16) + b"".join(ssh_string(x) for x in lists) + u8(0) + u32(0)
    return ssh_packet(rng, payload)


def ssh_session(tr, t, srv_ip, keystrokes=60):
    """SSH-2.0 to a remote host: banners both ways, KEXINIT both ways, ECDH, NEWKEYS, then an
    interactive session (chacha20-poly1305 sized records), exit, FIN."""
    rng = tr.rng
    cport = ephemeral(tr)
    f = TcpFlow(tr, t, DEV_IP, cport, srv_ip, 22, rtt=rng.randrange(20, 60) * MS)
    f.handshake()
    f.data(True, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", ack=False)
    f.wait(f.rtt)
    f.data(False, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2\r\n")
    f.wait(1 * MS)
    f.data(True, ssh_kexinit(rng, False), ack=False)
    f.wait(f.rtt // 2)
    f.data(False, ssh_kexinit(rng, True))
    f.wait(2 * MS)
    f.data(True, ssh_packet(rng, u8(30) + ssh_string(rng.randbytes(32))), ack=False)
    f.wait(f.rtt + 3 * MS)
    hostkey = ssh_string(b"ssh-ed25519") + ssh_string(rng.randbytes(32))
    sig = ssh_string(ssh_string(b"ssh-ed25519") + ssh_string(rng.randbytes(64)))
    f.data(False, ssh_packet(rng, u8(31) + ssh_string(hostkey) + ssh_string(rng.randbytes(32)) + sig) +
           ssh_packet(rng, u8(21)))
    f.wait(2 * MS)
    f.data(True, ssh_packet(rng, u8(21)), ack=False)
    f.wait(2 * MS)

    def enc(n):
        return rng.randbytes(4 + n + 16)               # length + payload (mult. of 8) + poly1305 tag
    # service request, auth (publickey), channel open, pty, shell
    for cb, sb in ((32, 32), (48, 64), (392, 48), (64, 48), (120, 32), (32, 480)):
        f.data(True, enc(cb), ack=False)
        f.wait(f.rtt + rng.randrange(1, 20) * MS)
        f.data(False, enc(sb))
        f.wait(rng.randrange(5, 200) * MS)
    for i in range(keystrokes):
        f.data(True, enc(32), ack=False)
        f.wait(f.rtt)
        f.data(False, enc(32 if rng.random() < 0.8 else rng.randrange(64, 1400) // 8 * 8))
        f.wait(rng.randrange(80, 900) * MS)
    f.data(True, enc(32), ack=False)                    # exit
    f.wait(f.rtt)
    f.data(False, enc(96))
    f.wait(5 * MS)
    f.close(cli_first=False)
    return {"end": f.t, "sport": cport}


def opaque_tcp(tr, t, srv_ip, dport, rounds=12):
    """A TCP conversation of random bytes (a private protocol nDPI has no dissector for)."""
    rng = tr.rng
    cport = ephemeral(tr)
    f = TcpFlow(tr, t, DEV_IP, cport, srv_ip, dport, rtt=rng.randrange(1, 4) * MS)
    f.handshake()
    for i in range(rounds):
        f.data(True, b"\x00\x00" + rng.randbytes(rng.randrange(40, 300)), ack=False)
        f.wait(f.rtt)
        f.data(False, b"\x00\x00" + rng.randbytes(rng.randrange(200, 3000)))
        f.wait(rng.randrange(100, 1500) * MS)
    f.close()
    return {"end": f.t, "sport": cport}


def opaque_udp(tr, t, srv_ip, dport, rounds=15):
    """A UDP conversation of random bytes."""
    rng = tr.rng
    sport = ephemeral(tr)
    now = int(t)
    for i in range(rounds):
        tr.ip4(now, DEV_IP, srv_ip, UDP(sport=sport, dport=dport) / Raw(b"\x00\x00" + rng.randbytes(rng.randrange(40, 500))),
               df=False)
        now += rng.randrange(5, 60) * MS
        tr.ip4(now, srv_ip, DEV_IP, UDP(sport=dport, dport=sport) / Raw(b"\x00\x00" + rng.randbytes(rng.randrange(40, 900))),
               df=False)
        now += rng.randrange(200, 2500) * MS
    return {"end": now, "sport": sport}


def icmp_echo(tr, t, src, dst, count=4, ident=0x1a2b, size=56):
    rng = tr.rng
    now = int(t)
    for seq in range(1, count + 1):
        data = struct.pack("!II", (now // SEC) & 0xffffffff, now % SEC) + bytes(range(16, 16 + size - 8))
        tr.ip4(now, src, dst, ICMP(type=8, id=ident, seq=seq) / Raw(data))
        tr.ip4(now + rng.randrange(800, 4000), dst, src, ICMP(type=0, id=ident, seq=seq) / Raw(data), df=False)
        now += SEC + rng.randrange(0, 2000)
    return {"end": now}


def igmp_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return (~s) & 0xffff


def igmpv3_report(group, rtype=4):
    rec = u8(rtype) + u8(0) + u16(0) + bytes(int(x) for x in group.split("."))
    body = u8(0x22) + u8(0) + u16(0) + u16(0) + u16(1) + rec
    return body[:2] + u16(igmp_checksum(body)) + body[4:]


def ssdp_msearch(tr, t, count=3, st=b"urn:dial-multiscreen-org:service:dial:1"):
    rng = tr.rng
    sport = ephemeral(tr)
    now = int(t)
    msg = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: " + st +
           b"\r\nUSER-AGENT: Linux/4.19 UPnP/1.0 SmartTV/1.0\r\n\r\n")
    for i in range(count):
        tr.ip4(now, DEV_IP, "239.255.255.250", UDP(sport=sport, dport=1900) / Raw(msg), df=False, ttl=2)
        now += rng.randrange(100, 1200) * MS
    return {"end": now, "sport": sport}


# ---------------------------------------------------------------------------------------------
# The service map and verdicts (as SPEC.md defines them), to write the manifest
# ---------------------------------------------------------------------------------------------

def host_key(ip):
    return ip if is_local(ip) else "remote"


def learn_map(flows):
    m = {}
    for f in flows:
        m.setdefault(host_key(f["src"]), {}).setdefault(host_key(f["dst"]), set()).add(f["app"])
    return m


def verdict(m, f, dns_tls_masters=("DNS", "TLS")):
    s, d, app = host_key(f["src"]), host_key(f["dst"]), f["app"]
    if s not in m:
        return "UNKNOWN_SOURCE_IP"
    if d not in m[s]:
        return "UNKNOWN_DESTINATION_IP"
    if app in m[s][d]:
        return "NONE"
    if app == "Unknown":
        return "UNKNOWN_PROTOCOL"
    if app.split(".")[0] in dns_tls_masters and "." in app:
        return "DNS_TLS_APPLICATION"
    return "PROTOCOL_NEVER_USED"


# ---------------------------------------------------------------------------------------------
# baseline.pcap and anomalies.pcap
# ---------------------------------------------------------------------------------------------

def build_baseline():
    tr = Trace(random.Random(0x5eed0001))
    a = Activity(tr)
    t = BASE_BASELINE + 2 * SEC
    gaps = []

    def idle(end, secs):
        gaps.append(secs)
        return end + secs * SEC

    t = idle(sc_boot(a, t), 150)
    t = idle(sc_primevideo(a, t, minutes=7, bulk_flows=2), 170)
    t = idle(sc_youtube(a, t, minutes=6, quic_bulk=2), 200)
    t = idle(sc_background(a, t), 135)
    t = idle(sc_netflix(a, t, minutes=7, bulk_flows=2), 240)
    t = idle(sc_background(a, t), 125)
    t = idle(sc_primevideo(a, t, minutes=4, bulk_flows=2, aaaa=False), 160)
    t = idle(sc_youtube(a, t, minutes=3, quic_bulk=1, aaaa=False), 280)
    t = idle(sc_background(a, t), 190)
    t = sc_background(a, t)
    return tr


def build_anomalies(base_map):
    tr = Trace(random.Random(0x5eed0002))
    a = Activity(tr)
    planted = []

    def plant(f, expected_app, note):
        f = dict(f)
        f["app"] = expected_app
        f["note"] = note
        planted.append(f)
        tr.flows.append(f)

    rng = tr.rng
    t0 = BASE_ANOMALIES + 3 * SEC
    # --- normal start of the evening
    t = sc_boot(a, t0)
    sc_youtube(a, t + 5 * SEC, minutes=4, quic_bulk=1)

    # --- BitTorrent (while YouTube plays): DNS for a tracker, TCP peers, DHT nodes
    bt = t + 40 * SEC
    a.resolve(bt, ["tracker.opentrackr.org"])
    info_hash = hashlib.sha1(b"svcsensor demo torrent").digest()
    my_id = b"-qB4520-" + bytes(rng.choice(b"0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(12))
    dht_id = hashlib.sha1(b"svcsensor dht node").digest()
    for i in range(10):
        peer = "198.51.100.%d" % (200 + i)
        port = (51413, 6881, 49152 + i * 7, 58000 + i, 6889, 50321, 6881, 40001 + i, 55555, 61000 + i)[i]
        pid = b"-TR3000-" + rng.randbytes(12)
        st = bt + 2 * SEC + i * rng.randrange(2, 9) * SEC
        r = bittorrent_peer(tr, st, peer, port, info_hash, my_id, pid, blocks=rng.randrange(2, 7))
        plant(dict(src=DEV_IP, dst=peer, proto=6, sport=r["sport"], dport=port, start=st),
              "BitTorrent", "BitTorrent peer wire (TCP handshake)")
    for i in range(8):
        node = "203.0.113.%d" % (200 + i)
        port = (6881, 51413, 23456 + i, 6881, 33333, 42000 + i, 6882, 50000 + i)[i]
        st = bt + 1 * SEC + i * rng.randrange(1, 6) * SEC
        r = dht_exchange(tr, st, node, port, dht_id, info_hash)
        plant(dict(src=DEV_IP, dst=node, proto=17, sport=r["sport"], dport=port, start=st),
              "BitTorrent", "BitTorrent DHT (bencoded UDP)")
    t = bt + 150 * SEC

    # --- Prime Video with SSH to a remote host in the middle
    pv = t
    sc_primevideo(a, pv, minutes=4, bulk_flows=2)
    tt = a.resolve(pv + 60 * SEC, ["vps.example.net"])
    r = ssh_session(tr, tt + 5 * MS, "203.0.113.22", keystrokes=70)
    plant(dict(src=DEV_IP, dst="203.0.113.22", proto=6, sport=r["sport"], dport=22, start=tt),
          "SSH", "SSH to a remote host (OpenSSH banners + KEXINIT)")

    # --- a never-seen local host, unknown protocol (TCP and UDP)
    nh = pv + 150 * SEC
    r = opaque_tcp(tr, nh, NEW_IP, 47613)
    plant(dict(src=DEV_IP, dst=NEW_IP, proto=6, sport=r["sport"], dport=47613, start=nh),
          "Unknown", "new local host 10.42.0.96, random bytes on TCP 47613")
    r = opaque_udp(tr, nh + 20 * SEC, NEW_IP, 47613)
    plant(dict(src=DEV_IP, dst=NEW_IP, proto=17, sport=r["sport"], dport=47613, start=nh + 20 * SEC),
          "Unknown", "new local host 10.42.0.96, random bytes on UDP 47613")

    # --- the gateway pings the device
    ic = pv + 200 * SEC
    icmp_echo(tr, ic, GW_IP, DEV_IP, count=4)
    plant(dict(src=GW_IP, dst=DEV_IP, proto=1, sport=0, dport=0, start=ic),
          "ICMP", "ICMP echo from the gateway to the device")

    t = pv + 5 * 60 * SEC + 150 * SEC

    # --- new applications: Wikipedia, GitHub, Reddit (DNS and TLS), while Netflix plays
    nf = t
    sc_netflix(a, nf, minutes=4, bulk_flows=2)
    for i, (name, _app, _ips) in enumerate(NEW_APPS):
        st = nf + 30 * SEC + i * 20 * SEC
        tt = a.resolve(st, [name], aaaa=(i % 2 == 0))
        plant(tr.flows.pop(), app_name("DNS", name), "DNS query for a new application")
        for k in range(2 if i != 1 else 1):
            a.tls(tt + 2 * MS + k * 700 * MS, name, requests=small_requests(rng, rng.randrange(2, 6)),
                  tls13=(k == 0))
            plant(tr.flows.pop(), app_name("TLS", name), "TLS to a new application")

    # --- multicast: IGMP join and SSDP discovery
    mc = nf + 150 * SEC
    tr.ip4(mc, DEV_IP, "224.0.0.22", Raw(igmpv3_report("239.255.255.250")), proto=2, df=False, ttl=1,
           options=[IPOption_Router_Alert()])
    tr.ip4(mc + 600 * MS, DEV_IP, "224.0.0.22", Raw(igmpv3_report("239.255.255.250")), proto=2, df=False, ttl=1,
           options=[IPOption_Router_Alert()])
    plant(dict(src=DEV_IP, dst="224.0.0.22", proto=2, sport=0, dport=0, start=mc),
          "IGMP", "IGMPv3 membership report (join 239.255.255.250)")
    r = ssdp_msearch(tr, mc + 1 * SEC)
    plant(dict(src=DEV_IP, dst="239.255.255.250", proto=17, sport=r["sport"], dport=1900, start=mc + 1 * SEC),
          "SSDP", "SSDP M-SEARCH to 239.255.255.250:1900")

    # --- an unclassifiable UDP flow to a remote host
    uu = nf + 180 * SEC
    r = opaque_udp(tr, uu, "203.0.113.77", 29871, rounds=12)
    plant(dict(src=DEV_IP, dst="203.0.113.77", proto=17, sport=r["sport"], dport=29871, start=uu),
          "Unknown", "random bytes over UDP to a remote host")

    t = nf + 7 * 60 * SEC
    sc_background(a, t)

    for f in planted:
        f["verdict"] = verdict(base_map, f)
    return tr, planted


# ---------------------------------------------------------------------------------------------
# Edge-case captures
# ---------------------------------------------------------------------------------------------

def edge_mix(seed, t0=BASE_EDGE):
    """A small, complete mix: DNS, TLS 1.3, TLS 1.2, QUIC, HTTP, NTP (6 flows)."""
    tr = Trace(random.Random(seed))
    a = Activity(tr)
    tt = a.resolve(t0, ["www.netflix.com"])
    a.tls(tt + 2 * MS, "www.netflix.com", requests=small_requests(tr.rng, 2))
    a.tls(t0 + 1 * SEC, "atv-ps.amazon.com", requests=small_requests(tr.rng, 2), tls13=False)
    a.quic(t0 + 2 * SEC, "www.youtube.com", down_pkts=10)
    a.http(t0 + 3 * SEC, "connectivitycheck.gstatic.com", path="/generate_204", resp_body=0,
           status=b"204 No Content")
    a.ntp(t0 + 4 * SEC)
    return tr


def build_ipv6(seed):
    """IPv6 flows whose packets carry extension headers before the transport header."""
    tr = Trace(random.Random(seed))
    rng = tr.rng
    t0 = BASE_EDGE
    remote_yt = "2001:db8:ff00::10"
    remote_g = "2001:db8:ff00::30"
    answers = {"www.youtube.com": {"a": ["203.0.113.10"]}}
    flows = []

    # 1) DNS over IPv6: every packet has a Hop-by-Hop header (PadN option) before UDP
    tr.v6_ext = lambda s, d, l4: [IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0\0\0\0")])]
    r = dns_exchange(tr, t0, ["www.youtube.com"], answers, qtypes=("AAAA",), server=GW6, cli=DEV6)
    flows.append(dict(src=DEV6, dst=GW6, proto=17, sport=r["sport"], dport=53, app="DNS.YouTube",
                      what="DNS over IPv6, Hop-by-Hop before UDP"))

    # 2) TLS over IPv6: client packets HBH + Destination Options + Routing (SRH, segleft 0);
    #    server packets Destination Options only
    def ext2(s, d, l4):
        if s == DEV6:
            return [IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0\0\0\0")]),
                    IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0\0\0\0")]),
                    IPv6ExtHdrSegmentRouting(addresses=[d], segleft=0, lastentry=0)]
        return [IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0\0\0\0")])]
    tr.v6_ext = ext2
    r = tls_session(tr, t0 + 1 * SEC, remote_yt, "www.youtube.com", requests=small_requests(rng, 2), cli=DEV6)
    flows.append(dict(src=DEV6, dst=remote_yt, proto=6, sport=r["sport"], dport=443, app="TLS.YouTube",
                      what="TLS over IPv6, HBH+DestOpt+Routing(SRH) before TCP"))

    # 3) QUIC over IPv6 with an atomic Fragment header and a Destination Options header
    tr.v6_ext = lambda s, d, l4: [IPv6ExtHdrFragment(offset=0, m=0, id=0x1234), IPv6ExtHdrDestOpt()]
    r = quic_session(tr, t0 + 3 * SEC, remote_g, "www.google.com", down_pkts=8, cli=DEV6)
    flows.append(dict(src=DEV6, dst=remote_g, proto=17, sport=r["sport"], dport=443, app="QUIC.Google",
                      what="QUIC over IPv6, atomic Fragment+DestOpt before UDP"))

    # 4) plain TLS over IPv6, no extension header
    tr.v6_ext = None
    r = tls_session(tr, t0 + 5 * SEC, "2001:db8:ff00::40", "www.netflix.com", requests=small_requests(rng, 1),
                    cli=DEV6)
    flows.append(dict(src=DEV6, dst="2001:db8:ff00::40", proto=6, sport=r["sport"], dport=443,
                      app="TLS.NetFlix", what="TLS over IPv6, no extension header"))
    tr.flows = flows
    return tr


def build_frag(seed):
    """IPv4 datagrams split into fragments (a big DNS answer, a fragmented ICMP echo)."""
    tr = Trace(random.Random(seed))
    rng = tr.rng
    t0 = BASE_EDGE
    resolver = GW_IP

    def frag_send(ts, pkt, fragsize, reverse=False):
        frags = fragment(pkt, fragsize=fragsize)
        if reverse:
            frags = list(reversed(frags))
        for i, fr in enumerate(frags):
            tr.add_l3(ts + i * 20, bytes(fr), ip_mac(pkt[IP].src), ip_mac(pkt[IP].dst))

    # 1) DNS TXT answer of ~3.3 KB: 3 fragments
    qid = 0x4d2e
    sport = 41234
    q = DNS(id=qid, rd=1, qd=DNSQR(qname="tvplatform-example.net", qtype="TXT"))
    tr.ip4(t0, DEV_IP, resolver, UDP(sport=sport, dport=53) / q, df=False)
    an = None
    for i in range(14):
        rr = DNSRR(rrname="tvplatform-example.net", type="TXT", ttl=300,
                   rdata=[("v=key%02d " % i).encode() + bytes(rng.choice(b"abcdefghijklmnop0123456789") for _ in range(220))])
        an = rr if an is None else an / rr
    resp = IP(src=resolver, dst=DEV_IP, ttl=64, id=0x7001, flags=0) / UDP(sport=53, dport=sport) / \
        DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname="tvplatform-example.net", qtype="TXT"), an=an)
    frag_send(t0 + 20 * MS, resp, 1480)
    tr.flows.append(dict(src=DEV_IP, dst=resolver, proto=17, sport=sport, dport=53, app="DNS",
                         what="DNS TXT, answer in 3 fragments"))

    # 2) DNS A answer with 120 records (~2 KB): 2 fragments, delivered last-fragment-first
    qid, sport = 0x4d2f, 41250
    q = DNS(id=qid, rd=1, qd=DNSQR(qname="www.netflix.com", qtype="A"))
    tr.ip4(t0 + 1 * SEC, DEV_IP, resolver, UDP(sport=sport, dport=53) / q, df=False)
    an = None
    for i in range(120):
        rr = DNSRR(rrname="www.netflix.com", type="A", ttl=60, rdata="198.51.100.%d" % (i + 10))
        an = rr if an is None else an / rr
    resp = IP(src=resolver, dst=DEV_IP, ttl=64, id=0x7002, flags=0) / UDP(sport=53, dport=sport) / \
        DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.netflix.com", qtype="A"), an=an)
    frag_send(t0 + 1 * SEC + 20 * MS, resp, 1480, reverse=True)
    tr.flows.append(dict(src=DEV_IP, dst=resolver, proto=17, sport=sport, dport=53, app="DNS.NetFlix",
                         what="DNS A x120, answer in 2 fragments, out of order"))

    # 3) ICMP echo of 3000 bytes to a remote host: request and reply in 3 fragments each
    data = bytes((i * 7) & 0xff for i in range(3000))
    req = IP(src=DEV_IP, dst="198.51.100.40", ttl=64, id=0x7003, flags=0) / ICMP(type=8, id=0x77, seq=1) / Raw(data)
    rep = IP(src="198.51.100.40", dst=DEV_IP, ttl=52, id=0x7004, flags=0) / ICMP(type=0, id=0x77, seq=1) / Raw(data)
    frag_send(t0 + 2 * SEC, req, 1480)
    frag_send(t0 + 2 * SEC + 30 * MS, rep, 1480)
    tr.flows.append(dict(src=DEV_IP, dst="198.51.100.40", proto=1, sport=0, dport=0, app="ICMP",
                         what="ICMP echo 3000 B, 3 fragments each way"))
    return tr


def build_edge(outdir):
    ed = os.path.join(outdir, "edge")
    os.makedirs(ed, exist_ok=True)
    summary = {}

    tr = edge_mix(0xed6e01)
    frames = eth_frames(tr, vlans=((0x8100, 10),))
    # the DNS flow again, same 5-tuple, on VLAN 20: a separate flow (the flow key includes the VLAN)
    dns_ev = [e for e in tr.sorted_events() if e[2][9] == 17 and 53 in struct.unpack("!HH", e[2][20:24])]
    frames += [(e[0] + 500 * MS, eth_frame(e, vlans=((0x8100, 20),))) for e in dns_ev]
    frames.sort(key=lambda x: x[0])
    write_pcap(os.path.join(ed, "vlan.pcap"), frames)
    summary["vlan.pcap"] = len(tr.flows) + 1

    tr = edge_mix(0xed6e02)
    write_pcap(os.path.join(ed, "qinq.pcap"), eth_frames(tr, vlans=((0x88a8, 100), (0x8100, 10))))
    summary["qinq.pcap"] = len(tr.flows)

    tr = build_ipv6(0xed6e03)
    write_pcap(os.path.join(ed, "ipv6.pcap"), eth_frames(tr))
    summary["ipv6.pcap"] = len(tr.flows)

    tr = build_frag(0xed6e04)
    write_pcap(os.path.join(ed, "frag.pcap"), eth_frames(tr))
    summary["frag.pcap"] = len(tr.flows)

    tr = edge_mix(0xed6e05)
    write_pcap(os.path.join(ed, "snaplen.pcap"), eth_frames(tr), snaplen=96)
    summary["snaplen.pcap"] = len(tr.flows)

    tr = edge_mix(0xed6e06)
    write_pcapng(os.path.join(ed, "pcapng.pcapng"), eth_frames(tr))
    summary["pcapng.pcapng"] = len(tr.flows)

    tr = edge_mix(0xed6e07)
    write_pcap(os.path.join(ed, "sll.pcap"), [(e[0], sll_frame(e)) for e in tr.sorted_events()],
               linktype=LINKTYPE_LINUX_SLL)
    summary["sll.pcap"] = len(tr.flows)

    tr = edge_mix(0xed6e08)
    write_pcap(os.path.join(ed, "sll2.pcap"), [(e[0], sll2_frame(e)) for e in tr.sorted_events()],
               linktype=LINKTYPE_LINUX_SLL2)
    summary["sll2.pcap"] = len(tr.flows)

    tr = edge_mix(0xed6e09)
    tr6 = build_ipv6(0xed6e0a)
    ev = tr.sorted_events() + tr6.sorted_events()
    ev.sort(key=lambda e: (e[0], e[1]))
    write_pcap(os.path.join(ed, "raw.pcap"), [(e[0], e[2]) for e in ev], linktype=LINKTYPE_RAW)
    summary["raw.pcap"] = len(tr.flows) + len(tr6.flows)

    # truncated: a valid capture whose file ends in the middle of a packet record's data
    tr = edge_mix(0xed6e0b)
    frames = eth_frames(tr)
    blob = pcap_header(LINKTYPE_ETHERNET)
    cut = None
    for i, (ts, data) in enumerate(frames):
        rec = pcap_record(ts, data)
        if cut is None and i >= len(frames) * 2 // 3 and len(data) > 400:
            cut = len(blob) + 16 + len(data) // 2        # inside this record's packet bytes
        blob += rec
    with open(os.path.join(ed, "truncated.pcap"), "wb") as f:
        f.write(blob[:cut])
    summary["truncated.pcap"] = len(tr.flows)

    # nanosecond-resolution, big-endian pcap (magic a1b23c4d written big-endian)
    tr = edge_mix(0xed6e0c)
    with open(os.path.join(ed, "nsec_be.pcap"), "wb") as f:
        f.write(pcap_header(LINKTYPE_ETHERNET, magic=0xa1b23c4d, endian=">"))
        for ts, data in eth_frames(tr):
            f.write(pcap_record(ts, data, endian=">", nsec=True))
    summary["nsec_be.pcap"] = len(tr.flows)
    return summary


# ---------------------------------------------------------------------------------------------
# Malformed captures: each holds a valid DNS flow before and after the bad part, so a reader
# can show it skipped the bad packet and went on.
# ---------------------------------------------------------------------------------------------

def good_dns_frames(seed, t0):
    tr = Trace(random.Random(seed))
    a = Activity(tr)
    a.resolve(t0, ["www.netflix.com"])
    return eth_frames(tr)


def eth(l3, src=DEV_MAC, dst=GW_MAC, et=0x0800):
    return mac_bytes(dst) + mac_bytes(src) + u16(et) + l3


def build_malformed(outdir):
    md = os.path.join(outdir, "malformed")
    os.makedirs(md, exist_ok=True)
    t0 = BASE_EDGE + 3600 * SEC
    before = good_dns_frames(0xbad001, t0)
    after = good_dns_frames(0xbad002, t0 + 2 * SEC)
    tcp_ok = bytes(IP(src=DEV_IP, dst="198.51.100.40", id=0x100, ttl=64) /
                   TCP(sport=40000, dport=443, flags="PA", seq=1, ack=1) / Raw(b"\x17\x03\x03\x00\x10" + b"\xaa" * 16))
    udp_ok = bytes(IP(src=DEV_IP, dst="198.51.100.40", id=0x101, ttl=64) /
                   UDP(sport=40001, dport=9999) / Raw(b"x" * 32))
    v6_ok = bytes(IPv6(src=DEV6, dst="2001:db8:ff00::10", hlim=64) / UDP(sport=40002, dport=53) /
                  DNS(id=7, rd=1, qd=DNSQR(qname="www.youtube.com", qtype="AAAA")))

    def patch(b, off, new):
        return b[:off] + new + b[off + len(new):]

    def with_bad(name, bad, linktype=LINKTYPE_ETHERNET, snaplen=262144, wire=None):
        """bad: list of frames (or (frame, caplen_field, wirelen_field) for record-level lies)."""
        with open(os.path.join(md, name), "wb") as f:
            f.write(pcap_header(linktype, snaplen))
            for ts, d in before:
                f.write(pcap_record(ts, d))
            t = t0 + 1 * SEC
            for b in bad:
                if isinstance(b, tuple):
                    data, caplen, wirelen = b
                    f.write(struct.pack("<IIII", t // SEC, t % SEC, caplen, wirelen) + data)
                else:
                    f.write(pcap_record(t, b))
                t += 10 * MS
            for ts, d in after:
                f.write(pcap_record(ts, d))

    # ipv4_totlen_long: IPv4 total length 1400 in a 74-byte frame (claims more than was captured)
    with_bad("ipv4_totlen_long.pcap", [eth(patch(tcp_ok, 2, u16(1400)))])
    # ipv4_totlen_short: total length 24 (< IHL*4 + TCP header) and 12 (< the IPv4 header itself)
    with_bad("ipv4_totlen_short.pcap", [eth(patch(tcp_ok, 2, u16(24))), eth(patch(udp_ok, 2, u16(12)))])
    # ipv4_ihl_short: IHL 3 and IHL 0 (header shorter than the 20-byte minimum)
    with_bad("ipv4_ihl_short.pcap", [eth(patch(tcp_ok, 0, b"\x43")), eth(patch(udp_ok, 0, b"\x40"))])
    # ipv4_ihl_long: IHL 15 (60-byte header) in a 40-byte packet
    with_bad("ipv4_ihl_long.pcap", [eth(patch(tcp_ok, 0, b"\x4f")[:40])])
    # ipv6_plen_long: IPv6 payload length 4000 on a 60-byte datagram; and payload length 0 with data
    with_bad("ipv6_plen_lie.pcap", [eth(patch(v6_ok, 4, u16(4000)), et=0x86dd),
                                    eth(patch(v6_ok, 4, u16(0)), et=0x86dd)])
    # ipv6_ext_overrun: Hop-by-Hop header claiming 2048 bytes, and a chain HBH->DestOpt cut mid-header
    hbh = bytes(IPv6(src=DEV6, dst="2001:db8:ff00::10", hlim=64) /
                IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0\0\0\0")]) / UDP(sport=40003, dport=53) / Raw(b"q" * 20))
    chain = bytes(IPv6(src=DEV6, dst="2001:db8:ff00::10", hlim=64) /
                  IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0\0\0\0")]) /
                  IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 12)]) / UDP(sport=40004, dport=53))
    with_bad("ipv6_ext_overrun.pcap", [eth(patch(hbh, 41, u8(255)), et=0x86dd),
                                       eth(chain[:40 + 8 + 4], et=0x86dd)])
    # tcp_doff_lie: TCP data offset 15 (60 bytes) on a 20-byte header + 21 bytes, and data offset 2 (< 5)
    with_bad("tcp_doff_lie.pcap", [eth(patch(tcp_ok, 32, b"\xf0")), eth(patch(tcp_ok, 32, b"\x20"))])
    # udp_len_lie: UDP length 2000 (more than the datagram) and 4 (less than the UDP header)
    with_bad("udp_len_lie.pcap", [eth(patch(udp_ok, 24, u16(2000))), eth(patch(udp_ok, 24, u16(4)))])
    # short_frames: 10-byte frame (< Ethernet header), VLAN tag cut, IPv4 cut at 12 bytes,
    # TCP cut at 8 bytes, a 0-byte record
    with_bad("short_frames.pcap", [eth(b"")[:10], (mac_bytes(GW_MAC) + mac_bytes(DEV_MAC) + b"\x81\x00\x00"),
                                    eth(tcp_ok[:12]), eth(tcp_ok[:28]), b""])
    # caplen_gt_snaplen: global snaplen 128, one record with caplen 400 (data present)
    big = eth(bytes(IP(src=DEV_IP, dst="198.51.100.40", id=0x102) / UDP(sport=40005, dport=9999) / Raw(b"z" * 358)))
    with_bad("caplen_gt_snaplen.pcap", [(big, len(big), len(big))], snaplen=128)
    # caplen_gt_wirelen: a record whose caplen (100) exceeds its original length (60)
    small = eth(udp_ok)[:100].ljust(100, b"\0")
    with_bad("caplen_gt_wirelen.pcap", [(small, 100, 60)])
    # huge_caplen: a record header claiming 0x7fffffff captured bytes (reader must not allocate it)
    with_bad("huge_caplen.pcap", [(eth(udp_ok), 0x7fffffff, 0x7fffffff)])
    # linktype_147: valid Ethernet frames under LINKTYPE_USER0 (147), a link type nobody decodes
    with_bad("linktype_147.pcap", [eth(udp_ok)], linktype=147)
    # empty: a 0-byte file
    open(os.path.join(md, "empty.pcap"), "wb").close()
    # header_only: only the 24-byte pcap global header, no record
    with open(os.path.join(md, "header_only.pcap"), "wb") as f:
        f.write(pcap_header(LINKTYPE_ETHERNET))
    # not_a_capture: a text file with a .pcap name
    with open(os.path.join(md, "not_a_capture.pcap"), "wb") as f:
        f.write(b"This is not a packet capture.\nIt is a text file given to the sensor by mistake.\n")
    # bad_magic: a pcap with its magic number replaced by 0xdeadbeef (records follow)
    with open(os.path.join(md, "bad_magic.pcap"), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xdeadbeef, 2, 4, 0, 0, 262144, 1))
        for ts, d in before:
            f.write(pcap_record(ts, d))
    # record_header_cut: the file ends inside a record header (after 7 of its 16 bytes)
    with open(os.path.join(md, "record_header_cut.pcap"), "wb") as f:
        f.write(pcap_header(LINKTYPE_ETHERNET))
        for ts, d in before:
            f.write(pcap_record(ts, d))
        f.write(pcap_record(t0 + 1 * SEC, eth(udp_ok))[:7])
    # pcapng_bad_block: a pcapng whose second block has a total length that is not a multiple of 4
    # and runs past the end of the file
    with open(os.path.join(md, "pcapng_bad_block.pcapng"), "wb") as f:
        shb = pcapng_block(0x0a0d0d0a, struct.pack("<IHHq", 0x1a2b3c4d, 1, 0, -1))
        idb = pcapng_block(1, struct.pack("<HHI", 1, 0, 262144))
        f.write(shb + idb + struct.pack("<II", 6, 4099) + b"\0" * 40)


# ---------------------------------------------------------------------------------------------

def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: %s OUTDIR\n" % sys.argv[0])
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    base = build_baseline()
    write_pcap(os.path.join(out, "baseline.pcap"), eth_frames(base))
    base_map = learn_map(base.flows)

    anom, planted = build_anomalies(base_map)
    write_pcap(os.path.join(out, "anomalies.pcap"), eth_frames(anom))
    normal = [f for f in anom.flows if "verdict" not in f]
    bad_normal = [f for f in normal if verdict(base_map, f) != "NONE"]
    if bad_normal:
        sys.stderr.write("generate.py: normal flows of anomalies.pcap not in the baseline map: %r\n" % bad_normal)
        return 1

    counts = {}
    for f in planted:
        counts[f["verdict"]] = counts.get(f["verdict"], 0) + 1
    manifest = {
        "capture": "anomalies.pcap",
        "learned_from": "baseline.pcap",
        "local_networks": [LOCAL_NET],
        "remote_key": "remote",
        "flows_total": len(anom.flows),
        "flows_expected_none": len(normal),
        "anomalies_total": len(planted),
        "anomalies_by_verdict": dict(sorted(counts.items())),
        "baseline_map": {s: {d: sorted(apps) for d, apps in sorted(ds.items())}
                         for s, ds in sorted(base_map.items())},
        "anomalies": [
            {"src_ip": f["src"], "dst_ip": f["dst"], "protocol": f["proto"], "src_port": f["sport"],
             "dst_port": f["dport"], "first_seen": "%d.%06d" % (f["start"] // SEC, f["start"] % SEC),
             "app": f["app"], "verdict": f["verdict"], "what": f["note"]}
            for f in sorted(planted, key=lambda f: (f["start"], f["src"], f["sport"]))
        ],
    }
    with open(os.path.join(out, "anomalies.manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")

    edge = build_edge(out)
    build_malformed(out)

    print("baseline.pcap: %d flows, %d packets" % (len(base.flows), len(base.ev)))
    print("anomalies.pcap: %d flows (%d planted anomalies), %d packets" % (len(anom.flows), len(planted), len(anom.ev)))
    for k in sorted(edge):
        print("edge/%s: %d flows" % (k, edge[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
