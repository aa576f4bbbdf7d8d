/*
 * diag.c - error counting by reason. Reasons are few (dozens), so a linear table beats a hash
 * map here; it is only touched when input is bad.
 */
#include "core/diag.h"

#include <stdarg.h>
#include <string.h>

void ch_diag_init(ch_diag *d, FILE *sink)
{
    memset(d, 0, sizeof *d);
    d->sink = sink;
}

static int reason_slot(ch_diag *d, const char *reason)
{
    for (int i = 0; i < d->nreasons; i++)
        if (strcmp(d->reasons[i].name, reason) == 0)
            return i;
    if (d->nreasons == CH_DIAG_MAX_REASONS)
        return CH_DIAG_MAX_REASONS - 1; /* the last slot absorbs overflow */
    int i = d->nreasons++;
    snprintf(d->reasons[i].name, sizeof d->reasons[i].name, "%s", reason);
    return i;
}

void ch_diag_report(ch_diag *d, ch_dataset ds, const char *file, uint64_t line, uint64_t offset,
                    const char *reason, const char *fmt, ...)
{
    if (d->capture != NULL) {
        char cmsg[512];
        va_list cap;
        va_start(cap, fmt);
        vsnprintf(cmsg, sizeof cmsg, fmt, cap);
        va_end(cap);
        d->capture(d->capture_ud, ds, file, line, offset, reason, cmsg);
        return;
    }
    int slot = reason_slot(d, reason);
    uint64_t n = ++d->reasons[slot].count;
    d->errors_total++;
    if ((unsigned)ds < CH_DS__COUNT)
        d->by_ds[ds].errors++;
    if (d->sink == NULL || d->quiet)
        return;
    if (n > CH_DIAG_MAX_MSGS_PER_REASON) {
        if (n == CH_DIAG_MAX_MSGS_PER_REASON + 1)
            fprintf(d->sink, "coinhound: %s: further '%s' errors are counted, not shown\n",
                    file ? file : "-", reason);
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        fprintf(d->sink, "coinhound: %s:%llu: %s: %s\n", file ? file : "-",
                (unsigned long long)line, reason, msg);
    else if (offset != UINT64_MAX)
        fprintf(d->sink, "coinhound: %s: offset %llu: %s: %s\n", file ? file : "-",
                (unsigned long long)offset, reason, msg);
    else
        fprintf(d->sink, "coinhound: %s: %s: %s\n", file ? file : "-", reason, msg);
}

uint64_t ch_diag_count(const ch_diag *d, const char *reason)
{
    for (int i = 0; i < d->nreasons; i++)
        if (strcmp(d->reasons[i].name, reason) == 0)
            return d->reasons[i].count;
    return 0;
}
