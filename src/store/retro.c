/*
 * retro.c - retro-hunting (retro.h): a search over the event store whose per-match callback
 * runs the intel matcher and raises hits.
 *
 * Cost: one pass over the stored events of the window (a full scan: the indicators are not
 * known in advance to the segments' indexes, and a feed of thousands of domains is cheaper to
 * test per event through the matcher's hash and suffix sets than to look up term by term).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/mem.h"
#include "intel/intel_match.h"
#include "offense/report.h"
#include "offense/store.h"
#include "pipeline/pipeline.h"
#include "rules/rule.h"
#include "store/retro.h"
#include "store/search.h"

#define RETRO_STATE "retro/"

typedef struct hunt {
    ch_pipeline *p;
    ch_store *db;
    const ch_intel_matcher *m;
    const ch_rule_info *rule;
    const char *set;
    ch_offense_sink sink;
    ch_retro_result *r;
    ch_buf ev;
    char users[64][256];
    size_t nusers;
    int rc;
    ch_error *err;
} hunt;

/* Users whose offense changed; their ids are read after the checkpoint (an offense created
 * here gets its id when it is first saved). */
static void note_user(hunt *h, ch_sv u)
{
    for (size_t i = 0; i < h->nusers; i++)
        if (strlen(h->users[i]) == u.n && memcmp(h->users[i], u.p, u.n) == 0)
            return;
    if (h->nusers == sizeof h->users / sizeof *h->users || u.n >= sizeof h->users[0])
        return;
    memcpy(h->users[h->nusers], u.p, u.n);
    h->users[h->nusers++][u.n] = '\0';
}

static void on_match(void *ud, const ch_event *stored, uint64_t rid)
{
    hunt *h = ud;
    if (h->rc < 0)
        return;
    h->r->scanned++;
    if (stored->threat.set != NULL) {
        h->r->already++; /* matched when it was ingested: its hit was raised then */
        return;
    }
    ch_event ev = *stored;
    memset(&ev.threat, 0, sizeof ev.threat);
    ch_intel_match(h->m, &ev);
    if (ev.threat.set == NULL || (h->set && strcmp(ev.threat.set, h->set) != 0))
        return;
    h->r->matched++;
    char key[48];
    snprintf(key, sizeof key, RETRO_STATE "%016" PRIx64, rid);
    void *v = NULL;
    size_t vn = 0;
    ch_error e = {0};
    int rc = ch_store_get_state(h->db, key, &v, &vn, &e);
    ch_free(v);
    if (rc == 0) {
        h->r->already++;
        return;
    }
    if (rc != CH_ENOTFOUND) {
        h->rc = ch_error_set(h->err, rc, "%s", e.msg);
        return;
    }
    if (ev.user_name.n == 0) {
        h->r->unlinked++;
        return;
    }
    ch_buf_clear(&h->ev);
    ch_buf_adds(&h->ev, "retro: true; ");
    ch_threat_describe(&ev.threat, &h->ev);
    ch_rule_hit hit;
    memset(&hit, 0, sizeof hit);
    hit.rule = h->rule;
    hit.ts_ms = ev.ts_ms;
    hit.first_ms = ev.ts_ms;
    hit.index_field = "user.name";
    hit.index_value = ev.user_name;
    hit.user = ev.user_name;
    hit.event_ids = ev.id.n ? &ev.id : NULL;
    hit.nevent_ids = ev.id.n ? 1 : 0;
    hit.event_count = 1;
    hit.evidence = h->ev.data ? h->ev.data : "";
    hit.event = &ev;
    ch_offense_sink_hit(&hit, &h->sink);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if ((rc = ch_store_put_state(h->db, key, "1", 1, (int64_t)ts.tv_sec * 1000, &e)) < 0) {
        h->rc = ch_error_set(h->err, rc, "%s", e.msg);
        return;
    }
    h->r->raised++;
    note_user(h, ev.user_name);
}

