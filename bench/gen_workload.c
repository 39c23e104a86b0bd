/* gen_workload.c - deterministic synthetic pcap writer for the bench harness.
 *
 * Writes an Ethernet pcap (microsecond timestamps) of bidirectional flows that nDPI classifies
 * like real traffic: full TCP handshakes with consistent sequence numbers, TLS ClientHellos with
 * a real SNI, QUIC v1 Initials encrypted with the RFC 9001 initial keys (so nDPI decrypts them
 * and reads the SNI), DNS queries with answers, HTTP GETs, NTP, and unknown TCP/UDP payloads.
 * Everything comes from one seeded PRNG (xoshiro256**): the same options give the same bytes.
 * Timestamps are virtual (--pps), never the wall clock.
 *
 * Profiles
 *   dpi          short flows (~12 packets), most packets seen while nDPI is still detecting
 *   gateway      long flows (~200 packets on average): TLS and QUIC bulk after a real
 *                ClientHello, DNS, short HTTP, UDP noise; IPv6 and VLAN shares, size mix
 *   hold-idle    --flows flows opened one after another and classified (DNS/NTP answered),
 *                then left idle for --hold seconds: all of them are concurrent at the end
 *   hold-detect  --flows flows opened and left in detection (handshake + one unknown payload,
 *                or one unknown UDP datagram), then --hold seconds of idle time
 *   flood        --flows TCP SYNs from random spoofed IPv4 sources (11.0.0.0-125.255.255.255,
 *                random ports; one SYN each, never answered) to the servers of --legit long
 *                legitimate flows (TLS and QUIC from 10.0.0.0/8, opened at the start and still
 *                running at the end: never closed), one legitimate packet after every
 *                --legit-every SYNs. --legit-only writes the same legitimate packets (same
 *                bytes and times) without the SYNs: the clean capture to learn a map from.
 *                The SYNs' randomness is a stream of its own, so both files share the
 *                legitimate packets exactly. Default rate 1 M packets/s. --packets is ignored.
 *
 * dpi and gateway keep --flows flows open at once: each packet comes from a slot picked at
 * random; a slot whose flow has ended starts a new flow. --packets is the total.
 *
 * Output: the pcap (-o), and one JSON line on stdout describing it (packets, flows, bytes ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- PRNG (xoshiro256**) */

static uint64_t rng_s[4];

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rnd(void)
{
	uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;
	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

/* Uniform in [0, n) (Lemire's multiply-shift; the tiny bias does not matter here). */
static inline uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(((rnd() >> 32) * (uint64_t)n) >> 32);
}

static inline uint32_t rnd_range(uint32_t lo, uint32_t hi) /* inclusive */
{
	return lo + rnd_below(hi - lo + 1);
}

static inline double rnd_unit(void)
{
	return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------- names */

/* Server names nDPI 4.2 maps to an application (TLS.<App>, QUIC.<App>, DNS.<App>, HTTP.<App>),
 * and a few it does not know (plain TLS / DNS / HTTP). */
static const char *const names[] = {
    "www.youtube.com",
    "www.netflix.com",
    "www.google.com",
    "www.facebook.com",
    "www.amazon.com",
    "www.instagram.com",
    "www.wikipedia.org",
    "www.microsoft.com",
    "outlook.office365.com",
    "open.spotify.com",
    "web.whatsapp.com",
    "www.tiktok.com",
    "zoom.us",
    "www.dropbox.com",
    "github.com",
    "www.apple.com",
    "www.linkedin.com",
    "twitter.com",
    "www.primevideo.com",
    "api.telegram.org",
    "cdn.example-shop.net",
    "static.intranet-cdn.org",
    "files.example.com",
    "updates.vendor-a.io",
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))
/* QUIC: names whose services speak it */
static const uint8_t quic_names[] = {0, 2, 3, 5, 1, 11, 4, 20};
#define N_QUIC_NAMES (sizeof(quic_names) / sizeof(quic_names[0]))

/* ---------------------------------------------------------------- TLS / QUIC templates */

static uint8_t *put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16);
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)v;
	return p + 3;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p = put16(p, v >> 16);
	return put16(p, v & 0xffff);
}

static uint8_t *putrnd(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
	return p + n;
}

/* A TLS 1.3 ClientHello handshake message (no record header) as Chrome-like clients send it.
 * quic: ALPN h3, no session id, quic_transport_parameters. Returns its length. */
