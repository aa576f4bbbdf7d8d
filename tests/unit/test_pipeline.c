/*
 * test_pipeline.c - the pipeline's promises, through its public API: a record read twice
 * changes nothing, correlation state survives a checkpoint and a restart (a threshold split
 * across two runs still fires), input positions come back, two pipelines writing one store
 * get distinct offense ids from the database, and what read-ahead workers prepare (whole or
 * light) ends as one thread's enrichment and counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>

#include "core/ip.h"
#include "core/mem.h"
#include "enrich/geoip.h"
#include "enrich/mmdb_write.h"
#include "ingest/prefetch.h"
#include "offense/offense.h"
#include "offense/store.h"
#include "pipeline/pipeline.h"
#include "store/evstore.h"
#include "uba/risk.h"
#include "tmpdir.h"

#define PACK CH_SOURCE_DIR "/content/cryptojacking-aws"
#define TESTS PACK "/tests"

typedef struct fx {
    char dir[64];
    char db[128];
    ch_diag diag;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(ch_test_tmpdir(f->dir, sizeof f->dir, "pipeline"), 0);
    snprintf(f->db, sizeof f->db, "%s/store.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    assert_int_equal(ch_test_rmdir(f->dir), 0);
    free(f);
    return 0;
}

static ch_pipeline *open_p(fx *f, const char *db)
{
    ch_diag_init(&f->diag, NULL);
    ch_pipeline_config c = {.db = db, .pack = PACK, .no_geoip = true, .diag = &f->diag};
    ch_pipeline *p = NULL;
    ch_error err = {0};
    if (ch_pipeline_open(&c, &p, &err) != 0)
        fail_msg("open: %s", err.msg);
    return p;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    *n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[*n] = '\0';
    fclose(fp);
    return buf;
}

static void push(ch_pipeline *p, const char *text, size_t n)
{
    ch_error err = {0};
    long k = ch_pipeline_push_buffer(p, NULL, text, n, "test", &err);
    if (k < 0)
        fail_msg("push: %s", err.msg);
}

static uint64_t rule_count(ch_pipeline *p, const char *user, const char *rule)
{
    ch_offenses *m = ch_pipeline_offenses(p);
    ch_offense *o = ch_offenses_find_active(m, "user.name", user, strlen(user));
    if (o == NULL)
        return 0;
    for (size_t i = 0; i < o->nrules; i++)
        if (strcmp(o->rules[i].id, rule) == 0)
            return o->rules[i].count;
    return 0;
}

static void checkpoint(ch_pipeline *p, const char *pos)
{
    ch_error err = {0};
    if (ch_pipeline_checkpoint(p, "test", pos, &err) != 0)
        fail_msg("checkpoint: %s", err.msg);
}

static void test_a_record_read_twice_changes_nothing(void **state)
{
    fx *f = *state;
    size_t n;
    char *text = slurp(TESTS "/auth-03-brute.jsonl", &n);
    ch_pipeline *p = open_p(f, f->db);
    push(p, text, n);
    assert_int_equal(rule_count(p, "alice", "CJ-AUTH-03"), 1);
    double risk = ch_risk_find(ch_pipeline_risk(p), "alice", 5)->risk;
    push(p, text, n); /* the same records again, in the same run */
    assert_int_equal(rule_count(p, "alice", "CJ-AUTH-03"), 1);
    assert_true(ch_risk_find(ch_pipeline_risk(p), "alice", 5)->risk == risk);
    ch_pipeline_stats st;
    ch_pipeline_stats_get(p, &st);
    assert_int_equal(st.duplicates, 6);
    checkpoint(p, NULL);
    ch_pipeline_close(p);
    /* ... and in a later run over the same store. */
    p = open_p(f, f->db);
    push(p, text, n);
    ch_pipeline_stats_get(p, &st);
    assert_int_equal(st.duplicates, 6);
    assert_int_equal(st.processed, 0);
    assert_int_equal(rule_count(p, "alice", "CJ-AUTH-03"), 1);
    assert_true(ch_risk_find(ch_pipeline_risk(p), "alice", 5)->risk == risk);
    ch_pipeline_close(p);
    free(text);
}

