/*
 * error.h - the one error model of coinhound.
 *
 * Every fallible function returns 0 (or a positive count) on success and a negative CH_E* code
 * on failure. Callers act on the small set of named codes; everything else is CH_ERR. The
 * human-readable detail (file, line, column, reason) lives beside the code in a ch_error that
 * the caller passes down, so that library code never prints and never exits: the CLI decides
 * what the user sees.
 */
#ifndef CH_CORE_ERROR_H
#define CH_CORE_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CH_OK = 0,
    CH_ERR = -1,       /* anything not worth a name of its own */
    CH_ENOMEM = -2,    /* allocation failed */
    CH_EPARSE = -3,    /* input is not what it claims to be */
    CH_ELIMIT = -4,    /* a cap (line length, depth, set size) was hit */
    CH_ENOTFOUND = -5, /* lookup missed */
    CH_EIO = -6,       /* the operating system refused a read or write */
    CH_EUSAGE = -7,    /* the caller asked for something impossible */
};

/* Detail kept beside a code. Owned by whoever declared it; no heap memory inside. */
typedef struct ch_error {
    int code;
    char msg[512];
} ch_error;

/* An empty error without zeroing all of msg, for paths run once a record: `ch_error e = {0}`
 * writes its 516 bytes every time (docs/BENCHMARKS.md section 70). */
static inline void ch_error_clear(ch_error *e)
{
    e->code = 0;
    e->msg[0] = '\0';
}

/* Set err (if not NULL) to code and a printf-formatted message; returns code so that
 * `return ch_error_set(err, CH_EPARSE, "...")` reads naturally. */
int ch_error_set(ch_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#ifdef __clang_analyzer__
/* The analyzer sees one file at a time and cannot know that ch_error_set returns its code;
 * spelled out for it alone, so that error paths are not followed as if they succeeded. */
#define ch_error_set(err, code, ...) (ch_error_set((err), (code), __VA_ARGS__), (code))
#endif

/* Short stable name of a code ("parse", "limit", ...), for logs and tests. */
const char *ch_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
