/*
 * api_rules.c - the loaded rules over the REST API: the list, one rule with its expression,
 * correlation, ATT&CK techniques and test cases, turning a rule on or off, and testing a rule on
 * records a client sends.
 *
 * The rules are the running pipeline's compiled ruleset (read-only, swapped whole on reload),
 * read under the pipeline's lock for the time it takes to write them out: O(rules), a few
 * hundred at most, so ingest waits microseconds.
 *
 * Enable/disable (POST /rules/{id}) is durable first: the row goes into rule_state
 * (rules/rule_state.h) on the API's own store connection, then the flag is set on the running
 * engine under the pipeline's lock, held across both so that a reload (which re-reads the table)
 * cannot slip between them. The engine keeps the rule's windows, so nothing is lost; a disabled
 * rule is skipped from the next event on. Audited as "rule.enable"/"rule.disable" with the
 * state before and after.
 *
 * A rule test (POST /rules/test) runs in a pipeline of its own, as `coinhound rules test` does:
 * no store, the server's pack, context and GeoIP, and nothing it learns reaches the server. A
 * rule sent as YAML joins the pack's other rules (so sequence steps that name them resolve) in
 * a temporary pack of symbolic links, replacing the pack's rule of the same id; its loader
 * errors name "rule:LINE:COL". The records are pushed one by one, so each hit names the record
 * that made the rule fire. Cost: opening a pipeline (the pack's rules and sets, milliseconds)
 * plus the records; at most CH_API_TESTS_MAX run at once, the others get 429.
 */

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "core/diag.h"
#include "core/paths.h"
#include "core/mem.h"
#include "pipeline/pipeline.h"
#include "rules/expr.h"
#include "rules/rule.h"
#include "rules/rule_state.h"
#include "server/api.h"
#include "server/api_parse.h"
#include "server/audit.h"
#include "server/config.h"

#define CH_API_TESTS_MAX 2
#define TEST_RULE_FILE "zz-request.yml"
#define WHERE_RULE_FILE "zz-where.yml"
#define WHERE_RULE_ID "COINHOUND-TEST-WHERE"
#define FIRED 1u
#define MATCHED 2u

static int add_str(ch_buf *b, const char *s)
{
    return s ? ch_buf_add_json_str(b, s, strlen(s)) : ch_buf_adds(b, "null");
}

static int rule_json(ch_buf *b, const ch_rule *r, bool enabled, bool detail)
{
    int rc;
    if ((rc = ch_buf_adds(b, "{\"id\":")) < 0 || (rc = add_str(b, r->info.id)) < 0 ||
        (rc = ch_buf_printf(b, ",\"enabled\":%s", enabled ? "true" : "false")) < 0 ||
        (rc = ch_buf_adds(b, ",\"title\":")) < 0 || (rc = add_str(b, r->info.title)) < 0 ||
        (rc = ch_buf_adds(b, ",\"pack\":")) < 0 || (rc = add_str(b, r->info.pack)) < 0 ||
        (rc = ch_buf_printf(b,
                            ",\"type\":\"%s\",\"severity\":%d,\"credibility\":%d,\"relevance\":%d,"
                            "\"risk\":%d,\"tests\":%u,\"mitre\":[",
                            ch_corr_type_name(r->type), r->info.severity, r->info.credibility,
                            r->info.relevance, r->info.risk, r->ntests)) < 0)
        return rc;
    for (uint32_t i = 0; i < r->nmitre; i++)
        if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) || (rc = add_str(b, r->mitre[i])) < 0)
            return rc;
    if ((rc = ch_buf_addc(b, ']')) < 0)
        return rc;
    if (detail) {
        if ((rc = ch_buf_adds(b, ",\"file\":")) < 0 || (rc = add_str(b, r->file)) < 0 ||
            (rc = ch_buf_adds(b, ",\"where\":")) < 0 ||
            (rc = add_str(b, r->where ? ch_expr_source(r->where) : NULL)) < 0 ||
            (rc = ch_buf_printf(b, ",\"count\":%g,\"within_ms\":%lld,\"steps\":%u,\"cases\":[",
                                r->count, (long long)r->within_ms, r->nsteps)) < 0)
            return rc;
        for (uint32_t i = 0; i < r->ntests; i++) {
            const ch_rule_test *t = &r->tests[i];
            if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
                (rc = ch_buf_adds(b, "{\"name\":")) < 0 || (rc = add_str(b, t->name)) < 0 ||
                (rc = ch_buf_printf(b, ",\"expect\":\"%s\",\"line\":%u,\"events\":[",
                                    t->expect_fire ? "fire" : "silent", t->line)) < 0)
                return rc;
            for (uint32_t k = 0; k < t->nevents; k++)
                if ((k > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
                    (rc = add_str(b, t->events[k])) < 0)
                    return rc;
            if ((rc = ch_buf_adds(b, "],\"context\":")) < 0 || (rc = add_str(b, t->context)) < 0 ||
                (rc = ch_buf_addc(b, '}')) < 0)
                return rc;
        }
        if ((rc = ch_buf_addc(b, ']')) < 0)
            return rc;
    }
    return ch_buf_addc(b, '}');
}