static void test_a_threshold_split_across_two_runs_still_fires(void **state)
{
    fx *f = *state;
    size_t n;
    char *text = slurp(TESTS "/auth-03-brute.jsonl", &n);
    /* The first three failed logins in one run, the last three in the next. */
    char *cut = text;
    for (int i = 0; i < 3; i++)
        cut = strchr(cut, '\n') + 1;
    ch_pipeline *p = open_p(f, f->db);
    push(p, text, (size_t)(cut - text));
    assert_int_equal(rule_count(p, "alice", "CJ-AUTH-03"), 0);
    checkpoint(p, "offset-3");
    ch_pipeline_close(p);

    p = open_p(f, f->db);
    ch_pipeline_stats st;
    ch_pipeline_stats_get(p, &st);
    assert_true(st.restored_keys > 0);
    char pos[64];
    ch_error err = {0};
    assert_int_equal(ch_pipeline_position(p, "test", pos, sizeof pos, &err), 0);
    assert_string_equal(pos, "offset-3");
    push(p, cut, n - (size_t)(cut - text));
    assert_int_equal(rule_count(p, "alice", "CJ-AUTH-03"), 1);
    ch_pipeline_close(p);
    free(text);
}

static void test_two_writers_get_distinct_offense_ids(void **state)
{
    fx *f = *state;
    size_t n1, n2;
    char *t1 = slurp(TESTS "/auth-03-brute.jsonl", &n1);
    char *t2 = slurp(TESTS "/evade-01-stop-logging.jsonl", &n2);
    /* The second writer's offense is another user's: bob stops the trail. */
    for (char *q = strstr(t2, "alice"); q != NULL; q = strstr(q, "alice"))
        memcpy(q, "bob  ", 5);
    /* Both open the empty store (both would have read MAX(id) + 1 = 1), then both save. */
    ch_pipeline *a = open_p(f, f->db);
    ch_diag d2;
    ch_diag_init(&d2, NULL);
    ch_pipeline_config c = {.db = f->db, .pack = PACK, .no_geoip = true, .diag = &d2};
    ch_pipeline *b = NULL;
    ch_error err = {0};
    assert_int_equal(ch_pipeline_open(&c, &b, &err), 0);
    push(a, t1, n1);
    push(b, t2, n2);
    assert_int_equal(ch_offenses_count(ch_pipeline_offenses(a)), 1);
    assert_int_equal(ch_offenses_count(ch_pipeline_offenses(b)), 1);
    checkpoint(a, NULL);
    checkpoint(b, NULL);
    int64_t ida = ch_offenses_at(ch_pipeline_offenses(a), 0)->id;
    int64_t idb = ch_offenses_at(ch_pipeline_offenses(b), 0)->id;
    assert_int_not_equal(ida, idb);
    ch_pipeline_close(a);
    ch_pipeline_close(b);
    /* Both are in the store. */
    ch_pipeline *p = open_p(f, f->db);
    assert_int_equal(ch_offenses_count(ch_pipeline_offenses(p)), 2);
    ch_pipeline_close(p);
    free(t1);
    free(t2);
}

/* The pipeline's store connection is one thread's at a time (no SQLite connection mutex,
 * docs/BENCHMARKS.md section 63), and is handed to another thread the way serve's pipeline
 * thread gets it: opened here, used on a thread started after, closed after its join. Stores
 * opened for other users (serve's API shares its one across HTTP threads under a lock of its
 * own) keep SQLite's serialized mode. SQLite's allocation counts, kept under a process-wide
 * mutex, are off. */
typedef struct run_arg {
    ch_pipeline *p;
    const char *text;
    size_t n;
} run_arg;

static void *run_on_thread(void *ud)
{
    run_arg *a = ud;
    push(a->p, a->text, a->n);
    checkpoint(a->p, NULL);
    return NULL;
}