static size_t build_client_hello(uint8_t *out, const char *sni, int quic)
{
	static const uint16_t suites[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f,
					  0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
					  0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
	static const uint16_t sigalgs[] = {0x0403, 0x0804, 0x0401, 0x0503,
					   0x0805, 0x0501, 0x0806, 0x0601};
	size_t n = strlen(sni);
	uint8_t *p = out, *hlen, *elen, *x;

	*p++ = 1; /* client_hello */
	hlen = p;
	p += 3;
	p = put16(p, 0x0303);
	p = putrnd(p, 32);
	if (quic) {
		*p++ = 0;
	} else {
		*p++ = 32;
		p = putrnd(p, 32);
	}
	p = put16(p, quic ? 6 : (uint32_t)sizeof(suites));
	for (size_t i = 0; i < (quic ? 3 : sizeof(suites) / 2); i++)
		p = put16(p, suites[i]);
	*p++ = 1;
	*p++ = 0;
	elen = p;
	p += 2;
	/* server_name */
	p = put16(p, 0x0000);
	p = put16(p, (uint32_t)(n + 5));
	p = put16(p, (uint32_t)(n + 3));
	*p++ = 0;
	p = put16(p, (uint32_t)n);
	memcpy(p, sni, n);
	p += n;
	/* extended_master_secret, renegotiation_info */
	if (!quic) {
		p = put16(p, 0x0017);
		p = put16(p, 0);
		p = put16(p, 0xff01);
		p = put16(p, 1);
		*p++ = 0;
	}
	/* supported_groups */
	p = put16(p, 0x000a);
	p = put16(p, 8);
	p = put16(p, 6);
	p = put16(p, 0x001d);
	p = put16(p, 0x0017);
	p = put16(p, 0x0018);
	if (!quic) { /* ec_point_formats, session_ticket */
		p = put16(p, 0x000b);
		p = put16(p, 2);
		*p++ = 1;
		*p++ = 0;
		p = put16(p, 0x0023);
		p = put16(p, 0);
	}
	/* ALPN */
	p = put16(p, 0x0010);
	if (quic) {
		p = put16(p, 5);
		p = put16(p, 3);
		*p++ = 2;
		memcpy(p, "h3", 2);
		p += 2;
	} else {
		p = put16(p, 14);
		p = put16(p, 12);
		*p++ = 2;
		memcpy(p, "h2", 2);
		p += 2;
		*p++ = 8;
		memcpy(p, "http/1.1", 8);
		p += 8;
	}
	/* signature_algorithms */
	p = put16(p, 0x000d);
	p = put16(p, (uint32_t)sizeof(sigalgs) + 2);
	p = put16(p, (uint32_t)sizeof(sigalgs));
	for (size_t i = 0; i < sizeof(sigalgs) / 2; i++)
		p = put16(p, sigalgs[i]);
	/* key_share: x25519 */
	p = put16(p, 0x0033);
	p = put16(p, 38);
	p = put16(p, 36);
	p = put16(p, 0x001d);
	p = put16(p, 32);
	p = putrnd(p, 32);
	/* psk_key_exchange_modes */
	p = put16(p, 0x002d);
	p = put16(p, 2);
	*p++ = 1;
	*p++ = 1;
	/* supported_versions */
	p = put16(p, 0x002b);
	if (quic) {
		p = put16(p, 3);
		*p++ = 2;
		p = put16(p, 0x0304);
	} else {
		p = put16(p, 5);
		*p++ = 4;
		p = put16(p, 0x0304);
		p = put16(p, 0x0303);
	}
	if (quic) { /* quic_transport_parameters */
		p = put16(p, 0x0039);
		x = p;
		p += 2;
		*p++ = 0x01; /* max_idle_timeout 30000 */
		*p++ = 4;
		p = put32(p, 0x80007530);
		*p++ = 0x04; /* initial_max_data */
		*p++ = 4;
		p = put32(p, 0x80f00000);
		*p++ = 0x08; /* initial_max_streams_bidi 100 */
		*p++ = 2;
		p = put16(p, 0x4064);
		*p++ = 0x0f; /* initial_source_connection_id */
		*p++ = 8;
		p = putrnd(p, 8);
		put16(x, (uint32_t)(p - x - 2));
	}
	put16(elen, (uint32_t)(p - elen - 2));
	put24(hlen, (uint32_t)(p - hlen - 3));
	return (size_t)(p - out);
}

/* TLS 1.3 ServerHello record + ChangeCipherSpec record + start of the encrypted flight. */
static size_t build_server_flight(uint8_t *out, size_t total)
{
	uint8_t *p = out, *rlen, *hlen;
	*p++ = 0x16;
	p = put16(p, 0x0303);
	rlen = p;
	p += 2;
	*p++ = 2; /* server_hello */
	hlen = p;
	p += 3;
	p = put16(p, 0x0303);
	p = putrnd(p, 32);
	*p++ = 32;
	p = putrnd(p, 32);
	p = put16(p, 0x1301);
	*p++ = 0;
	p = put16(p, 46);
	p = put16(p, 0x002b);
	p = put16(p, 2);
	p = put16(p, 0x0304);
	p = put16(p, 0x0033);
	p = put16(p, 36);
	p = put16(p, 0x001d);
	p = put16(p, 32);
	p = putrnd(p, 32);
	put24(hlen, (uint32_t)(p - hlen - 3));
	put16(rlen, (uint32_t)(p - rlen - 2));
	/* change_cipher_spec */
	*p++ = 0x14;
	p = put16(p, 0x0303);
	p = put16(p, 1);
	*p++ = 1;
	/* encrypted extensions + certificate ... as application_data */
	size_t used = (size_t)(p - out);
	if (total > used + 5 + 32) {
		size_t n = total - used - 5;
		*p++ = 0x17;
		p = put16(p, 0x0303);
		p = put16(p, (uint32_t)n);
		p = putrnd(p, n);
	}
	return (size_t)(p - out);
}

#define MAX_TLS_TMPL 96
struct tmpl {
	uint16_t len;
	uint8_t name;
	uint8_t data[1500];
};
static struct tmpl tls_ch[MAX_TLS_TMPL];    /* TLS records (header + ClientHello) */
static struct tmpl quic_init[MAX_TLS_TMPL]; /* complete QUIC v1 Initial UDP payloads */
static struct tmpl tls_sh[16];
static unsigned n_tls_ch, n_quic_init;

/* ---- TLS 1.2 server flight: ServerHello, Certificate (leaf + intermediate, DER that nDPI
 * parses for issuer / subject / SAN / validity), ServerKeyExchange, ServerHelloDone. */

/* Wrap len bytes at buf in a DER TLV with tag (moves them right). Returns the new length. */
static size_t der_wrap(uint8_t *buf, size_t len, uint8_t tag)
{
	size_t h = len < 128 ? 2 : len < 256 ? 3 : 4;
	memmove(buf + h, buf, len);
	buf[0] = tag;
	if (h == 2) {
		buf[1] = (uint8_t)len;
	} else if (h == 3) {
		buf[1] = 0x81;
		buf[2] = (uint8_t)len;
	} else {
		buf[1] = 0x82;
		put16(buf + 2, (uint32_t)len);
	}
	return len + h;
}

static size_t der_put(uint8_t *p, uint8_t tag, const void *v, size_t len)
{
	memcpy(p, v, len);
	return der_wrap(p, len, tag);
}

/* One RDN: SET { SEQ { OID 2.5.4.x, string } } */
static size_t der_rdn(uint8_t *p, uint8_t attr, uint8_t strtag, const char *val)
{
	static uint8_t oid[3] = {0x55, 0x04, 0};
	size_t n = 0;
	oid[2] = attr;
	n += der_put(p + n, 0x06, oid, 3);
	n += der_put(p + n, strtag, val, strlen(val));
	n = der_wrap(p, n, 0x30);
	return der_wrap(p, n, 0x31);
}

static size_t der_name(uint8_t *p, const char *c, const char *org, const char *cn)
{
	size_t n = 0;
	if (c)
		n += der_rdn(p + n, 0x06, 0x13, c);
	if (org)
		n += der_rdn(p + n, 0x0a, 0x13, org);
	n += der_rdn(p + n, 0x03, 0x0c, cn);
	return der_wrap(p, n, 0x30);
}

static size_t build_cert(uint8_t *out, const char *issuer_org, const char *issuer_cn,
			 const char *subject_cn, const char *san, size_t keylen)
{
	static const uint8_t sha256rsa[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
					    0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
	static const uint8_t rsaenc[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
					 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
	uint8_t *p = out, tmp[800];
	size_t n = 0, m;
	/* version [0] INTEGER 2 */
	static const uint8_t ver[] = {0xa0, 0x03, 0x02, 0x01, 0x02};
	memcpy(p, ver, sizeof ver);
	n += sizeof ver;
	putrnd(tmp, 16);
	tmp[0] &= 0x7f;
	n += der_put(p + n, 0x02, tmp, 16);
	memcpy(p + n, sha256rsa, sizeof sha256rsa);
	n += sizeof sha256rsa;
	n += der_name(p + n, "US", issuer_org, issuer_cn);
	m = der_put(p + n, 0x17, "231101000000Z", 13);
	m += der_put(p + n + m, 0x17, "240130235959Z", 13);
	n += der_wrap(p + n, m, 0x30);
	n += der_name(p + n, NULL, NULL, subject_cn);
	memcpy(p + n, rsaenc, sizeof rsaenc);
	m = sizeof rsaenc;
	tmp[0] = 0;
	putrnd(tmp + 1, keylen);
	m += der_put(p + n + m, 0x03, tmp, keylen + 1);
	n += der_wrap(p + n, m, 0x30);
	if (san) { /* [3] { SEQ { SEQ { OID subjectAltName, OCTET STRING { SEQ { dNSName } } } } }
		    */
		static const uint8_t oid_san[] = {0x55, 0x1d, 0x11};
		uint8_t *e = p + n;
		m = der_put(e, 0x06, oid_san, 3);
		size_t s2 = der_put(e + m, 0x82, san, strlen(san));
		s2 = der_wrap(e + m, s2, 0x30);
		m += der_wrap(e + m, s2, 0x04);
		m = der_wrap(e, m, 0x30);
		m = der_wrap(e, m, 0x30);
		n += der_wrap(e, m, 0xa3);
	}
	n = der_wrap(p, n, 0x30); /* tbsCertificate */
	memcpy(p + n, sha256rsa, sizeof sha256rsa);
	n += sizeof sha256rsa;
	tmp[0] = 0;
	putrnd(tmp + 1, 256);
	n += der_put(p + n, 0x03, tmp, 257);
	return der_wrap(p, n, 0x30);
}

static uint8_t *tls_record(uint8_t *p, uint8_t type, const uint8_t *body, size_t len)
{
	*p++ = type;
	p = put16(p, 0x0303);
	p = put16(p, (uint32_t)len);
	memcpy(p, body, len);
	return p + len;
}

static size_t build_tls12_flight(uint8_t *out, const char *name)
{
	uint8_t hs[6000], *p = out, *q;
	size_t n;
	/* ServerHello */
	q = hs;
	*q++ = 2;
	q += 3;
	q = put16(q, 0x0303);
	q = putrnd(q, 32);
	*q++ = 32;
	q = putrnd(q, 32);
	q = put16(q, 0xc02f);
	*q++ = 0;
	q = put16(q, 19);
	q = put16(q, 0xff01);
	q = put16(q, 1);
	*q++ = 0;
	q = put16(q, 0x000b);
	q = put16(q, 2);
	*q++ = 1;
	*q++ = 0;
	q = put16(q, 0x0010);
	q = put16(q, 5);
	q = put16(q, 3);
	*q++ = 2;
	memcpy(q, "h2", 2);
	q += 2;
	q = put16(q, 0x0017);
	q = put16(q, 0);
	put24(hs + 1, (uint32_t)(q - hs - 4));
	p = tls_record(p, 0x16, hs, (size_t)(q - hs));
	/* Certificate */
	q = hs + 7;
	n = build_cert(q + 3, "Let's Encrypt", "R3", name, name, 270);
	put24(q, (uint32_t)n);
	q += 3 + n;
	n = build_cert(q + 3, "Internet Security Research Group", "ISRG Root X1", "R3", NULL, 270);
	put24(q, (uint32_t)n);
	q += 3 + n;
	n = build_cert(q + 3, "Digital Signature Trust Co.", "DST Root CA X3", "ISRG Root X1", NULL,
		       526);
	put24(q, (uint32_t)n);
	q += 3 + n;
	hs[0] = 11;
	put24(hs + 1, (uint32_t)(q - hs - 4));
	put24(hs + 4, (uint32_t)(q - hs - 7));
	p = tls_record(p, 0x16, hs, (size_t)(q - hs));
	/* ServerKeyExchange (ECDHE x25519, RSA signature) */
	q = hs;
	*q++ = 12;
	q = put24(q, 4 + 32 + 4 + 256);
	*q++ = 3;
	q = put16(q, 0x001d);
	*q++ = 32;
	q = putrnd(q, 32);
	q = put16(q, 0x0804);
	q = put16(q, 256);
	q = putrnd(q, 256);
	p = tls_record(p, 0x16, hs, (size_t)(q - hs));
	/* ServerHelloDone */
	static const uint8_t shd[4] = {14, 0, 0, 0};
	p = tls_record(p, 0x16, shd, 4);
	return (size_t)(p - out);
}

struct big_tmpl {
	uint16_t len;
	uint8_t data[6000];
};
static struct big_tmpl tls12_flight[N_NAMES];

static int hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen,
		       uint8_t out[32])
{
	gcry_md_hd_t h;
	if (gcry_md_open(&h, GCRY_MD_SHA256, GCRY_MD_FLAG_HMAC))
		return -1;
	gcry_md_setkey(h, key, klen);
	gcry_md_write(h, msg, mlen);
	memcpy(out, gcry_md_read(h, GCRY_MD_SHA256), 32);
	gcry_md_close(h);
	return 0;
}

/* HKDF-Expand-Label (RFC 8446) with an empty context, output <= 32 bytes. */
static int hkdf_expand_label(const uint8_t secret[32], const char *label, uint8_t *out, size_t len)
{
	uint8_t info[64], t[32];
	size_t ll = strlen(label) + 6, n = 0;
	info[n++] = (uint8_t)(len >> 8);
	info[n++] = (uint8_t)len;
	info[n++] = (uint8_t)ll;
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, ll - 6);
	n += ll;
	info[n++] = 0;	  /* context */
	info[n++] = 0x01; /* T(1) */
	if (hmac_sha256(secret, 32, info, n, t))
		return -1;
	memcpy(out, t, len);
	return 0;
}

/* A client Initial packet of QUIC v1 carrying ch (a ClientHello) in a CRYPTO frame, padded to
 * 1250 bytes and protected as RFC 9001 section 5 says. Returns the UDP payload length. */
static size_t build_quic_initial(uint8_t *out, const uint8_t *ch, size_t chlen)
{
	static const uint8_t salt[20] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34,
					 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
					 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
	const size_t total = 1250, pnlen = 2;
	uint8_t dcid[8], prk[32], csec[32], key[16], iv[12], hp[16], mask[16];
	uint8_t plain[1500], *p = out, *pn;
	gcry_cipher_hd_t c;

	putrnd(dcid, 8);
	hmac_sha256(salt, sizeof salt, dcid, 8, prk);
	hkdf_expand_label(prk, "client in", csec, 32);
	hkdf_expand_label(csec, "quic key", key, 16);
	hkdf_expand_label(csec, "quic iv", iv, 12);
	hkdf_expand_label(csec, "quic hp", hp, 16);

	*p++ = 0xc0 | (uint8_t)(pnlen - 1); /* long header, Initial */
	p = put32(p, 0x00000001);
	*p++ = 8;
	memcpy(p, dcid, 8);
	p += 8;
	*p++ = 8;
	p = putrnd(p, 8); /* scid */
	*p++ = 0;	  /* token length */
	size_t hdr_len = (size_t)(p - out) + 2 + pnlen;
	size_t payload_len = total - hdr_len; /* packet number excluded, tag included */
	p = put16(p, 0x4000 | (uint32_t)(payload_len + pnlen));
	pn = p;
	p = put16(p, 0); /* packet number 0 */

	size_t plen = payload_len - 16, q = 0;
	plain[q++] = 0x06; /* CRYPTO */
	plain[q++] = 0x00; /* offset 0 */
	plain[q++] = (uint8_t)(0x40 | (chlen >> 8));
	plain[q++] = (uint8_t)chlen;
	memcpy(plain + q, ch, chlen);
	q += chlen;
	memset(plain + q, 0, plen - q); /* PADDING */

	uint8_t nonce[12];
	memcpy(nonce, iv, 12); /* pn 0: iv xor 0 */
	gcry_cipher_open(&c, GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_GCM, 0);
	gcry_cipher_setkey(c, key, 16);
	gcry_cipher_setiv(c, nonce, 12);
	gcry_cipher_authenticate(c, out, (size_t)(p - out));
	gcry_cipher_encrypt(c, p, plen, plain, plen);
	gcry_cipher_gettag(c, p + plen, 16);
	gcry_cipher_close(c);

	/* header protection: sample 16 bytes at pn offset + 4 */
	gcry_cipher_open(&c, GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_ECB, 0);
	gcry_cipher_setkey(c, hp, 16);
	gcry_cipher_encrypt(c, mask, 16, pn + 4, 16);
	gcry_cipher_close(c);
	out[0] ^= mask[0] & 0x0f;
	for (size_t i = 0; i < pnlen; i++)
		pn[i] ^= mask[1 + i];
	return total;
}

static void build_templates(void)
{
	uint8_t ch[1024];
	for (unsigned v = 0; v < 4; v++) {
		for (unsigned i = 0; i < N_NAMES; i++) {
			struct tmpl *t = &tls_ch[n_tls_ch++];
			size_t n = build_client_hello(ch, names[i], 0);
			t->data[0] = 0x16;
			put16(t->data + 1, 0x0301);
			put16(t->data + 3, (uint32_t)n);
			memcpy(t->data + 5, ch, n);
			t->len = (uint16_t)(n + 5);
			t->name = (uint8_t)i;
		}
		for (unsigned i = 0; i < N_QUIC_NAMES; i++) {
			struct tmpl *t = &quic_init[n_quic_init++];
			size_t n = build_client_hello(ch, names[quic_names[i]], 1);
			t->len = (uint16_t)build_quic_initial(t->data, ch, n);
			t->name = quic_names[i];
		}
	}
	for (unsigned i = 0; i < 16; i++)
		tls_sh[i].len = (uint16_t)build_server_flight(tls_sh[i].data, 1200 + 16 * i);
	for (unsigned i = 0; i < N_NAMES; i++)
		tls12_flight[i].len = (uint16_t)build_tls12_flight(tls12_flight[i].data, names[i]);
}

/* ---------------------------------------------------------------- output */

#define OBUF_SIZE (8u << 20)
static uint8_t *obuf;
static size_t opos;
static int ofd = -1;
static const char *opath;

static void oflush(void)
{
	size_t off = 0;
	while (off < opos) {
		ssize_t w = write(ofd, obuf + off, opos - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "gen_workload: %s: write: %s\n", opath, strerror(errno));
			exit(1);
		}
		off += (size_t)w;
	}
	opos = 0;
}