static const ch_ruleset *rules_locked(ch_api *api)
{
    api->pipeline_lock(api->ud, true);
    return api->pipeline_rules(api->ud);
}

void ch_api_rules_list(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)rq;
    ch_api *api = ch__serve_api(ud);
    const ch_ruleset *set = rules_locked(api);
    int rc = ch_buf_addc(&rs->body, '[');
    for (uint32_t i = 0; set != NULL && rc >= 0 && i < set->n; i++) {
        if (i > 0)
            rc = ch_buf_addc(&rs->body, ',');
        if (rc >= 0)
            rc = rule_json(&rs->body, set->rules[i], api->pipeline_rule_enabled(api->ud, i), false);
    }
    api->pipeline_lock(api->ud, false);
    if (rc >= 0)
        rc = ch_buf_addc(&rs->body, ']');
    if (rc < 0)
        ch_http_error(rs, 500, "the rules could not be written");
}

void ch_api_rule_get(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const ch_ruleset *set = rules_locked(api);
    int i = set ? ch_ruleset_find(set, ch_http_param(rq, 0)) : -1;
    int rc = i >= 0 ? rule_json(&rs->body, set->rules[i],
                                api->pipeline_rule_enabled(api->ud, (uint32_t)i), true)
                    : 0;
    api->pipeline_lock(api->ud, false);
    if (i < 0)
        ch_http_error(rs, 404, "no loaded rule has that id");
    else if (rc < 0)
        ch_http_error(rs, 500, "the rule could not be written");
}

/* ---- enable / disable ---------------------------------------------------------------------- */

void ch_api_rule_update(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    ch_error err = {0};
    bool enabled = true, was = true;
    const char *id = ch_http_param(rq, 0);
    size_t blen = 0;
    const char *body = ch_http_body(rq, &blen);
    int rc = ch_api_parse_rule_toggle(body, blen, &enabled, &err);
    if (rc < 0) {
        ch__api_error(rs, rc, &err);
        return;
    }
    const ch_ruleset *set = rules_locked(api);
    int i = set ? ch_ruleset_find(set, id) : -1;
    if (i < 0) {
        api->pipeline_lock(api->ud, false);
        ch_http_error(rs, 404, "no loaded rule has that id");
        return;
    }
    /* The row and its audit entry in one transaction: both there or neither. */
    char before[32], after[32];
    snprintf(after, sizeof after, "{\"enabled\":%s}", enabled ? "true" : "false");
    pthread_mutex_lock(&api->store_mu);
    ch_sql *q = ch_store_sql(api->store);
    rc = ch_rule_state_schema(q, &err);
    if (rc >= 0)
        rc = ch_audit_schema_db(q->db, q->path, &err);
    if (rc >= 0)
        rc = ch_sql_begin(q, &err);
    if (rc >= 0) {
        rc = ch_rule_state_set(q, id, enabled, ch__api_now(), ch_http_principal(rq)->name, &was,
                               &err);
        snprintf(before, sizeof before, "{\"enabled\":%s}", was ? "true" : "false");
        ch_audit_entry e = {0,
                            ch__api_now(),
                            ch_http_principal(rq)->name,
                            ch_http_peer(rq),
                            enabled ? "rule.enable" : "rule.disable",
                            id,
                            before,
                            after};
        if (rc >= 0)
            rc = ch_audit_append_db(q->db, q->path, &e, &err);
        if (rc >= 0)
            rc = ch_sql_commit(q, &err);
        else
            ch_sql_rollback(q);
    }
    pthread_mutex_unlock(&api->store_mu);
    /* Durable: now the running engine, before anyone else can take the pipeline. */
    if (rc >= 0)
        rc = api->pipeline_rule_set(api->ud, id, enabled, &err);
    if (rc >= 0)
        rc = rule_json(&rs->body, set->rules[i], enabled, false);
    api->pipeline_lock(api->ud, false);
    if (rc < 0) {
        ch_buf_clear(&rs->body);
        ch__api_error(rs, rc, &err);
    }
}