static void test_the_store_connection_is_one_threads_and_moves_to_the_pipeline_thread(void **state)
{
    fx *f = *state;
    size_t n;
    char *text = slurp(TESTS "/auth-03-brute.jsonl", &n);
    ch_pipeline *p = open_p(f, f->db);
    assert_null(sqlite3_db_mutex(ch_store_sql(ch_pipeline_store(p))->db));
    /* Nor does SQLite count its allocations under its global mutex (memory status is off). */
    assert_int_equal(sqlite3_memory_used(), 0);
    run_arg a = {p, text, n};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_on_thread, &a), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(ch_offenses_count(ch_pipeline_offenses(p)), 1);
    ch_pipeline_close(p);
    ch_store *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_store_open(f->db, &s, &err), 0);
    assert_non_null(sqlite3_db_mutex(ch_store_sql(s)->db));
    ch_offenses *m = ch_offenses_new();
    assert_non_null(m);
    assert_int_equal(ch_store_load_active(s, m, &err), 1);
    ch_offenses_free(m);
    ch_store_close(s);
    free(text);
}

/* A rule that adds to a reference set changes run state, which a checkpoint keeps: the next
 * run's rule that tests the set still sees the value (and the pack on disk is untouched). */
static void test_rule_made_reference_set_values_survive_a_restart(void **state)
{
    fx *f = *state;
    char pack[160], path[200];
    snprintf(pack, sizeof pack, "%s/pack", f->dir);
    snprintf(path, sizeof path, "%s/rules", pack);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/rules/T-1.yml", pack);
    FILE *r = fopen(path, "w");
    fputs("id: T-1\ntitle: trail stopped\nseverity: 5\ncredibility: 5\nrelevance: 5\n"
          "where: event.action == \"StopLogging\"\n"
          "responses:\n  - refset: {name: suspects, field: user.name, ttl: 3650d}\n",
          r);
    fclose(r);
    snprintf(path, sizeof path, "%s/rules/T-2.yml", pack);
    r = fopen(path, "w");
    fputs("id: T-2\ntitle: a suspect logs in\nseverity: 5\ncredibility: 5\nrelevance: 5\n"
          "where: event.action == \"ConsoleLogin\" and user.name in $suspects\n"
          "offense: {index: user.name}\n",
          r);
    fclose(r);
    size_t n1, n2;
    char *stop = slurp(TESTS "/evade-01-stop-logging.jsonl", &n1);
    char *login = slurp(TESTS "/auth-05-no-mfa.jsonl", &n2);
    ch_diag_init(&f->diag, NULL);
    ch_pipeline_config c = {.db = f->db, .pack = pack, .no_geoip = true, .diag = &f->diag};
    ch_pipeline *p = NULL;
    ch_error err = {0};
    if (ch_pipeline_open(&c, &p, &err) != 0)
        fail_msg("open: %s", err.msg);
    push(p, stop, n1);
    ch_pipeline_stats st;
    ch_pipeline_stats_get(p, &st);
    assert_int_equal(st.refset_adds, 1);
    checkpoint(p, NULL);
    ch_pipeline_close(p);
    if (ch_pipeline_open(&c, &p, &err) != 0)
        fail_msg("reopen: %s", err.msg);
    push(p, login, n2);
    assert_int_equal(rule_count(p, "alice", "T-2"), 1);
    ch_pipeline_close(p);
    /* Without the first run's state, the login alone fires nothing. */
    char db2[200];
    snprintf(db2, sizeof db2, "%s/other.db", f->dir);
    c.db = db2;
    if (ch_pipeline_open(&c, &p, &err) != 0)
        fail_msg("open: %s", err.msg);
    push(p, login, n2);
    assert_int_equal(rule_count(p, "alice", "T-2"), 0);
    ch_pipeline_close(p);
    free(stop);
    free(login);
}

/* A country database written here (enrich/mmdb_write.h): the test needs no installed one. */
static void write_country_db(const char *path)
{
    ch_mmdb_writer *w = NULL;
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_new(&w, "Test-Country", &err), 0);
    assert_int_equal(ch_mmdb_writer_add(w, "203.0.113.0/24", "RU", "Russia", &err), 0);
    assert_int_equal(ch_mmdb_writer_add(w, "198.51.100.0/24", "GB", "United Kingdom", &err), 0);
    assert_int_equal(ch_mmdb_writer_write(w, path, &err), 0);
    ch_mmdb_writer_free(w);
}