/* ---------------------------------------------------------------- flows */

enum kind { K_TLS, K_QUIC, K_DNS, K_HTTP, K_NTP, K_TCPUNK, K_UDPUNK, K__COUNT };
static const char *const kind_names[K__COUNT] = {"tls", "quic",	       "dns",	     "http",
						 "ntp", "tcp_unknown", "udp_unknown"};

struct flow {
	uint32_t cli, srv;
	uint32_t seq[2];     /* next TCP sequence number, [0] client, [1] server */
	uint32_t step, data; /* packets sent; TCP: application data steps planned */
	uint16_t sport, dport;
	uint16_t vlan;
	uint8_t kind, ipver, name, srv_local;
	uint8_t tmpl;
	uint8_t tls12; /* TLS: 1.2 handshake with the certificate chain in clear */
	uint8_t hs; /* TLS: handshake steps before the bulk */ /* hold-* profiles: stop after the
								  opening packets */
	uint16_t qid;
	uint32_t spoof; /* flood: the client's IPv4 address as is (0 = from cli) */
};

enum profile { P_DPI, P_GATEWAY, P_HOLD_IDLE, P_HOLD_DETECT, P_FLOOD };

static struct opts {
	uint64_t flows, packets, seed;
	double ipv6_share, vlan_share, pps, hold_s;
	uint32_t hosts, legit, legit_every;
	int legit_only;
	enum profile profile;
	const char *out;
} o;