/* ---- rule test ----------------------------------------------------------------------------- */

static atomic_int tests_running;

typedef struct test_run {
    const char *want;     /* the rule whose hits are reported */
    const char *tmp_file; /* the request's rule file in the temporary pack, or NULL */
    ch_buf *hits;
    size_t nhits;
    size_t record;  /* the record being pushed */
    uint8_t *fired; /* per record: FIRED, MATCHED */
    ch_buf msgs;    /* loader messages: a JSON array's members */
    size_t nmsgs;
    int rc;
} test_run;

/* A message with the temporary rule file's path shown as "rule". */
static int add_msg(test_run *t, const char *msg)
{
    char out[2048];
    size_t o = 0, fl = t->tmp_file ? strlen(t->tmp_file) : 0;
    for (const char *p = msg; *p && o + 8 < sizeof out;) {
        if (fl > 0 && strncmp(p, t->tmp_file, fl) == 0) {
            memcpy(out + o, "rule", 4);
            o += 4;
            p += fl;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    int rc = 0;
    if (t->nmsgs++ > 0)
        rc = ch_buf_addc(&t->msgs, ',');
    return rc < 0 ? rc : add_str(&t->msgs, out);
}

/* The companion rule's messages repeat the tested rule's (the same expression): left out. */
static void test_msg(void *ud, const char *msg)
{
    if (strstr(msg, WHERE_RULE_FILE) == NULL && strstr(msg, WHERE_RULE_ID) == NULL)
        add_msg(ud, msg);
}

static void test_hit(const ch_rule_hit *h, void *ud)
{
    test_run *t = ud;
    if (strcmp(h->rule->id, WHERE_RULE_ID) == 0) {
        t->fired[t->record] |= MATCHED;
        return;
    }
    if (strcmp(h->rule->id, t->want) != 0 || t->rc < 0)
        return;
    ch_buf *b = t->hits;
    int rc = 0;
    if (t->nhits++ > 0)
        rc = ch_buf_addc(b, ',');
    t->fired[t->record] |= FIRED;
    if (rc >= 0)
        rc = ch_buf_printf(b, "{\"rule\":");
    if (rc >= 0)
        rc = add_str(b, h->rule->id);
    if (rc >= 0)
        rc = ch_buf_printf(
            b, ",\"record\":%zu,\"time\":%lld,\"first_time\":%lld,\"event_count\":%llu", t->record,
            (long long)h->ts_ms, (long long)h->first_ms, (unsigned long long)h->event_count);
    if (rc >= 0)
        rc = ch_buf_adds(b, ",\"index_field\":");
    if (rc >= 0)
        rc = add_str(b, h->index_field);
    if (rc >= 0)
        rc = ch_buf_adds(b, ",\"index_value\":");
    if (rc >= 0)
        rc = h->index_value.p ? ch_buf_add_json_str(b, h->index_value.p, h->index_value.n)
                              : ch_buf_adds(b, "null");
    if (rc >= 0)
        rc = ch_buf_adds(b, ",\"user\":");
    if (rc >= 0)
        rc = h->user.n ? ch_buf_add_json_str(b, h->user.p, h->user.n) : ch_buf_adds(b, "null");
    if (rc >= 0)
        rc = ch_buf_adds(b, ",\"evidence\":");
    if (rc >= 0)
        rc = add_str(b, h->evidence);
    if (rc >= 0)
        rc = ch_buf_adds(b, ",\"event_ids\":[");
    for (size_t k = 0; rc >= 0 && k < h->nevent_ids; k++) {
        if (k > 0)
            rc = ch_buf_addc(b, ',');
        if (rc >= 0)
            rc = ch_buf_add_json_str(b, h->event_ids[k].p, h->event_ids[k].n);
    }
    if (rc >= 0)
        rc = ch_buf_adds(b, "]}");
    if (rc < 0)
        t->rc = rc;
}

/* "a/b" into buf; false when it does not fit. */
static bool join(char *buf, size_t cap, const char *a, const char *b)
{
    int n = snprintf(buf, cap, "%s/%s", a, b);
    return n >= 0 && (size_t)n < cap;
}

/* The top-level scalar `key` of a rule's YAML, ch_malloc'd (NULL when it has none or is not
 * YAML: the loader then says what is wrong, with its line). */
static char *yaml_scalar(const char *text, size_t n, const char *key)
{
    yaml_parser_t ps;
    yaml_document_t doc;
    char *out = NULL;
    if (!yaml_parser_initialize(&ps))
        return NULL;
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, n);
    if (yaml_parser_load(&ps, &doc)) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root != NULL && root->type == YAML_MAPPING_NODE)
            for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
                 pr < root->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
                yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
                if (k && v && k->type == YAML_SCALAR_NODE && v->type == YAML_SCALAR_NODE &&
                    strcmp((const char *)k->data.scalar.value, key) == 0) {
                    out = ch_strdup((const char *)v->data.scalar.value);
                    break;
                }
            }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&ps);
    return out;
}

