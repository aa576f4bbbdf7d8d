/*
 * offense_events.c - the search for an offense's contributing events (offense_events.h).
 */
#include "store/offense_events.h"

#include <string.h>

#include "core/buf.h"

int ch_search_offense_events(const ch_offense *o, uint64_t limit, size_t max_memory, int64_t max_ms,
                             ch_search **out, ch_error *err)
{
    *out = NULL;
    if (o->nevent_ids == 0)
        return 0;
    ch_buf ex;
    ch_buf_init(&ex, (size_t)16 << 20);
    int rc = ch_buf_adds(&ex, "event.id in [");
    for (size_t i = 0; i < o->nevent_ids && rc == 0; i++) {
        if (i)
            rc |= ch_buf_addc(&ex, ',');
        rc |= ch_buf_add_json_str(&ex, o->event_ids[i], strlen(o->event_ids[i]));
    }
    rc |= ch_buf_addc(&ex, ']');
    if (rc < 0) {
        ch_buf_free(&ex);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    /* The contributing events lie within the offense's own time span. */
    ch_search_opts so = {.expr = ex.data,
                         .from_ms = o->first_ms,
                         .to_ms = o->last_ms,
                         .asc = true,
                         .limit = limit ? limit : CH_OFFENSE_MAX_EVENT_IDS,
                         .max_memory = max_memory,
                         .max_ms = max_ms};
    rc = ch_search_new(&so, out, err); /* opts' strings are copied */
    ch_buf_free(&ex);
    return rc;
}
