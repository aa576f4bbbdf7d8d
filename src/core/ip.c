/*
 * ip.c - address parsing and classification. inet_pton is used for IPv6 (it is exact and
 * fast enough); IPv4 has a hand-written parser because it is on the hot path of every flow
 * record and inet_pton accepts nothing we need beyond it.
 */
#include "core/ip.h"

#include <arpa/inet.h>
#include <string.h>

static void set_v4(ch_ip *ip, uint32_t a)
{
    memset(ip->b, 0, 10);
    ip->b[10] = ip->b[11] = 0xff;
    ip->b[12] = (uint8_t)(a >> 24);
    ip->b[13] = (uint8_t)(a >> 16);
    ip->b[14] = (uint8_t)(a >> 8);
    ip->b[15] = (uint8_t)a;
    ip->family = 4;
}

static bool parse_v4(const char *s, size_t n, uint32_t *out)
{
    uint32_t a = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
        size_t st = i;
        unsigned v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - st < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == st || v > 255 || (i - st > 1 && s[st] == '0'))
            return false;
        a = (a << 8) | v;
    }
    if (i != n)
        return false;
    *out = a;
    return true;
}

bool ch_ip_parse(const char *s, size_t n, ch_ip *out)
{
    uint32_t a;
    if (n == 0 || n > 45)
        return false;
    if (memchr(s, ':', n) == NULL) {
        if (!parse_v4(s, n, &a))
            return false;
        set_v4(out, a);
        return true;
    }
    char tmp[46];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, out->b) != 1)
        return false;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    out->family = memcmp(out->b, mapped, 12) == 0 ? 4 : 6;
    return true;
}

size_t ch_ip_format(const ch_ip *ip, char *buf)
{
    if (ip->family == 4) {
        /* Hand-formatted: inet_ntop goes through sprintf, and every flow has two of these. */
        char *p = buf;
        for (int i = 12; i < 16; i++) {
            unsigned v = ip->b[i];
            if (i > 12)
                *p++ = '.';
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
        }
        *p = '\0';
        return (size_t)(p - buf);
    } else if (ip->family == 6) {
        inet_ntop(AF_INET6, ip->b, buf, 46);
    } else {
        buf[0] = '\0';
    }
    return strlen(buf);
}

bool ch_ip_equal(const ch_ip *a, const ch_ip *b)
{
    return a->family == b->family && memcmp(a->b, b->b, 16) == 0;
}

bool ch_ip_in_prefix(const ch_ip *ip, const ch_ip *net, unsigned prefix)
{
    if (ip->family != net->family || ip->family == 0)
        return false;
    unsigned bits = ip->family == 4 ? prefix + 96 : prefix;
    if (bits > 128)
        return false;
    unsigned full = bits / 8, rem = bits % 8;
    if (memcmp(ip->b, net->b, full) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (ip->b[full] & mask) == (net->b[full] & mask);
}

bool ch_ip_is_internal(const ch_ip *ip)
{
    const uint8_t *b = ip->b;
    if (ip->family == 4) {
        uint8_t o1 = b[12], o2 = b[13];
        return o1 == 0 || o1 == 10 || o1 == 127 || (o1 == 100 && (o2 & 0xC0) == 64) ||
               (o1 == 169 && o2 == 254) || (o1 == 172 && (o2 & 0xF0) == 16) ||
               (o1 == 192 && o2 == 168) || (o1 == 192 && o2 == 0 && b[14] == 0) ||
               (o1 == 198 && (o2 & 0xFE) == 18) || o1 >= 224;
    }
    if (ip->family == 6) {
        static const uint8_t zero[15] = {0};
        if (memcmp(b, zero, 15) == 0 && b[15] <= 1) /* :: and ::1 */
            return true;
        return (b[0] & 0xFE) == 0xFC ||                   /* fc00::/7 unique local */
               (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) || /* fe80::/10 link-local */
               b[0] == 0xFF ||                            /* multicast */
               (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8); /* 2001:db8::/32 */
    }
    return false;
}