/* The companion rule that reports which records the tested rule's `where` selects: the same
 * expression, no correlation, no offense index and no risk, so its hits change nothing but
 * the test's "matched" list. NULL where: none (a sequence without a rule-level where). */
static int write_where_rule(const char *dir, const char *where, ch_error *err)
{
    char path[4200];
    if (where == NULL)
        return 0;
    if (!join(path, sizeof path, dir, "rules/" WHERE_RULE_FILE))
        return ch_error_set(err, CH_ELIMIT, "%s: a path too long", dir);
    FILE *f = fopen(path, "wx");
    if (f == NULL)
        return ch_error_set(err, CH_EIO, "%s: cannot write the rule", path);
    /* A literal block scalar: the expression's text whatever its quotes and colons. */
    fputs("id: " WHERE_RULE_ID "\ntitle: events the tested rule's where selects\n"
          "severity: 0\ncredibility: 0\nrelevance: 0\nwhere: |-\n    ",
          f);
    for (const char *c = where; *c; c++) {
        fputc(*c, f);
        if (*c == '\n')
            fputs("    ", f);
    }
    fputc('\n', f);
    if (fclose(f) != 0)
        return ch_error_set(err, CH_EIO, "%s: cannot write the rule", path);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* The temporary pack in dir: every top-level entry of pack but rules/ linked, and rules/ holding
 * links to the loaded rule files but the one whose rule has the request's id, plus the
 * request's rule (text, may be NULL) written as TEST_RULE_FILE. */
static int temp_pack(const char *pack, char *const *files, size_t nfiles, const char *text,
                     const char *dir, ch_error *err)
{
    char path[4200], target[4200];
    struct stat st;
    bool has_rules_dir =
        join(path, sizeof path, pack, "rules") && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    DIR *d = opendir(pack);
    if (d == NULL)
        return ch_error_set(err, CH_EIO, "%s: cannot list the pack", pack);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "rules") == 0)
            continue;
        const char *ext = strrchr(de->d_name, '.');
        if (!has_rules_dir && ext != NULL &&
            (strcmp(ext, ".yml") == 0 || strcmp(ext, ".yaml") == 0) &&
            strncmp(de->d_name, "context.", 8) != 0 && strncmp(de->d_name, "images.", 7) != 0)
            continue; /* a pack with its rules at the top: they come through files[] */
        if (!join(target, sizeof target, pack, de->d_name) ||
            !join(path, sizeof path, dir, de->d_name) || symlink(target, path) != 0) {
            closedir(d);
            return ch_error_set(err, CH_EIO, "%s: cannot link the pack's %s", dir, de->d_name);
        }
    }
    closedir(d);
    if (!join(path, sizeof path, dir, "rules") || mkdir(path, 0700) != 0)
        return ch_error_set(err, CH_EIO, "%s: cannot make a folder", path);
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i] == NULL)
            continue;
        const char *base = strrchr(files[i], '/');
        int pn =
            snprintf(path, sizeof path, "%s/rules/%05zu-%s", dir, i, base ? base + 1 : files[i]);
        if (pn < 0 || (size_t)pn >= sizeof path || symlink(files[i], path) != 0)
            return ch_error_set(err, CH_EIO, "%s: cannot link a rule file", path);
    }
    if (text == NULL)
        return 0;
    if (!join(path, sizeof path, dir, "rules/" TEST_RULE_FILE))
        return ch_error_set(err, CH_ELIMIT, "%s: a path too long", dir);
    FILE *f = fopen(path, "wx");
    if (f == NULL)
        return ch_error_set(err, CH_EIO, "%s: cannot write the rule", path);
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) != 0 || !ok)
        return ch_error_set(err, CH_EIO, "%s: cannot write the rule", path);
    return 0;
}