static uint64_t now_ns; /* virtual clock */
static uint64_t dt_ns;	/* mean inter-packet time */
static uint64_t st_packets, st_bytes, st_ipbytes, st_flows, st_kind_flows[K__COUNT];
static uint64_t st_kind_pkts[K__COUNT], flow_serial;
static uint16_t ip_id;

static uint8_t rndbuf[1 << 16];

static const uint8_t *rnd_bytes(size_t n)
{
	return rndbuf + rnd_below((uint32_t)(sizeof rndbuf - n));
}

static void advance_clock(void)
{
	/* uniform jitter around the mean, deterministic */
	now_ns += dt_ns / 2 + (uint64_t)(rnd_unit() * (double)dt_ns);
}

static void put_addr(uint8_t *p, const struct flow *f, int server)
{
	uint32_t idx = server ? f->srv : f->cli;
	int local = server ? f->srv_local : 1;
	if (!server && f->spoof) { /* flood: IPv4 only */
		put32(p, f->spoof);
		return;
	}
	if (f->ipver == 4) {
		if (local) { /* 10.0.0.0/8 */
			p[0] = 10;
			p[1] = (uint8_t)(idx >> 16);
			p[2] = (uint8_t)(idx >> 8);
			p[3] = (uint8_t)idx;
		} else { /* 198.18.0.0/15, benchmark range: no nDPI IP match */
			p[0] = 198;
			p[1] = (uint8_t)(18 + ((idx >> 16) & 1));
			p[2] = (uint8_t)(idx >> 8);
			p[3] = (uint8_t)idx;
		}
	} else {
		static const uint8_t lp[8] = {0xfd, 0x00, 0x00, 0x42, 0, 0, 0, 0};
		static const uint8_t rp[8] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x18, 0, 0};
		memcpy(p, local ? lp : rp, 8);
		memset(p + 8, 0, 4);
		put32(p + 12, idx);
	}
}

