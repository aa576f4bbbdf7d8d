/*
 * event.c - dataset names and event reset. Kept separate from the writers so that every
 * stage can link the event model without the output code.
 */
#include "core/event.h"

#include <string.h>

static const char *const ds_names[CH_DS__COUNT] = {"unknown", "cloudtrail", "vpcflow",
                                                   "route53resolver"};

const char *ch_dataset_name(ch_dataset ds)
{
    return (unsigned)ds < CH_DS__COUNT ? ds_names[ds] : "unknown";
}

ch_dataset ch_dataset_from_name(const char *name, size_t n)
{
    for (int i = 1; i < CH_DS__COUNT; i++)
        if (strlen(ds_names[i]) == n && memcmp(ds_names[i], name, n) == 0)
            return (ch_dataset)i;
    return CH_DS_UNKNOWN;
}

void ch_event_reset(ch_event *ev) { memset(ev, 0, sizeof *ev); }
