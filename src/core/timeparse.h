/*
 * timeparse.h - event times as integers: milliseconds since the Unix epoch, UTC.
 * ISO 8601 parsing is hand-written because every CloudTrail and Route 53 record carries one
 * and strptime+timegm costs more than the rest of the record's normalization.
 */
#ifndef CH_CORE_TIMEPARSE_H
#define CH_CORE_TIMEPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "2024-08-02T08:53:24Z", with optional fraction and Z or +hh:mm / -hh:mm offset. */
bool ch_time_parse_iso8601(const char *s, size_t n, int64_t *ms_out);
/* Format as "2024-08-02T08:53:24.123Z" (fraction only when non-zero); buf >= 32 bytes. */
size_t ch_time_format(int64_t ms, char *buf);
/* Days since epoch for a proleptic Gregorian date (Howard Hinnant's algorithm). */
int64_t ch_days_from_civil(int64_t y, unsigned m, unsigned d);

/* "10m" -> 600000. Units: ms s m h d w; the number is a non-negative integer. The one parser of
 * durations for rules, context files and command-line options. */
bool ch_duration_parse(const char *s, size_t n, int64_t *ms);

#endif