static ch_pipeline *open_geo(ch_diag *d, const char *mmdb)
{
    ch_diag_init(d, NULL);
    const char *geo[] = {mmdb};
    ch_pipeline_config c = {.no_rules = true, .geoip = geo, .ngeoip = 1, .diag = d};
    ch_pipeline *p = NULL;
    ch_error err = {0};
    if (ch_pipeline_open(&c, &p, &err) != 0)
        fail_msg("open: %s", err.msg);
    return p;
}

static void flow_from(ch_event *ev, const char *src, int64_t ts)
{
    ch_event_reset(ev);
    ev->dataset = CH_DS_VPCFLOW;
    ev->ts_ms = ts;
    assert_true(ch_ip_parse(src, strlen(src), &ev->src_ip));
}

/* A worker behind the merge thread prepares a batch lightly: it leaves GeoIP, with the events
 * line, to the chain (the lookup costs the merge thread about what counting the worker's did).
 * Either way every event ends with one thread's country and the GeoIP counters one thread
 * would report. */
static void test_a_light_batch_leaves_geoip_to_the_chain(void **state)
{
    fx *f = *state;
    char mmdb[160];
    snprintf(mmdb, sizeof mmdb, "%s/country.mmdb", f->dir);
    write_country_db(mmdb);
    ch_diag d1, d2;
    ch_pipeline *p = open_geo(&d1, mmdb), *one = open_geo(&d2, mmdb);
    ch_prefetch_prep prep;
    ch_pipeline_prep(p, &prep);
    void *t = prep.thread_new(prep.ud);
    assert_non_null(t);
    ch_arena arena;
    ch_arena_init(&arena, 4096);
    /* Light, whole, light again for an address the chain has cached, then another. */
    const char *src[] = {"203.0.113.7", "198.51.100.9", "203.0.113.7", "198.51.100.9"};
    const char *want[] = {"RU", "GB", "RU", "GB"};
    for (int i = 0; i < 4; i++) {
        ch_event ev, direct;
        flow_from(&ev, src[i], 1000 + i);
        flow_from(&direct, src[i], 1000 + i);
        if (i == 1)
            prep.event(t, &ev, &arena);
        else
            prep.event_light(t, &ev, &arena);
        assert_int_equal((ev.prep.done & CH_PREP_GEO) != 0, i == 1);
        assert_int_equal(ch_pipeline_push_event(p, &ev, "test"), 1);
        assert_int_equal(ch_pipeline_push_event(one, &direct, "test"), 1);
        assert_string_equal(ev.src_geo.country, want[i]);
        assert_string_equal(direct.src_geo.country, want[i]);
    }
    ch_geoip_stats a, b;
    ch_geoip_stats_get(ch_pipeline_geoip(p), &a);
    ch_geoip_stats_get(ch_pipeline_geoip(one), &b);
    assert_int_equal(a.lookups, b.lookups);
    assert_int_equal(a.cache_hits, b.cache_hits);
    assert_int_equal(a.cache_misses, b.cache_misses);
    assert_int_equal(a.unknown, b.unknown);
    assert_int_equal(b.cache_misses, 2);
    prep.thread_free(prep.ud, t);
    ch_arena_free(&arena);
    ch_pipeline_close(p);
    ch_pipeline_close(one);
}

/* Segments this run's store holds, how many of them are hot (not compacted yet), their bytes,
 * and the saved hot setting. */
static void seg_counts(const char *db, uint64_t *segs, uint64_t *hot, uint64_t *hot_bytes,
                       const char **saved_hot)
{
    ch_store *st = NULL;
    ch_evstore *es = NULL;
    ch_error err = {0};
    ch_evstore_stats s = {0};
    if (ch_store_open(db, &st, &err) != 0 ||
        ch_evstore_open_local(st, false, NULL, &es, &err) != 0 ||
        es->ops->stats(es->impl, &s, &err) != 0 || ch_evstore_hot_mode(st, saved_hot, &err) != 0)
        fail_msg("store: %s", err.msg);
    *segs = *hot = *hot_bytes = 0;
    for (int d = 0; d < CH_DS__COUNT; d++) {
        *segs += s.by_ds[d].segments;
        *hot += s.by_ds[d].hot_segments;
        *hot_bytes += s.by_ds[d].hot_bytes;
    }
    ch_evstore_close(es);
    ch_store_close(st);
}

