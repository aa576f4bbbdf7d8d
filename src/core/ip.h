/*
 * ip.h - IP addresses as bytes. IPv4 is stored as an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * so that one 16-byte compare, one hash and one CIDR routine serve both families.
 */
#ifndef CH_CORE_IP_H
#define CH_CORE_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ch_ip {
    uint8_t b[16];
    uint8_t family; /* 0 = absent, 4 or 6 */
} ch_ip;

/* Strict parse of dotted-quad IPv4 (no leading zeros beyond "0") or RFC 4291 IPv6 text. */
bool ch_ip_parse(const char *s, size_t n, ch_ip *out);
/* Format into buf (at least 46 bytes); returns length. */
size_t ch_ip_format(const ch_ip *ip, char *buf);
/* Private (RFC 1918, fc00::/7), loopback, link-local, CGNAT 100.64/10, unspecified,
 * multicast and other non-routable ranges: addresses GeoIP must not look up. */
bool ch_ip_is_internal(const ch_ip *ip);
/* CIDR containment; prefix is in the family's own bits (0..32 for IPv4, 0..128 for IPv6). */
bool ch_ip_in_prefix(const ch_ip *ip, const ch_ip *net, unsigned prefix);
bool ch_ip_equal(const ch_ip *a, const ch_ip *b);

#endif