static uint16_t ip_csum(const uint8_t *h)
{
	uint32_t s = 0;
	for (int i = 0; i < 20; i += 2)
		s += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Reserve room for one frame, write Ethernet (+VLAN) and IP headers; returns the L4 start.
 * l4len = L4 header + payload. dir 0 = client -> server. */
static uint8_t *pkt_begin(const struct flow *f, int dir, uint8_t proto, size_t l4len,
			  uint8_t **frame_out)
{
	if (OBUF_SIZE - opos < 2048)
		oflush();
	uint8_t *rec = obuf + opos, *p = rec + 16;
	*frame_out = rec;
	/* Ethernet: client MACs 02:00:xx, gateway 02:aa:.. */
	uint8_t cmac[6] = {0x02,
			   0x00,
			   (uint8_t)(f->cli >> 24),
			   (uint8_t)(f->cli >> 16),
			   (uint8_t)(f->cli >> 8),
			   (uint8_t)f->cli};
	static const uint8_t gmac[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01};
	memcpy(p, dir ? cmac : gmac, 6);
	memcpy(p + 6, dir ? gmac : cmac, 6);
	p += 12;
	if (f->vlan) {
		p = put16(p, 0x8100);
		p = put16(p, f->vlan);
	}
	if (f->ipver == 4) {
		p = put16(p, 0x0800);
		uint8_t *ip = p;
		ip[0] = 0x45;
		ip[1] = 0;
		put16(ip + 2, (uint32_t)(20 + l4len));
		put16(ip + 4, ip_id++);
		put16(ip + 6, 0x4000);
		ip[8] = dir ? 57 : 64;
		ip[9] = proto;
		ip[10] = ip[11] = 0;
		put_addr(ip + 12, f, dir);
		put_addr(ip + 16, f, !dir);
		put16(ip + 10, ip_csum(ip));
		st_ipbytes += 20 + l4len;
		return ip + 20;
	}
	p = put16(p, 0x86dd);
	uint8_t *ip = p;
	put32(ip, 0x60000000u | ((f->cli * 2654435761u) & 0xfffff));
	put16(ip + 4, (uint32_t)l4len);
	ip[6] = proto;
	ip[7] = dir ? 57 : 64;
	put_addr(ip + 8, f, dir);
	put_addr(ip + 24, f, !dir);
	st_ipbytes += 40 + l4len;
	return ip + 40;
}

static void pkt_end(const struct flow *f, uint8_t *rec, const uint8_t *end)
{
	uint32_t caplen = (uint32_t)(end - rec - 16);
	uint64_t us = now_ns / 1000;
	/* pcap record header, host byte order (magic a1b2c3d4 written the same way) */
	uint32_t h[4] = {(uint32_t)(us / 1000000), (uint32_t)(us % 1000000), caplen, caplen};
	memcpy(rec, h, 16);
	opos += 16 + caplen;
	st_packets++;
	st_bytes += caplen;
	st_kind_pkts[f->kind]++;
	advance_clock();
}

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

static void emit_tcp(struct flow *f, int dir, uint8_t flags, const uint8_t *pl, size_t plen)
{
	size_t optlen = (flags & TH_SYN) ? 12 : 0, hl = 20 + optlen;
	uint8_t *rec, *t = pkt_begin(f, dir, 6, hl + plen, &rec);
	uint16_t sp = dir ? f->dport : f->sport, dp = dir ? f->sport : f->dport;
	put16(t, sp);
	put16(t + 2, dp);
	put32(t + 4, f->seq[dir]);
	put32(t + 8, (flags & TH_ACK) ? f->seq[!dir] : 0);
	t[12] = (uint8_t)((hl / 4) << 4);
	t[13] = flags;
	put16(t + 14, 64240);
	t[16] = t[17] = 0; /* checksum: not computed (nothing on the capture path checks it) */
	t[18] = t[19] = 0;
	if (optlen) {
		uint8_t *o2 = t + 20;
		o2[0] = 2; /* MSS */
		o2[1] = 4;
		put16(o2 + 2, f->ipver == 4 ? 1460 : 1440);
		o2[4] = 1; /* NOP */
		o2[5] = 3; /* window scale */
		o2[6] = 3;
		o2[7] = 7;
		o2[8] = 1;
		o2[9] = 1;
		o2[10] = 4; /* SACK permitted */
		o2[11] = 2;
	}
	if (plen)
		memcpy(t + hl, pl, plen);
	f->seq[dir] += (uint32_t)plen + ((flags & (TH_SYN | TH_FIN)) ? 1 : 0);
	pkt_end(f, rec, t + hl + plen);
}

static void emit_udp(struct flow *f, int dir, const uint8_t *pl, size_t plen)
{
	uint8_t *rec, *u = pkt_begin(f, dir, 17, 8 + plen, &rec);
	put16(u, dir ? f->dport : f->sport);
	put16(u + 2, dir ? f->sport : f->dport);
	put16(u + 4, (uint32_t)(8 + plen));
	u[6] = u[7] = 0;
	memcpy(u + 8, pl, plen);
	pkt_end(f, rec, u + 8 + plen);
}

static size_t mss(const struct flow *f)
{
	return f->ipver == 4 ? 1460 : 1440;
}

/* A TLS application_data record of n bytes in total. */
static size_t tls_appdata(uint8_t *b, size_t n)
{
	b[0] = 0x17;
	put16(b + 1, 0x0303);
	put16(b + 3, (uint32_t)(n - 5));
	memcpy(b + 5, rnd_bytes(n - 5), n - 5);
	return n;
}

/* Bulk size mix for the server side of long flows. */
static size_t bulk_size(size_t max)
{
	uint32_t r = rnd_below(100);
	if (r < 78)
		return max;
	if (r < 90)
		return rnd_range(600, (uint32_t)max);
	return rnd_range(60, 600);
}

/* Application data step j of a TCP flow; a step with no payload is a pure ACK. */
static void tcp_app_step(struct flow *f, uint32_t j)
{
	uint8_t b[1500];
	size_t n;
	int dir;
	switch (f->kind) {
	case K_TLS:
		if (j == 0) {
			emit_tcp(f, 0, TH_ACK | TH_PSH, tls_ch[f->tmpl].data, tls_ch[f->tmpl].len);
			return;
		}
		if (f->tls12 && j < f->hs) {
			const struct big_tmpl *t = &tls12_flight[f->name];
			uint32_t nseg = f->hs - 5; /* server flight segments: steps 1..nseg */
			if (j <= nseg) {
				size_t off = (j - 1) * mss(f), len = t->len - off;
				if (len > mss(f))
					len = mss(f);
				emit_tcp(f, 1, j == nseg ? TH_ACK | TH_PSH : TH_ACK, t->data + off,
					 len);
			} else if (j == nseg + 1) {
				emit_tcp(f, 0, TH_ACK, NULL, 0);
			} else if (j == nseg + 2) { /* ClientKeyExchange, CCS, Finished */
				uint8_t cke[37] = {16, 0, 0, 33, 32};
				putrnd(cke + 5, 32);
				uint8_t *q = tls_record(b, 0x16, cke, sizeof cke);
				static const uint8_t one = 1;
				q = tls_record(q, 0x14, &one, 1);
				q = tls_record(q, 0x16, rnd_bytes(40), 40);
				emit_tcp(f, 0, TH_ACK | TH_PSH, b, (size_t)(q - b));
			} else if (j == nseg + 3) { /* CCS, Finished */
				static const uint8_t one = 1;
				uint8_t *q = tls_record(b, 0x14, &one, 1);
				q = tls_record(q, 0x16, rnd_bytes(40), 40);
				emit_tcp(f, 1, TH_ACK | TH_PSH, b, (size_t)(q - b));
			} else { /* first request */
				n = tls_appdata(b, rnd_range(120, 700));
				emit_tcp(f, 0, TH_ACK | TH_PSH, b, n);
			}
			return;
		}
		if (!f->tls12 && j < f->hs) { /* TLS 1.3 */
			switch (j) {
			case 1: {
				const struct tmpl *t = &tls_sh[rnd_below(16)];
				emit_tcp(f, 1, TH_ACK | TH_PSH, t->data, t->len);
				return;
			}
			case 2:
				n = tls_appdata(b, rnd_range(400, (uint32_t)mss(f)));
				emit_tcp(f, 1, TH_ACK | TH_PSH, b, n);
				return;
			case 3:
				emit_tcp(f, 0, TH_ACK, NULL, 0);
				return;
			case 4: /* client CCS + Finished */
				b[0] = 0x14;
				put16(b + 1, 0x0303);
				put16(b + 3, 1);
				b[5] = 1;
				n = 6 + tls_appdata(b + 6, 58);
				emit_tcp(f, 0, TH_ACK | TH_PSH, b, n);
				return;
			default: /* request */
				n = tls_appdata(b, rnd_range(120, 700));
				emit_tcp(f, 0, TH_ACK | TH_PSH, b, n);
				return;
			}
		}
		/* bulk: two server segments, then a client ACK (sometimes a request) */
		if ((j - f->hs) % 3 == 2) {
			if (rnd_below(40) == 0) {
				n = tls_appdata(b, rnd_range(60, 500));
				emit_tcp(f, 0, TH_ACK | TH_PSH, b, n);
			} else {
				emit_tcp(f, 0, TH_ACK, NULL, 0);
			}
		} else {
			n = tls_appdata(b, bulk_size(mss(f)));
			emit_tcp(f, 1, TH_ACK, b, n);
		}
		return;
	case K_HTTP:
		if (j == 0) {
			n = (size_t)snprintf(
			    (char *)b, sizeof b,
			    "GET /static/%u HTTP/1.1\r\nHost: %s\r\nUser-Agent: "
			    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
			    "Accept: */*\r\nAccept-Encoding: gzip\r\n"
			    "Connection: keep-alive\r\n\r\n",
			    rnd_below(100000), names[f->name]);
			emit_tcp(f, 0, TH_ACK | TH_PSH, b, n);
		} else if (j == 1) {
			emit_tcp(f, 1, TH_ACK, NULL, 0);
		} else if (j == 2) {
			size_t body = (f->data - 2) * 1000u;
			int h = snprintf((char *)b, sizeof b,
					 "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: "
					 "text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
					 "Cache-Control: max-age=600\r\n\r\n<!doctype html><html>",
					 body);
			n = (size_t)h + rnd_range(200, (uint32_t)(mss(f) - (size_t)h));
			memset(b + h, 'x', n - (size_t)h);
			emit_tcp(f, 1, TH_ACK | TH_PSH, b, n);
		} else if (j % 3 == 2) {
			emit_tcp(f, 0, TH_ACK, NULL, 0);
		} else {
			n = bulk_size(mss(f));
			memset(b, 'y', n);
			emit_tcp(f, 1, TH_ACK, b, n);
		}
		return;
	default: /* K_TCPUNK: random request/response */
		dir = (int)(j & 1);
		n = dir ? rnd_range(30, (uint32_t)mss(f)) : rnd_range(20, 300);
		emit_tcp(f, dir, TH_ACK | TH_PSH, rnd_bytes(n), n);
		return;
	}
}

static size_t dns_name(uint8_t *p, const char *name)
{
	size_t n = 0;
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);
		p[n++] = (uint8_t)l;
		memcpy(p + n, name, l);
		n += l;
		name += l + (dot ? 1 : 0);
	}
	p[n++] = 0;
	return n;
}