/* Run t's rule over the records; the answer's members into rs->body. */
static void run_test(ch_api *api, const ch_api_rule_test *rq, const char *pack, const char *want,
                     const char *tmp_file, ch_http_resp *rs)
{
    const ch_serve_config *cfg = api->cfg;
    test_run t = {.want = want, .tmp_file = tmp_file, .hits = NULL};
    ch_buf hits, report;
    ch_buf_init(&hits, 64u << 20);
    ch_buf_init(&report, 64u << 20);
    ch_buf_init(&t.msgs, 1u << 20);
    t.hits = &hits;
    t.fired = ch_calloc(rq->nrecords ? rq->nrecords : 1, 1);
    char *dtext = NULL;
    size_t dlen = 0;
    FILE *dsink = open_memstream(&dtext, &dlen);
    ch_diag diag;
    ch_diag_init(&diag, dsink);
    ch_pipeline_config pc = {
        .no_store = true,
        .pack = pack,
        .context = cfg ? cfg->context : NULL,
        .geoip = cfg ? (const char *const *)cfg->geoip : NULL,
        .ngeoip = cfg ? cfg->ngeoip : 0,
        .no_geoip = cfg ? cfg->no_geoip : true,
        .lateness_ms = cfg ? cfg->lateness_ms : 0,
        .diag = &diag,
        .msg = test_msg,
        .msg_ud = &t,
        .on_hit = test_hit,
        .hit_ud = &t,
    };
    ch_pipeline *p = NULL;
    ch_error err = {0};
    uint64_t events = 0;
    int rc = t.fired == NULL || dsink == NULL ? ch_error_set(&err, CH_ENOMEM, "out of memory")
                                              : ch_pipeline_open(&pc, &p, &err);
    if (rc < 0) {
        if (t.nmsgs == 0 || rc != CH_EPARSE)
            add_msg(&t, err.msg);
        ch_buf_adds(&t.msgs, "]");
        char first[1024];
        snprintf(first, sizeof first, "the rule does not load: %s",
                 rc == CH_EPARSE ? "see details (FILE:LINE:COL: RULE: reason)" : err.msg);
        ch_buf d;
        ch_buf_init(&d, 2u << 20);
        ch_buf_adds(&d, "{\"errors\":[");
        ch_buf_add(&d, t.msgs.data ? t.msgs.data : "]", t.msgs.data ? t.msgs.len : 1);
        ch_buf_addc(&d, '}');
        ch_http_error_full(rs, rc == CH_EPARSE ? 422 : 500,
                           rc == CH_EPARSE ? "bad_rule" : ch_http_status_code(500), first, d.data);
        ch_buf_free(&d);
        goto done;
    }
    /* Record by record, so that a hit names the record it fired on. */
    const char *line = rq->records, *end = rq->records + rq->records_len;
    for (size_t i = 0; line < end && i < rq->nrecords; i++) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        char origin[32];
        snprintf(origin, sizeof origin, "events[%zu]", i);
        t.record = i;
        ch_error e2 = {0};
        long n = ch_pipeline_push_buffer(p, NULL, line, len, origin, &e2);
        if (n < 0) {
            ch_diag_report(&diag, CH_DS_UNKNOWN, origin, 0, UINT64_MAX, "unrecognised", "%s",
                           e2.msg);
        } else {
            events += (uint64_t)n;
        }
        line += len + 1;
    }
    rc = ch_pipeline_report_json(p, &report, CH_OFFENSE_JSON_DETAIL);
    fflush(dsink);
    if (rc < 0 || t.rc < 0) {
        ch_http_error(rs, 500, "the test's results could not be written");
        goto done;
    }
    ch_buf *b = &rs->body;
    rc = ch_buf_adds(b, "{\"rule\":");
    if (rc >= 0)
        rc = add_str(b, want);
    if (rc >= 0)
        rc = ch_buf_printf(b, ",\"records\":%zu,\"events\":%llu,\"bad_records\":%llu,\"fired\":%s",
                           rq->nrecords, (unsigned long long)events,
                           (unsigned long long)diag.errors_total, t.nhits ? "true" : "false");
    if (rc >= 0)
        rc = ch_buf_adds(b, ",\"errors\":[");
    /* The diag's lines ("events[N]:LINE: reason: message"), one string each. */
    for (const char *l = dtext, *nl; rc >= 0 && l != NULL && *l; l = nl ? nl + 1 : NULL) {
        nl = strchr(l, '\n');
        size_t ll = nl ? (size_t)(nl - l) : strlen(l);
        if (ll == 0)
            continue;
        if (l != dtext)
            rc = ch_buf_addc(b, ',');
        if (rc >= 0)
            rc = ch_buf_add_json_str(b, l, ll);
    }
    if (rc >= 0)
        rc = ch_buf_addc(b, ']');
    if (rc >= 0)
        rc = ch_buf_adds(b, ",\"matched\":[");
    for (size_t i = 0, k = 0; rc >= 0 && i < rq->nrecords; i++)
        if (t.fired[i] & MATCHED)
            rc = ch_buf_printf(b, "%s%zu", k++ ? "," : "", i);
    if (rc >= 0)
        rc = ch_buf_adds(b, "],\"fired_on\":[");
    for (size_t i = 0, k = 0; rc >= 0 && i < rq->nrecords; i++)
        if (t.fired[i] & FIRED)
            rc = ch_buf_printf(b, "%s%zu", k++ ? "," : "", i);
    if (rc >= 0)
        rc = ch_buf_adds(b, "],\"hits\":[");
    if (rc >= 0 && hits.len)
        rc = ch_buf_add(b, hits.data, hits.len);
    if (rc >= 0)
        rc = ch_buf_adds(b, "],\"warnings\":[");
    if (rc >= 0 && t.msgs.len)
        rc = ch_buf_add(b, t.msgs.data, t.msgs.len);
    if (rc >= 0)
        rc = ch_buf_addc(b, ']');
    if (rc >= 0 && report.len)
        rc = ch_buf_printf(b, ",%s", report.data);
    if (rc >= 0)
        rc = ch_buf_addc(b, '}');
    if (rc < 0) {
        ch_buf_clear(b);
        ch_http_error(rs, 500, "the test's results could not be written");
    }
