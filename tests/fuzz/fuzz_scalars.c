/*
 * fuzz_scalars.c - the hand-written scalar parsers every record goes through: IP addresses
 * (core/ip.h) and ISO 8601 times (core/timeparse.h), on arbitrary text, against libc.
 *
 * Both were written by hand for speed, so each is held to a slower reference that is known
 * right, and to its own formatter:
 *  - an address without ':' parses exactly when glibc's inet_pton(AF_INET) accepts it (strict
 *    dotted quad, no leading zeros), to the same bytes; any address that parses formats to a
 *    text that parses back to the same address, and lies in its own prefix of every length;
 *  - a time parses to what timegm(3) gives for its fields, minus its offset, plus its first
 *    three fraction digits; formatting that time and parsing it again gives it back (for years
 *    the format can write: 0000 to 9999).
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ip.h"
#include "core/timeparse.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void check_ip(const char *s, size_t n)
{
    ch_ip ip;
    bool ok = ch_ip_parse(s, n, &ip);
    if (n < 64 && memchr(s, '\0', n) == NULL && memchr(s, ':', n) == NULL) {
        char tmp[64];
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        unsigned char want[4];
        bool ref = inet_pton(AF_INET, tmp, want) == 1;
        CHECK(ok == ref);
        if (ok)
            CHECK(ip.family == 4 && memcmp(ip.b + 12, want, 4) == 0);
    }
    if (!ok)
        return;
    CHECK(ip.family == 4 || ip.family == 6);
    char buf[64];
    size_t k = ch_ip_format(&ip, buf);
    CHECK(k > 0 && k < 46 && buf[k] == '\0');
    ch_ip again;
    CHECK(ch_ip_parse(buf, k, &again) && ch_ip_equal(&ip, &again));
    unsigned bits = ip.family == 4 ? 32 : 128;
    for (unsigned p = 0; p <= bits; p++)
        CHECK(ch_ip_in_prefix(&ip, &ip, p));
    (void)ch_ip_is_internal(&ip);
}

static int num(const char *s, size_t at, size_t cnt)
{
    int v = 0;
    for (size_t i = at; i < at + cnt; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static void check_time(const char *s, size_t n)
{
    int64_t ms = 0;
    if (!ch_time_parse_iso8601(s, n, &ms))
        return;
    /* It parsed, so the fixed layout is there: the fields can be read back without checks. */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = num(s, 0, 4) - 1900;
    tm.tm_mon = num(s, 5, 2) - 1;
    tm.tm_mday = num(s, 8, 2);
    tm.tm_hour = num(s, 11, 2);
    tm.tm_min = num(s, 14, 2);
    tm.tm_sec = num(s, 17, 2);
    int64_t t = (int64_t)timegm(&tm);
    size_t i = 19;
    int64_t frac = 0;
    if (i < n && (s[i] == '.' || s[i] == ',')) {
        int scale = 100;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            frac += (s[i] - '0') * scale;
    }
    int64_t off = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        size_t j = i + 3 + (s[i + 3] == ':');
        off = (s[i] == '-' ? -1 : 1) * ((int64_t)num(s, i + 1, 2) * 3600 + num(s, j, 2) * 60);
    }
    CHECK(ms == (t - off) * 1000 + frac);

    static int64_t lo, hi;
    if (hi == 0) {
        CHECK(ch_time_parse_iso8601("0000-01-01T00:00:00Z", 20, &lo));
        CHECK(ch_time_parse_iso8601("9999-12-31T23:59:59.999Z", 24, &hi));
    }
    if (ms >= lo && ms <= hi) {
        char buf[64];
        size_t k = ch_time_format(ms, buf);
        int64_t back = 0;
        CHECK(k > 0 && k < 32 && ch_time_parse_iso8601(buf, k, &back) && back == ms);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_ip(s, size);
    check_time(s, size);
    return 0;
}