static void emit_dns(struct flow *f, int dir)
{
	uint8_t b[512], *p = b;
	int aaaa = f->ipver == 6;
	p = put16(p, f->qid);
	p = put16(p, dir ? 0x8180 : 0x0100);
	p = put16(p, 1);
	p = put16(p, dir ? 1 : 0);
	p = put16(p, 0);
	p = put16(p, 0);
	p += dns_name(p, names[f->name]);
	p = put16(p, aaaa ? 28 : 1);
	p = put16(p, 1);
	if (dir) {
		p = put16(p, 0xc00c);
		p = put16(p, aaaa ? 28 : 1);
		p = put16(p, 1);
		p = put32(p, 300);
		p = put16(p, aaaa ? 16 : 4);
		uint8_t a[16];
		struct flow srv = *f;
		srv.srv_local = 0;
		srv.srv = f->name * 16 + 1;
		put_addr(a, &srv, 1);
		memcpy(p, a, aaaa ? 16 : 4);
		p += aaaa ? 16 : 4;
	}
	emit_udp(f, dir, b, (size_t)(p - b));
}

static void emit_ntp(struct flow *f, int dir)
{
	uint8_t b[48];
	memset(b, 0, sizeof b);
	b[0] = dir ? 0x24 : 0x23; /* LI 0, VN 4, mode 3 / 4 */
	b[1] = dir ? 2 : 0;
	b[2] = 6;
	b[3] = 0xe9;
	memcpy(b + 40, rnd_bytes(8), 8);
	if (dir)
		memcpy(b + 16, rnd_bytes(24), 24);
	emit_udp(f, dir, b, sizeof b);
}

/* QUIC packet j (j >= 1) after the client Initial. */
static void emit_quic(struct flow *f, uint32_t j)
{
	uint8_t b[1500];
	size_t n;
	int dir;
	if (j <= 3) { /* server Initial + Handshake, client Handshake: long headers */
		dir = j < 3;
		n = dir ? rnd_range(1150, 1250) : rnd_range(90, 160);
		memcpy(b, rnd_bytes(n), n);
		b[0] = (uint8_t)(0xc0 | (j == 1 ? 0x00 : 0x20) | (b[0] & 0x0f));
		put32(b + 1, 1);
		b[5] = 8;
		b[14] = 8;
	} else { /* 1-RTT short header */
		dir = (j % 4) != 0;
		n = dir ? (rnd_below(10) < 8 ? 1252 : rnd_range(60, 1252)) : rnd_range(35, 80);
		memcpy(b, rnd_bytes(n), n);
		b[0] = (uint8_t)(0x40 | (b[0] & 0x3f));
	}
	emit_udp(f, dir, b, n);
}

/* Pick the kind of a new flow from the profile's mix (percent). */
static enum kind pick_kind(void)
{
	static const uint8_t mix_dpi[K__COUNT] = {45, 3, 10, 15, 2, 17, 8};
	static const uint8_t mix_gw[K__COUNT] = {40, 20, 22, 5, 0, 3, 10};
	static const uint8_t mix_idle[K__COUNT] = {0, 0, 75, 0, 25, 0, 0};
	static const uint8_t mix_det[K__COUNT] = {0, 0, 0, 0, 0, 60, 40};
	static const uint8_t mix_flood[K__COUNT] = {70, 30, 0, 0, 0, 0, 0}; /* legitimate */
	const uint8_t *m = o.profile == P_DPI	      ? mix_dpi
			   : o.profile == P_GATEWAY   ? mix_gw
			   : o.profile == P_HOLD_IDLE ? mix_idle
			   : o.profile == P_FLOOD     ? mix_flood
						      : mix_det;
	uint32_t r = rnd_below(100), acc = 0;
	for (int k = 0; k < K__COUNT; k++) {
		acc += m[k];
		if (r < acc)
			return (enum kind)k;
	}
	return K_TLS;
}

/* Long-flow length: most are medium, a third are bulk transfers. */
static uint32_t long_len(void)
{
	return rnd_below(100) < 65 ? rnd_range(20, 150) : rnd_range(300, 2000);
}

static void flow_start(struct flow *f)
{
	uint64_t k = flow_serial++;
	memset(f, 0, sizeof *f);
	f->kind = (uint8_t)pick_kind();
	f->ipver = rnd_unit() < o.ipv6_share ? 6 : 4;
	f->vlan = rnd_unit() < o.vlan_share ? (uint16_t)(10 * (1 + rnd_below(4))) : 0;
	/* unique (client, client port) while fewer than hosts * 64511 flows were started */
	f->cli = 256 + (uint32_t)((k % o.hosts) * 2654435761u % o.hosts);
	f->sport = (uint16_t)(1024 + ((k / o.hosts) * 32749u) % 64511u);
	f->seq[0] = (uint32_t)rnd();
	f->seq[1] = (uint32_t)rnd();
	f->qid = (uint16_t)rnd();
	int gw = o.profile == P_GATEWAY;
	switch (f->kind) {
	case K_TLS:
		f->tmpl = (uint8_t)rnd_below(n_tls_ch);
		f->name = tls_ch[f->tmpl].name;
		f->dport = 443;
		f->srv = 1 + f->name * 16 + rnd_below(15);
		f->tls12 = rnd_below(100) < (gw ? 30u : 70u);
		f->hs =
		    (uint8_t)(f->tls12 ? 5 + (tls12_flight[f->name].len + mss(f) - 1) / mss(f) : 6);
		f->data = f->hs + (gw ? long_len() : rnd_range(0, 2));
		break;
	case K_QUIC:
		f->tmpl = (uint8_t)rnd_below(n_quic_init);
		f->name = quic_init[f->tmpl].name;
		f->dport = 443;
		f->srv = 1 + f->name * 16 + rnd_below(15);
		f->data = gw ? 4 + long_len() : rnd_range(6, 10);
		break;
	case K_DNS:
		f->name = (uint8_t)rnd_below(N_NAMES);
		f->dport = 53;
		f->srv_local = 1;
		f->srv = 1 + rnd_below(2); /* 10.0.0.1, 10.0.0.2 */
		f->data = 2;
		break;
	case K_HTTP:
		f->name = (uint8_t)rnd_below(N_NAMES);
		f->dport = 80;
		f->srv = 1 + f->name * 16 + rnd_below(15);
		f->data = gw ? rnd_range(4, 12) : rnd_range(4, 6);
		break;
	case K_NTP:
		f->dport = 123;
		f->srv = 60000 + rnd_below(8);
		f->data = 2;
		break;
	case K_TCPUNK:
		f->dport = (uint16_t)rnd_range(20000, 40000);
		f->srv = 65536 + rnd_below(65536);
		f->data = rnd_range(4, 8);
		break;
	default:
		f->dport = (uint16_t)rnd_range(20000, 40000);
		f->srv = 65536 + rnd_below(65536);
		f->data = gw ? rnd_range(1, 20) : rnd_range(2, 6);
		break;
	}
	if (o.profile == P_HOLD_DETECT)
		f->data = 1;
}

