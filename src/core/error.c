/*
 * error.c - formatting of error details. Kept tiny on purpose: the hot path never formats an
 * error unless one happened.
 */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

/* The name in parentheses, so that a function-like ch_error_set macro (error.h may define one
 * for the static analyzer, which cannot see here that the code is returned) does not expand. */
int(ch_error_set)(ch_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *ch_strerror(int code)
{
    switch (code) {
    case CH_OK:
        return "ok";
    case CH_ENOMEM:
        return "out of memory";
    case CH_EPARSE:
        return "parse error";
    case CH_ELIMIT:
        return "limit exceeded";
    case CH_ENOTFOUND:
        return "not found";
    case CH_EIO:
        return "I/O error";
    case CH_EUSAGE:
        return "usage error";
    default:
        return "error";
    }
}
