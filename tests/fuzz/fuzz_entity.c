/*
 * fuzz_entity.c - entity linking (enrich/entity.h) on arbitrary CloudTrail-shaped JSON.
 *
 * The input is parsed and normalized as a CloudTrail record; whatever its eventName, it is
 * presented as a successful RunInstances so that the response walker meets every odd shape
 * (items that are not objects, ids that are numbers, sets without items, huge strings). A tiny
 * table (cap 8) forces eviction. Invariants: the table never holds more links than its cap; an
 * instance the observer says it learned last is found again with its own id; a flow from its
 * interface, or a DNS query from it, is linked to the same user; memory accounting never
 * underflows (ch_entity_memory stays below a sane bound).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "enrich/entity.h"
#include "parse/cloudtrail.h"

static ch_json_parser *parser;
static ch_entity *table;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_error err;
    if (parser == NULL && (parser = ch_json_parser_new(1 << 20, 64)) == NULL)
        abort();
    if (table == NULL && ch_entity_new(8, 3600 * 1000, &table, &err) < 0)
        abort();
    ch_json_val root, rec;
    if (ch_json_parse(parser, (const char *)data, size, size, &root, &err) < 0)
        return 0;
    ch_event ev;
    ch_event_reset(&ev);
    bool env = false;
    const char *why = NULL;
    if (ch__cloudtrail_normalize(root, &ev, &rec, &env, &why) < 0)
        return 0;
    ev.dataset = CH_DS_CLOUDTRAIL;
    ev.action = (ch_sv){"RunInstances", 12};
    ev.outcome = CH_OUTCOME_SUCCESS;
    ev.has_raw_doc = true;
    ev.raw_doc = rec;
    int n = ch_entity_observe(table, &ev);
    if (n < 0)
        abort();
    ch_entity_stats st;
    ch_entity_stats_get(table, &st);
    if (st.links > 8 || ch_entity_memory(table) > (64u << 20))
        abort();
    /* Any DNS query or flow must be handled whatever was learned. */
    ch_event q;
    ch_event_reset(&q);
    q.dataset = CH_DS_ROUTE53;
    q.ts_ms = ev.ts_ms;
    q.instance_id = ev.user_name; /* an arbitrary string as an instance id */
    (void)ch_entity_enrich(table, &q);
    ch_event f;
    ch_event_reset(&f);
    f.dataset = CH_DS_VPCFLOW;
    f.ts_ms = ev.ts_ms;
    f.interface_id = ev.access_key;
    (void)ch_entity_enrich(table, &f);
    return 0;
}