static int is_tcp(const struct flow *f)
{
	return f->kind == K_TLS || f->kind == K_HTTP || f->kind == K_TCPUNK;
}

/* Emit the next packet of f; returns 1 when the flow has ended (or, in the hold profiles,
 * has sent its opening packets). */
static int flow_next(struct flow *f)
{
	uint32_t s = f->step++;
	if (s == 0) { /* a flow counts once it has sent a packet */
		st_flows++;
		st_kind_flows[f->kind]++;
	}
	if (is_tcp(f)) {
		if (s == 0) {
			emit_tcp(f, 0, TH_SYN, NULL, 0);
		} else if (s == 1) {
			emit_tcp(f, 1, TH_SYN | TH_ACK, NULL, 0);
		} else if (s == 2) {
			emit_tcp(f, 0, TH_ACK, NULL, 0);
		} else if (s < 3 + f->data) {
			tcp_app_step(f, s - 3);
			if (o.profile == P_HOLD_DETECT)
				return 1;
		} else if (s == 3 + f->data) {
			emit_tcp(f, 0, TH_FIN | TH_ACK, NULL, 0);
		} else if (s == 4 + f->data) {
			emit_tcp(f, 1, TH_FIN | TH_ACK, NULL, 0);
		} else {
			emit_tcp(f, 0, TH_ACK, NULL, 0);
			return 1;
		}
		return 0;
	}
	switch (f->kind) {
	case K_DNS:
		emit_dns(f, (int)s);
		break;
	case K_NTP:
		emit_ntp(f, (int)s);
		break;
	case K_QUIC:
		if (s == 0)
			emit_udp(f, 0, quic_init[f->tmpl].data, quic_init[f->tmpl].len);
		else
			emit_quic(f, s);
		break;
	default: {
		int dir = s == 0 ? 0 : (int)(rnd_below(3) == 0);
		size_t n = rnd_range(16, o.profile == P_GATEWAY ? 1400 : 300);
		emit_udp(f, dir, rnd_bytes(n), n);
		break;
	}
	}
	return f->step >= f->data;
}

/* ---------------------------------------------------------------- flood */

/* The flood profile (see the top of the file). The SYNs draw from flood_rng only, and with
 * --legit-only a skipped SYN still advances the clock and the IPv4 id as its packet would
 * (advance_clock is the one use of the main generator per packet), so the legitimate packets
 * come out identical. */