/* serve's store_hot (and any caller's event_hot) is saved in the store and decides how this
 * run seals: "off" writes cold segments at once, "on" hot segments at zstd level 1, "raw" hot
 * segments with their frames stored uncompressed, NULL keeps the saved one (default: "auto",
 * raw while the store's hot bytes stay within its budget, which a few records do). */
static void test_event_hot_setting_is_saved_and_decides_how_segments_are_sealed(void **state)
{
    fx *f = *state;
    size_t n;
    char *text = slurp(TESTS "/auth-03-brute.jsonl", &n);
    char dbs[4][600];
    const char *hot[4] = {NULL, "on", "off", "raw"};
    for (int i = 0; i < 4; i++) {
        snprintf(dbs[i], sizeof dbs[i], "%s/hot%d.db", f->dir, i);
        ch_diag_init(&f->diag, NULL);
        ch_pipeline_config c = {
            .db = dbs[i], .pack = PACK, .no_geoip = true, .diag = &f->diag, .event_hot = hot[i]};
        ch_pipeline *p = NULL;
        ch_error err = {0};
        if (ch_pipeline_open(&c, &p, &err) != 0)
            fail_msg("open: %s", err.msg);
        push(p, text, n);
        checkpoint(p, NULL);
        ch_pipeline_close(p);
    }
    uint64_t segs, nhot, on_bytes, bytes, auto_bytes;
    const char *saved;
    seg_counts(dbs[1], &segs, &nhot, &on_bytes, &saved);
    assert_true(segs > 0);
    assert_int_equal(nhot, segs);
    assert_string_equal(saved, "on");
    seg_counts(dbs[0], &segs, &nhot, &auto_bytes, &saved);
    assert_true(segs > 0);
    assert_int_equal(nhot, segs); /* the default: every checkpoint's segment sealed hot */
    assert_string_equal(saved, "auto");
    assert_true(auto_bytes > 2 * on_bytes); /* within the budget: stored, as raw stores them */
    seg_counts(dbs[2], &segs, &nhot, &bytes, &saved);
    assert_true(segs > 0);
    assert_int_equal(nhot, 0);
    assert_string_equal(saved, "off"); /* kept for the runs after this one */
    seg_counts(dbs[3], &segs, &nhot, &bytes, &saved);
    assert_true(segs > 0);
    assert_int_equal(nhot, segs);
    assert_string_equal(saved, "raw");
    assert_true(bytes > 2 * on_bytes); /* the same records, stored rather than compressed */
    assert_int_equal(bytes, auto_bytes);
    free(text);
}

static void test_record_identity_ignores_delivery(void **state)
{
    (void)state;
    ch_event a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.dataset = b.dataset = CH_DS_CLOUDTRAIL;
    a.id = b.id = CH_SV("evt-1");
    a.account_id = b.account_id = CH_SV("111122223333");
    a.region = b.region = CH_SV("us-east-1");
    a.raw_json = CH_SV("{\"eventID\":\"evt-1\"}");
    b.raw_json = CH_SV("{\"eventID\": \"evt-1\"}"); /* another envelope, other spacing */
    assert_true(ch_pipeline_record_id(&a) == ch_pipeline_record_id(&b));
    b.region = CH_SV("eu-west-1");
    assert_true(ch_pipeline_record_id(&a) != ch_pipeline_record_id(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_record_read_twice_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_threshold_split_across_two_runs_still_fires, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_writers_get_distinct_offense_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_store_connection_is_one_threads_and_moves_to_the_pipeline_thread, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_rule_made_reference_set_values_survive_a_restart,
                                        setup, teardown),
        cmocka_unit_test(test_record_identity_ignores_delivery),
        cmocka_unit_test_setup_teardown(
            test_event_hot_setting_is_saved_and_decides_how_segments_are_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_light_batch_leaves_geoip_to_the_chain, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
