/*
 * lines.h - the JSON Lines reader every bench baseline shares, so they differ only in the
 * JSON library they call.
 *
 * A file is read with read(2) into one growable buffer (16 MiB to start) and cut at '\n' with
 * memchr; a line is handed out in place, never copied, and at least LR_PAD readable bytes
 * always follow it inside the buffer (simdjson needs 64), so an in-place parser can run over
 * it. The byte after the line (its '\n') may be overwritten by the caller (yajl wants a NUL).
 * Cost: one memmove of the unfinished tail per refill; a line longer than the buffer doubles
 * it (no cap: the benchmark reads its own corpus). This mirrors what coinhound's input window
 * does, so baselines and coinhound pay the same I/O.
 *
 * Also: lr_now() (monotonic seconds) and lr_report(), the one output line every baseline
 * prints: `records=N bytes=B errors=E seconds=S rec_per_s=R mb_per_s=M check=C`, where check
 * sums the lengths of the four fields touched (eventTime, eventName, userIdentity.userName,
 * sourceIPAddress) so bench/run can verify that all baselines read the same values.
 */
#ifndef CH_BENCH_LINES_H
#define CH_BENCH_LINES_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LR_PAD 64
#define LR_INITIAL (16u << 20)

typedef struct lr {
    int fd;
    char *buf;
    size_t cap; /* usable bytes; buf holds cap + LR_PAD */
    size_t start, end;
    int eof;
    uint64_t bytes;
} lr;

static inline int lr_open(lr *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->fd = open(path, O_RDONLY);
    if (r->fd < 0)
        return -1;
    r->cap = LR_INITIAL;
    r->buf = (char *)malloc(r->cap + LR_PAD);
    if (!r->buf) {
        close(r->fd);
        return -1;
    }
    return 0;
}

static inline void lr_close(lr *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    r->buf = NULL;
    r->fd = -1;
}

/* Refill after compacting; grows the buffer when a line fills it. 0 ok, -1 error. */
static inline int lr__fill(lr *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        size_t ncap = r->cap * 2;
        char *nb = (char *)realloc(r->buf, ncap + LR_PAD);
        if (!nb)
            return -1;
        r->buf = nb;
        r->cap = ncap;
    }
    while (r->end < r->cap) {
        ssize_t got = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0) {
            r->eof = 1;
            break;
        }
        r->end += (size_t)got;
        r->bytes += (uint64_t)got;
    }
    memset(r->buf + r->end, 0, LR_PAD);
    return 0;
}

/* Next non-empty line: 1 with the line in p and n (no '\n'), 0 at the end, -1 on a read
 * error. */
static inline int lr_next(lr *r, char **p, size_t *n)
{
    for (;;) {
        char *s = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = avail ? (char *)memchr(s, '\n', avail) : NULL;
        if (nl) {
            r->start += (size_t)(nl - s) + 1;
            if (nl == s)
                continue;
            *p = s;
            *n = (size_t)(nl - s);
            return 1;
        }
        if (r->eof) {
            if (avail == 0)
                return 0;
            r->start = r->end;
            *p = s;
            *n = avail;
            return 1;
        }
        if (lr__fill(r) < 0)
            return -1;
    }
}

static inline double lr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void lr_report(const char *what, uint64_t records, uint64_t bytes, uint64_t errors,
                             double seconds, uint64_t check)
{
    if (seconds <= 0)
        seconds = 1e-9;
    printf("impl=%s records=%llu bytes=%llu errors=%llu seconds=%.6f rec_per_s=%.0f "
           "mb_per_s=%.1f check=%llu\n",
           what, (unsigned long long)records, (unsigned long long)bytes, (unsigned long long)errors,
           seconds, (double)records / seconds, (double)bytes / seconds / 1e6,
           (unsigned long long)check);
}

#endif