int ch_retro_hunt(ch_pipeline *p, ch_evstore *es, const ch_retro_opts *o, ch_retro_result *r,
                  ch_error *err)
{
    memset(r, 0, sizeof *r);
    const ch_ruleset *rs = ch_pipeline_rules(p);
    ch_store *db = ch_pipeline_store(p);
    const ch_intel_matcher *m = o->matcher ? o->matcher : ch_pipeline_intel(p);
    int ri = rs ? ch_ruleset_find(rs, "CJ-MINE-03") : -1;
    if (ri < 0 || db == NULL)
        return ch_error_set(err, CH_ENOTFOUND,
                            "retro-hunting needs the content pack's CJ-MINE-03 and a store");
    if (m == NULL)
        return 0; /* no intelligence loaded: nothing can match */
    hunt h = {
        .p = p, .db = db, .m = m, .rule = &rs->rules[ri]->info, .set = o->set, .r = r, .err = err};
    h.sink.offenses = ch_pipeline_offenses(p);
    h.sink.risk = ch_pipeline_risk(p);
    ch_buf_init(&h.ev, 1 << 20);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    ch_search_opts so = {
        .expr = "event.dataset in [\"cloudtrail\", \"route53resolver\", \"vpcflow\"]",
        .from_ms = o->since_ms ? o->since_ms : now - 30LL * 86400000,
        .to_ms = INT64_MAX,
        .asc = true,
        .on_match = on_match,
        .match_typed_only = true, /* the intel matcher reads normalized fields only */
        .match_ud = &h,
    };
    ch_search *s = NULL;
    int rc = ch_search_new(&so, &s, err);
    if (rc < 0)
        goto cleanup;
    /* The marks of raised records and the offenses they changed commit together. */
    if ((rc = ch_store_begin(db, err)) < 0)
        goto cleanup;
    rc = ch_search_run(s, es, err);
    if (rc == 0 && h.rc < 0)
        rc = h.rc;
    if (rc == 0)
        rc = ch_pipeline_checkpoint(p, NULL, NULL, err);
    if (rc < 0) {
        ch_store_rollback(db);
        ch_error e2 = {0};
        ch_store_commit(db, &e2);
        goto cleanup;
    }
    rc = ch_store_commit(db, err);
    for (size_t i = 0; i < h.nusers && rc == 0; i++) {
        const ch_offense *of = ch_offenses_find_active(ch_pipeline_offenses(p), "user.name",
                                                       h.users[i], strlen(h.users[i]));
        if (of != NULL)
            r->offenses[r->noffenses++] = of->id;
    }
    ch_search_progress pr;
    ch_search_progress_get(s, &pr);
    r->damaged = pr.segments_damaged;
cleanup:
    ch_search_free(s);
    ch_buf_free(&h.ev);
    return rc;
}

int ch_retro_run(const char *db_path, const char *pack, int64_t since_ms, const ch_retro_opts *o,
                 void (*msg)(void *ud, const char *m), void *msg_ud, ch_retro_result *r,
                 ch_error *err)
{
    ch_diag diag;
    ch_diag_init(&diag, stderr);
    diag.quiet = 1;
    ch_pipeline_config pc = {
        .db = db_path,
        .pack = pack,
        .no_geoip = true,
        .no_event_store = true, /* read here, never written */
        .diag = &diag,
        .msg = msg,
        .msg_ud = msg_ud,
    };
    ch_pipeline *p = NULL;
    ch_evstore *es = NULL;
    int rc = ch_pipeline_open(&pc, &p, err);
    if (rc < 0)
        goto cleanup;
    if ((rc = ch_evstore_open_local(ch_pipeline_store(p), false, NULL, &es, err)) < 0)
        goto cleanup;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ch_retro_opts ro = *o;
    ro.since_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - since_ms;
    rc = ch_retro_hunt(p, es, &ro, r, err);
cleanup:
    ch_evstore_close(es);
    ch_pipeline_close(p);
    return rc;
}

void ch_retro_print(const ch_retro_result *r, FILE *f)
{
    fprintf(f,
            "retro-hunt: %" PRIu64 " stored events, %" PRIu64
            " match the intelligence now, %" PRIu64 " already raised, %" PRIu64
            " raised CJ-MINE-03 (retro), %" PRIu64 " with no linked user",
            r->scanned, r->matched, r->already, r->raised, r->unlinked);
    if (r->damaged)
        fprintf(f, ", %" PRIu64 " damaged segments skipped", r->damaged);
    fprintf(f, "\n");
    if (r->noffenses) {
        fprintf(f, "offenses changed:");
        for (size_t i = 0; i < r->noffenses; i++)
            fprintf(f, " %" PRId64, r->offenses[i]);
        fprintf(f, "\n");
    }
}

static void say_stderr(void *ud, const char *m)
{
    (void)ud;
    fprintf(stderr, "%s\n", m);
}

int ch_retro_after_intel(const char *db_path, FILE *out, ch_error *err)
{
    char def[4096], dir[4200];
    if (db_path == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0)
            return 0;
        db_path = def;
    }
    struct stat st;
    if (ch_evstore_dir(db_path, dir, sizeof dir) < 0 || stat(dir, &st) != 0)
        return 0;
    ch_retro_opts o = {0};
    ch_retro_result r;
    int rc = ch_retro_run(db_path, NULL, CH_RETRO_DEFAULT_DAYS * 86400000LL, &o, say_stderr, NULL,
                          &r, err);
    if (rc == 0)
        ch_retro_print(&r, out);
    return rc;
}