static void run_flood(void)
{
	struct flow *legit = calloc(o.legit, sizeof *legit), syn;
	uint64_t flood_rng = o.seed ^ 0x5bd1e9955bd1e995ULL;
	if (!legit) {
		fprintf(stderr, "gen_workload: out of memory\n");
		exit(1);
	}
	for (uint32_t i = 0; i < o.legit; i++) {
		flow_start(&legit[i]);
		legit[i].data = legit[i].hs + 0x7fffffffu; /* never ends within the capture */
	}
	memset(&syn, 0, sizeof syn);
	syn.kind = K_TCPUNK;
	syn.ipver = 4;
	syn.dport = 443;
	for (uint64_t n = 0; n < o.flows; n++) {
		if (n % o.legit_every == 0)
			flow_next(&legit[(n / o.legit_every) % o.legit]);
		uint64_t r = splitmix64(&flood_rng);
		syn.spoof = (uint32_t)(11 + (r >> 56) % 115) << 24 | ((uint32_t)r & 0xffffff);
		syn.sport = (uint16_t)(1024 + (r >> 24) % 64511);
		syn.srv = legit[(r >> 40) % o.legit].srv;
		syn.cli = (uint32_t)r;
		syn.seq[0] = (uint32_t)(r >> 16);
		if (o.legit_only) {
			ip_id++; /* what pkt_begin would have used */
			advance_clock();
			continue;
		}
		st_flows++;
		st_kind_flows[K_TCPUNK]++;
		emit_tcp(&syn, 0, TH_SYN, NULL, 0);
	}
	free(legit);
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: gen_workload -o FILE [--profile dpi|gateway|hold-idle|hold-detect|flood]\n"
	    "         [--flows N] [--packets N] [--seed S] [--ipv6-share F] [--vlan-share F]\n"
	    "         [--pps R] [--hold SECONDS] [--hosts N]\n"
	    "         [--legit N] [--legit-every K] [--legit-only]\n"
	    "  --flows    concurrent flows (dpi, gateway), flows opened (hold-*), SYNs (flood)\n"
	    "  --packets  total packets (dpi, gateway); hold-* ignore it\n"
	    "  --pps      virtual packet rate for timestamps\n"
	    "  --hold     hold-*: idle seconds after the last flow opened (one keep-alive flow)\n"
	    "  --hosts    local client addresses (10.0.0.0/8, fd00:0:42::/64)\n"
	    "  --legit    flood: long legitimate flows (default 8)\n"
	    "  --legit-every flood: one legitimate packet after every K SYNs (default 20)\n"
	    "  --legit-only  flood: the legitimate packets only (the clean capture)\n");
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0) {
		fprintf(stderr, "gen_workload: %s: not a number: %s\n", what, s);
		exit(2);
	}
	if (*end == 'k' || *end == 'K')
		v *= 1e3, end++;
	else if (*end == 'M' || *end == 'm')
		v *= 1e6, end++;
	else if (*end == 'G' || *end == 'g')
		v *= 1e9, end++;
	if (*end) {
		fprintf(stderr, "gen_workload: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return (uint64_t)v;
}

static double parse_share(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || v < 0 || v > 1) {
		fprintf(stderr, "gen_workload: %s: expected a share in [0,1]: %s\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"flows", required_argument, 0, 'f'},
					   {"packets", required_argument, 0, 'n'},
					   {"profile", required_argument, 0, 'p'},
					   {"seed", required_argument, 0, 's'},
					   {"ipv6-share", required_argument, 0, '6'},
					   {"vlan-share", required_argument, 0, 'v'},
					   {"pps", required_argument, 0, 'r'},
					   {"hold", required_argument, 0, 'H'},
					   {"hosts", required_argument, 0, 'h'},
					   {"legit", required_argument, 0, 'L'},
					   {"legit-every", required_argument, 0, 'E'},
					   {"legit-only", no_argument, 0, 'O'},
					   {"output", required_argument, 0, 'o'},
					   {"help", no_argument, 0, '?'},
					   {0, 0, 0, 0}};
	int c, set6 = 0, setv = 0, setr = 0;
	o.flows = 20000;
	o.packets = 1000000;
	o.seed = 1;
	o.hosts = 4096;
	o.hold_s = 2;
	o.legit = 8;
	o.legit_every = 20;
	while ((c = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.flows = parse_u64(optarg, "--flows");
			break;
		case 'n':
			o.packets = parse_u64(optarg, "--packets");
			break;
		case 's':
			o.seed = parse_u64(optarg, "--seed");
			break;
		case 'h':
			o.hosts = (uint32_t)parse_u64(optarg, "--hosts");
			break;
		case '6':
			o.ipv6_share = parse_share(optarg, "--ipv6-share");
			set6 = 1;
			break;
		case 'v':
			o.vlan_share = parse_share(optarg, "--vlan-share");
			setv = 1;
			break;
		case 'r':
			o.pps = (double)parse_u64(optarg, "--pps");
			setr = 1;
			break;
		case 'H':
			o.hold_s = strtod(optarg, NULL);
			break;
		case 'L':
			o.legit = (uint32_t)parse_u64(optarg, "--legit");
			break;
		case 'E':
			o.legit_every = (uint32_t)parse_u64(optarg, "--legit-every");
			break;
		case 'O':
			o.legit_only = 1;
			break;
		case 'o':
			o.out = optarg;
			break;
		case 'p':
			if (!strcmp(optarg, "dpi"))
				o.profile = P_DPI;
			else if (!strcmp(optarg, "gateway"))
				o.profile = P_GATEWAY;
			else if (!strcmp(optarg, "hold-idle"))
				o.profile = P_HOLD_IDLE;
			else if (!strcmp(optarg, "hold-detect"))
				o.profile = P_HOLD_DETECT;
			else if (!strcmp(optarg, "flood"))
				o.profile = P_FLOOD;
			else {
				fprintf(stderr, "gen_workload: --profile: unknown profile %s\n",
					optarg);
				return 2;
			}
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!o.out || optind != argc || o.flows == 0 || o.hosts < 16 || o.hosts > (1u << 20) ||
	    o.legit == 0 || o.legit_every == 0) {
		usage();
		return 2;
	}
	int gw = o.profile == P_GATEWAY, flood = o.profile == P_FLOOD;
	int hold = o.profile == P_HOLD_IDLE || o.profile == P_HOLD_DETECT;
	if (!set6)
		o.ipv6_share = gw ? 0.15 : hold || flood ? 0.0 : 0.05;
	if (!setv)
		o.vlan_share = gw ? 0.2 : 0.0;
	if (!setr)
		o.pps = hold || flood ? 1e6 : gw ? 50000 : 100000;
	if (o.pps < 1)
		o.pps = 1;
	dt_ns = (uint64_t)(1e9 / o.pps);
	if (dt_ns == 0)
		dt_ns = 1;

	if (!gcry_check_version(GCRYPT_VERSION)) {
		fprintf(stderr, "gen_workload: libgcrypt version mismatch\n");
		return 1;
	}
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);

	uint64_t sm = o.seed;
	for (int i = 0; i < 4; i++)
		rng_s[i] = splitmix64(&sm);
	for (size_t i = 0; i < sizeof rndbuf; i++)
		rndbuf[i] = (uint8_t)rnd();
	build_templates();

	opath = o.out;
	ofd = strcmp(o.out, "-") ? open(o.out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : 1;
	if (ofd < 0) {
		fprintf(stderr, "gen_workload: %s: %s\n", o.out, strerror(errno));
		return 1;
	}
	obuf = malloc(OBUF_SIZE);
	struct flow *slots = calloc(hold || flood ? 1 : o.flows, sizeof *slots);
	if (!obuf || !slots) {
		fprintf(stderr, "gen_workload: out of memory for %llu flows\n",
			(unsigned long long)o.flows);
		return 1;
	}
	/* pcap global header: magic, v2.4, thiszone 0, sigfigs 0, snaplen 65535, DLT_EN10MB */
	uint32_t gh[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
	memcpy(obuf, gh, 24);
	opos = 24;
	now_ns = 1700000000ull * 1000000000ull;
	uint64_t t0 = now_ns;

	if (flood) {
		run_flood();
	} else if (hold) {
		for (uint64_t i = 0; i < o.flows; i++) {
			flow_start(&slots[0]);
			while (!flow_next(&slots[0]))
				;
		}
		/* idle period: one keep-alive UDP flow, 100 packets per second */
		uint64_t end = now_ns + (uint64_t)(o.hold_s * 1e9);
		struct flow ka;
		memset(&ka, 0, sizeof ka);
		ka.kind = K_UDPUNK;
		ka.ipver = 4;
		ka.cli = 255;
		ka.srv = 65535;
		ka.sport = 40000;
		ka.dport = 40001;
		st_flows++;
		st_kind_flows[K_UDPUNK]++;
		dt_ns = 10000000;
		while (now_ns < end)
			emit_udp(&ka, 0, rnd_bytes(64), 64);
	} else {
		for (uint64_t i = 0; i < o.flows; i++)
			flow_start(&slots[i]);
		for (uint64_t n = 0; n < o.packets; n++) {
			struct flow *f = &slots[o.flows > 1 ? rnd() % o.flows : 0];
			if (flow_next(f))
				flow_start(f);
		}
	}
	oflush();
	if (ofd != 1 && close(ofd)) {
		fprintf(stderr, "gen_workload: %s: %s\n", o.out, strerror(errno));
		return 1;
	}
	static const char *const pnames[] = {"dpi", "gateway", "hold-idle", "hold-detect", "flood"};
	double dur = (double)(now_ns - t0) / 1e9;
	printf(
	    "{\"profile\":\"%s\",\"seed\":%llu,\"packets\":%llu,\"flows\":%llu,"
	    "\"concurrent_flows\":%llu,\"bytes\":%llu,\"ip_bytes\":%llu,"
	    "\"pcap_bytes\":%llu,\"duration_s\":%.3f,\"pkts_per_flow\":%.2f,"
	    "\"avg_frame\":%.1f,\"ipv6_share\":%.3f,\"vlan_share\":%.3f,\"kinds\":{",
	    pnames[o.profile], (unsigned long long)o.seed, (unsigned long long)st_packets,
	    (unsigned long long)st_flows, (unsigned long long)o.flows, (unsigned long long)st_bytes,
	    (unsigned long long)st_ipbytes, (unsigned long long)(24 + 16 * st_packets + st_bytes),
	    dur, st_flows ? (double)st_packets / (double)st_flows : 0.0,
	    st_packets ? (double)st_bytes / (double)st_packets : 0.0, o.ipv6_share, o.vlan_share);
	for (int k = 0; k < K__COUNT; k++)
		printf("%s\"%s\":{\"flows\":%llu,\"packets\":%llu}", k ? "," : "", kind_names[k],
		       (unsigned long long)st_kind_flows[k], (unsigned long long)st_kind_pkts[k]);
	printf("}}\n");
	free(slots);
	free(obuf);
	return 0;
}
