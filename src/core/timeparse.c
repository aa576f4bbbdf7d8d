/*
 * timeparse.c - ISO 8601 <-> epoch milliseconds without libc's locale or timezone machinery.
 *
 * Both directions run once per event (the normalizer parses eventTime, the events writer
 * formats @timestamp), and events come in time order: most share their date with the event
 * before. So each thread remembers its last date, as text and as days: a parse whose first ten
 * bytes are the remembered date takes its days without reading or checking them again, a
 * format of a time on the remembered day copies the date's text. Either costs about half of
 * what it did (docs/BENCHMARKS.md section 44) and changes no result: only a date that passed
 * every check is remembered, and the rest of the string is read as before.
 */
#include "core/timeparse.h"

#include <string.h>

#include <stdio.h>

int64_t ch_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, size_t at, size_t cnt, int *out)
{
    int v = 0;
    if (at + cnt > n)
        return false;
    for (size_t i = at; i < at + cnt; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* The last date a thread parsed whole ("YYYY-MM-DD", checked) and its days. */
static _Thread_local struct {
    char text[10];
    int64_t days;
    bool valid;
} parsed_date;

bool ch_time_parse_iso8601(const char *s, size_t n, int64_t *ms_out)
{
    int Y, M, D, h, m, sec;
    int64_t days;
    static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n >= 19 && parsed_date.valid && memcmp(s, parsed_date.text, 10) == 0) {
        days = parsed_date.days;
        if ((s[10] != 'T' && s[10] != ' ') || !digits(s, n, 11, 2, &h) || s[13] != ':' ||
            !digits(s, n, 14, 2, &m) || s[16] != ':' || !digits(s, n, 17, 2, &sec) || h > 23 ||
            m > 59 || sec > 60)
            return false;
    } else {
        if (!digits(s, n, 0, 4, &Y) || n < 19 || s[4] != '-' || !digits(s, n, 5, 2, &M) ||
            s[7] != '-' || !digits(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != ' ') ||
            !digits(s, n, 11, 2, &h) || s[13] != ':' || !digits(s, n, 14, 2, &m) || s[16] != ':' ||
            !digits(s, n, 17, 2, &sec))
            return false;
        if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 || sec > 60)
            return false;
        if (M == 2 && D == 29 && !((Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0))
            return false;
        days = ch_days_from_civil(Y, (unsigned)M, (unsigned)D);
        memcpy(parsed_date.text, s, 10);
        parsed_date.days = days;
        parsed_date.valid = true;
    }
    size_t i = 19;
    int64_t frac_ms = 0;
    if (i < n && (s[i] == '.' || s[i] == ',')) {
        i++;
        size_t st = i;
        int scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            frac_ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == st)
            return false;
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        int sign = s[i] == '-' ? -1 : 1;
        if (!digits(s, n, i + 1, 2, &oh))
            return false;
        size_t j = i + 3;
        if (j < n && s[j] == ':')
            j++;
        if (!digits(s, n, j, 2, &om) || oh > 23 || om > 59)
            return false;
        off = sign * (oh * 3600 + om * 60);
        i = j + 2;
    }
    if (i != n)
        return false;
    *ms_out = ((days * 86400 + h * 3600 + m * 60 + sec) - off) * 1000 + frac_ms;
    return true;
}

/* The last day a thread formatted (days since the epoch) and its "YYYY-MM-DD"; valid once a
 * day of a four-digit year was formatted. */
static _Thread_local struct {
    int64_t day;
    char text[10];
    bool valid;
} formatted_date;

/* "YYYY-MM-DD" (more digits for a year past 9999, a sign before one) of day z since the epoch at
 * p; returns the end. Remembers a four-digit year's date for the next call. */
static char *format_date(int64_t z, char *p)
{
    char *start = p;
    const int64_t day = z;
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    /* Hand-formatted: this runs once per event written, where snprintf would dominate. */
    bool four = y >= 0 && y <= 9999;
    if (!four) {
        int n = snprintf(p, 32, "%04lld", (long long)y);
        p += n > 0 ? n : 0;
    } else {
        unsigned uy = (unsigned)y;
        *p++ = (char)('0' + uy / 1000);
        *p++ = (char)('0' + uy / 100 % 10);
        *p++ = (char)('0' + uy / 10 % 10);
        *p++ = (char)('0' + uy % 10);
    }
    *p++ = '-';
    *p++ = (char)('0' + m / 10);
    *p++ = (char)('0' + m % 10);
    *p++ = '-';
    *p++ = (char)('0' + d / 10);
    *p++ = (char)('0' + d % 10);
    if (four) {
        memcpy(formatted_date.text, start, 10);
        formatted_date.day = day;
        formatted_date.valid = true;
    }
    return p;
}

size_t ch_time_format(int64_t ms, char *buf)
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - secs * 1000);
    int64_t z = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - z * 86400;
    char *p = buf;
    if (formatted_date.valid && formatted_date.day == z) {
        memcpy(p, formatted_date.text, 10);
        p += 10;
    } else {
        p = format_date(z, p);
    }
    unsigned parts[3] = {(unsigned)(sod / 3600), (unsigned)(sod / 60 % 60), (unsigned)(sod % 60)};
    static const char seps[3] = {'T', ':', ':'};
    for (int i = 0; i < 3; i++) {
        *p++ = seps[i];
        *p++ = (char)('0' + parts[i] / 10);
        *p++ = (char)('0' + parts[i] % 10);
    }
    if (frac) {
        *p++ = '.';
        *p++ = (char)('0' + frac / 100);
        *p++ = (char)('0' + frac / 10 % 10);
        *p++ = (char)('0' + frac % 10);
    }
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - buf);
}

/* "10m" -> 600000. Units: ms s m h d w; the number is a non-negative integer. */
bool ch_duration_parse(const char *s, size_t n, int64_t *ms)
{
    size_t i = 0;
    int64_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v > INT64_MAX / 10 - 10)
            return false;
        v = v * 10 + (s[i++] - '0');
    }
    if (i == 0)
        return false;
    const char *u = s + i;
    size_t un = n - i;
    int64_t mul;
    if (un == 2 && memcmp(u, "ms", 2) == 0)
        mul = 1;
    else if (un == 1 && *u == 's')
        mul = 1000;
    else if (un == 1 && *u == 'm')
        mul = 60000;
    else if (un == 1 && *u == 'h')
        mul = 3600000;
    else if (un == 1 && *u == 'd')
        mul = 86400000;
    else if (un == 1 && *u == 'w')
        mul = 7 * 86400000LL;
    else
        return false;
    if (v > INT64_MAX / mul / 4)
        return false;
    *ms = v * mul;
    return true;
}
