/*
 * propose.c - a plan from a stored offense, stored and audited as proposed (see run.h): what
 * `coinhound respond plan`, the API's GET /offenses/{id}/response_plan and automatic response
 * share. Each call opens its own connections to the database (the offense store, the response
 * store and the audit log): proposals are rare, and a caller such as the server keeps its own
 * connections free of response code.
 */
#include <stdio.h>

#include "core/buf.h"
#include "core/mem.h"
#include "offense/store.h"
#include "response/resp_store.h"
#include "response/run.h"
#include "server/audit.h"

int ch_resp_propose(const char *db, int64_t offense_id, const ch_resp_propose_opts *po,
                    ch_resp_plan **out, ch_error *err)
{
    *out = NULL;
    ch_offenses *m = ch_offenses_new();
    ch_store *st = NULL;
    ch_resp_store *rs = NULL;
    ch_resp_plan *p = NULL;
    ch_resp_linked *linked = NULL;
    ch_audit *au = NULL;
    size_t nlinked = 0;
    ch_buf after;
    ch_buf_init(&after, CH_AUDIT_JSON_MAX);
    int rc = m != NULL ? 0 : ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc >= 0)
        rc = ch_store_open(db, &st, err);
    if (rc >= 0)
        rc = ch_store_load_one(st, offense_id, m, err);
    ch_store_close(st);
    if (rc >= 0)
        rc = ch_resp_store_open(db, &rs, err);
    const ch_offense *off = rc >= 0 ? ch_offenses_at(m, 0) : NULL;
    if (rc >= 0)
        rc = ch_resp_store_linked(rs, off, &linked, &nlinked, err);
    if (rc >= 0) {
        ch_resp_opts ro = {po->terminate, po->quarantine, po->now_ms, linked, nlinked};
        rc = ch_resp_plan_build(off, &ro, &p, err);
    }
    if (rc >= 0)
        rc = ch_resp_store_put(rs, p, po->actor, po->now_ms, err);
    /* The audit entry names the plan and its offense; the steps are in the plan's row. */
    if (rc >= 0)
        rc = ch_audit_open(db, false, &au, err);
    if (rc >= 0) {
        char object[64];
        snprintf(object, sizeof object, "response_plan:%lld", (long long)p->id);
        ch_buf_printf(&after, "{\"offense\":%lld,\"status\":\"proposed\",\"steps\":%zu%s}",
                      (long long)p->offense_id, p->nsteps,
                      po->automatic ? ",\"automatic\":true" : "");
        ch_audit_entry e = {.ts = po->now_ms,
                            .actor = po->actor,
                            .source = po->source,
                            .action = "response.plan.proposed",
                            .object = object,
                            .after = after.data};
        rc = ch_audit_append(au, &e, err);
    }
    ch_audit_close(au);
    ch_free(linked);
    ch_resp_store_close(rs);
    ch_offenses_free(m);
    ch_buf_free(&after);
    if (rc < 0) {
        ch_resp_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}