done:
    ch_pipeline_close(p);
    if (dsink)
        fclose(dsink);
    free(dtext);
    ch_free(t.fired);
    ch_buf_free(&hits);
    ch_buf_free(&report);
    ch_buf_free(&t.msgs);
}

void ch_api_rules_test(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    ch_api_rule_test tq;
    ch_error err = {0};
    size_t blen = 0;
    const char *body = ch_http_body(rq, &blen);
    int rc = ch_api_parse_rule_test(body, blen, &tq, &err);
    if (rc < 0) {
        ch__api_error(rs, rc, &err);
        return;
    }
    if (atomic_fetch_add(&tests_running, 1) >= CH_API_TESTS_MAX) {
        atomic_fetch_sub(&tests_running, 1);
        ch_api_rule_test_free(&tq);
        rs->retry_after_s = 2;
        ch_http_error(rs, 429, "every rule test slot is busy; retry later");
        return;
    }
    char pack_def[4200];
    const char *pack = api->cfg ? api->cfg->pack : NULL;
    if (pack == NULL) {
        snprintf(pack_def, sizeof pack_def, "%s/cryptojacking-aws", ch_content_dir());
        pack = pack_def;
    }
    char want[CH_API_RULE_ID_MAX + 1] = "";
    char dir[4200] = "", tmp_file[4300] = "";
    char **files = NULL, *where = NULL;
    size_t nfiles = 0;
    if (tq.rule != NULL) {
        char *id = yaml_scalar(tq.rule, strlen(tq.rule), "id");
        snprintf(want, sizeof want, "%s", id ? id : "");
        ch_free(id);
        where = yaml_scalar(tq.rule, strlen(tq.rule), "where");
    } else {
        snprintf(want, sizeof want, "%s", tq.id);
    }
    /* The loaded rule files (but the one a YAML rule replaces) and the tested rule's where,
     * copied under the lock. */
    const ch_ruleset *set = rules_locked(api);
    nfiles = set ? set->n : 0;
    bool found = false;
    files = ch_calloc(nfiles ? nfiles : 1, sizeof *files);
    for (size_t i = 0; files != NULL && rc >= 0 && i < nfiles; i++) {
        const ch_rule *r = set->rules[i];
        bool same = strcmp(r->info.id, want) == 0;
        found = found || same;
        if (same && tq.rule == NULL && r->where != NULL &&
            (where = ch_strdup(ch_expr_source(r->where))) == NULL)
            rc = CH_ENOMEM;
        if ((!same || tq.rule == NULL) && (files[i] = ch_strdup(r->file)) == NULL)
            rc = CH_ENOMEM;
    }
    api->pipeline_lock(api->ud, false);
    if (files == NULL || rc < 0) {
        ch_http_error(rs, 500, "out of memory");
        goto done;
    }
    if (tq.rule == NULL && !found) {
        ch_http_error(rs, 404, "no loaded rule has that id");
        goto done;
    }
    const char *tmpdir = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/coinhound-ruletest-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (mkdtemp(dir) == NULL) {
        dir[0] = '\0';
        ch_http_error(rs, 500, "cannot make a temporary pack");
        goto done;
    }
    if ((rc = temp_pack(pack, files, nfiles, tq.rule, dir, &err)) < 0 ||
        (rc = write_where_rule(dir, where, &err)) < 0) {
        ch__api_error(rs, rc, &err);
        goto done;
    }
    if (tq.rule != NULL)
        snprintf(tmp_file, sizeof tmp_file, "%s/rules/" TEST_RULE_FILE, dir);
    run_test(api, &tq, dir, want, tmp_file[0] ? tmp_file : NULL, rs);
done:
    if (dir[0])
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (size_t i = 0; files != NULL && i < nfiles; i++)
        ch_free(files[i]);
    ch_free(files);
    ch_free(where);
    ch_api_rule_test_free(&tq);
    atomic_fetch_sub(&tests_running, 1);
}
