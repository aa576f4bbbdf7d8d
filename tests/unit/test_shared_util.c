/*
 * test_shared_util.c - the helpers that several modules share since their duplicates were
 * merged: the hash (core/hash.h), the pointer index (core/hindex.h), the time heap
 * (core/heap.h), the SQLite opener (core/sqlite_util.h), the YAML readers (core/yaml_util.h)
 * and the parsed-record loop (parse/jsonstream.h). Each module that uses them has its own
 * tests too; these pin the contract the modules rely on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/heap.h"
#include "core/hindex.h"
#include "core/mem.h"
#include "core/sqlite_util.h"
#include "core/yaml_util.h"
#include "parse/jsonstream.h"
#include "tmpdir.h"

/* ---- hash ---------------------------------------------------------------------------------- */

static void test_fnv1a_matches_the_published_vectors(void **state)
{
    (void)state;
    /* FNV-1a 64 test vectors (Fowler/Noll/Vo): the engine saves these values with its state. */
    assert_true(ch_hash_fnv1a(CH_HASH_SEED, "", 0) == 0xcbf29ce484222325ULL);
    assert_true(ch_hash_fnv1a(CH_HASH_SEED, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(ch_hash_fnv1a(CH_HASH_SEED, "foobar", 6) == 0x85944171f73967e8ULL);
    /* Built in pieces, the same as at once. */
    assert_true(ch_hash_fnv1a(ch_hash_fnv1a(CH_HASH_SEED, "foo", 3), "bar", 3) ==
                ch_hash_fnv1a(CH_HASH_SEED, "foobar", 6));
}

static void test_hash_bytes_spreads_similar_names_over_low_bits(void **state)
{
    (void)state;
    /* "user0".."user9" differ in one low nibble: FNV-1a alone puts them in few low-bit slots;
     * after the mix, 10 names over 16 slots must not pile up. */
    int slots[16] = {0};
    char name[8];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "user%d", i);
        slots[ch_hash_bytes(name, strlen(name)) & 15]++;
    }
    for (int i = 0; i < 16; i++)
        assert_true(slots[i] <= 3);
    assert_true(ch_hash_bytes("abc", 3) == ch_hash_mix64(ch_hash_fnv1a(CH_HASH_SEED, "abc", 3)));
}

/* ---- hindex -------------------------------------------------------------------------------- */

typedef struct item {
    char name[16];
} item;

static bool item_eq(const void *it, const void *key)
{
    return strcmp(((const item *)it)->name, key) == 0;
}

static uint64_t item_hash(const char *s) { return ch_hash_bytes(s, strlen(s)); }

static void test_hindex_finds_every_item_across_growth(void **state)
{
    (void)state;
    enum { N = 1000 };
    item *items = calloc(N, sizeof *items);
    assert_non_null(items);
    ch_hindex ix = {0};
    assert_null(ch_hindex_find(&ix, item_hash("x"), item_eq, "x")); /* empty: no probe */
    for (int i = 0; i < N; i++) {
        snprintf(items[i].name, sizeof items[i].name, "k%d", i);
        assert_int_equal(ch_hindex_reserve(&ix, ix.n + 1, 16), 0);
        uint64_t h = item_hash(items[i].name);
        ch_hindex_set(&ix, ch_hindex_probe(&ix, h, item_eq, items[i].name), h, &items[i]);
        assert_true(ix.n * 4 <= ix.cap * 3);
    }
    assert_int_equal(ix.n, N);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(ch_hindex_find(&ix, item_hash(items[i].name), item_eq, items[i].name),
                         &items[i]);
    assert_null(ch_hindex_find(&ix, item_hash("k1000"), item_eq, "k1000"));
    ch_hindex_clear(&ix);
    assert_int_equal(ix.n, 0);
    assert_null(ch_hindex_find(&ix, item_hash("k1"), item_eq, "k1"));
    ch_hindex_free(&ix);
    free(items);
}

static void test_hindex_reserve_failing_leaves_the_index_intact(void **state)
{
    (void)state;
    item a = {"a"};
    ch_hindex ix = {0};
    assert_int_equal(ch_hindex_reserve(&ix, 1, 4), 0);
    ch_hindex_set(&ix, ch_hindex_probe(&ix, item_hash("a"), item_eq, "a"), item_hash("a"), &a);
    ch_mem_fail_after(0);
    int rc = ch_hindex_reserve(&ix, 100, 4);
    ch_mem_fail_after(-1);
    assert_int_equal(rc, CH_ENOMEM);
    assert_int_equal(ix.cap, 4);
    assert_ptr_equal(ch_hindex_find(&ix, item_hash("a"), item_eq, "a"), &a);
    ch_hindex_free(&ix);
}

/* ---- heap ---------------------------------------------------------------------------------- */

static void test_heap_pops_by_time_then_insertion_order(void **state)
{
    (void)state;
    static const int64_t keys[] = {50, 10, 30, 10, 50, 20, 10, 40};
    enum { N = sizeof keys / sizeof keys[0] };
    ch_heap_elem h[N];
    size_t n = 0;
    int tags[N];
    for (int i = 0; i < N; i++) {
        tags[i] = i;
        ch_heap_push(h, &n, (ch_heap_elem){keys[i], (uint64_t)i, &tags[i]});
    }
    int64_t last_key = INT64_MIN;
    int last_tag = -1;
    for (int i = 0; i < N; i++) {
        ch_heap_elem e = ch_heap_pop(h, &n);
        int tag = *(int *)e.item;
        assert_true(e.key >= last_key);
        if (e.key == last_key)
            assert_true(tag > last_tag); /* FIFO among equal times */
        last_key = e.key;
        last_tag = tag;
    }
    assert_int_equal(n, 0);
}

/* ---- sqlite_util --------------------------------------------------------------------------- */

static void test_sql_open_creates_parents_and_refuses_a_missing_file_without_create(void **state)
{
    (void)state;
    char dir[] = "/tmp/ch_sqlutil_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a/b/test.db", dir);
    ch_sql c;
    ch_error err = {0};
    assert_int_equal(ch_sql_connect(&c, path, false, NULL, &err), CH_ENOTFOUND);
    assert_null(c.db);
    assert_non_null(strstr(err.msg, "no such database"));
    assert_int_equal(ch_sql_connect(&c, path, true, NULL, &err), 0);
    assert_non_null(c.db);
    assert_string_equal(c.path, path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(ch_sql_prepare(c.db, c.path, "PRAGMA journal_mode", &st, &err), 0);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(ch_sql_prepare(c.db, c.path, "SELEKT", &st, &err), CH_EIO);
    assert_null(st);
    assert_non_null(strstr(err.msg, path));
    ch_sql_close(&c);
    assert_null(c.db);
    assert_int_equal(ch_test_rmdir(dir), 0);
}

static int count_rows(ch_sql *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    ch_error err = {0};
    assert_int_equal(ch_sql_prepare(c->db, c->path, sql, &st, &err), 0);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void test_sql_migrate_runs_each_step_once_and_refuses_newer_schemas(void **state)
{
    (void)state;
    char dir[] = "/tmp/ch_sqlutil_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.db", dir);
    static const char *const steps[] = {"CREATE TABLE t (x);", "INSERT INTO t VALUES (1);"};
    ch_sql_schema s1 = {.component = "one", .migrations = steps, .version = 2};
    ch_sql_schema s2 = {.component = "two", .migrations = steps, .version = 1};
    ch_sql c;
    ch_error err = {0};
    assert_int_equal(ch_sql_connect(&c, path, true, &s1, &err), 0);
    assert_int_equal(ch_sql_migrate(&c, &s1, &err), 0); /* already there: no step */
    assert_int_equal(count_rows(&c, "SELECT count(*) FROM t"), 1);
    int v = -1;
    assert_int_equal(ch_sql_schema_version(&c, "one", &v, &err), 0);
    assert_int_equal(v, 2);
    assert_int_equal(ch_sql_schema_version(&c, "two", &v, &err), 0);
    assert_int_equal(v, 0);
    /* Components are independent: "two" runs its own first step (and fails on the table
     * "one" made, rolling back without a trace). */
    assert_int_equal(ch_sql_migrate(&c, &s2, &err), CH_EIO);
    assert_int_equal(ch_sql_schema_version(&c, "two", &v, &err), 0);
    assert_int_equal(v, 0);
    assert_false(c.tx_depth);
    s1.version = 1;
    assert_int_equal(ch_sql_migrate(&c, &s1, &err), CH_EUSAGE);
    assert_non_null(strstr(err.msg, "one schema version 2 is newer"));
    ch_sql_close(&c);
    assert_int_equal(ch_test_rmdir(dir), 0);
}

static void test_sql_migrate_adopts_a_version_kept_the_old_way(void **state)
{
    (void)state;
    char dir[] = "/tmp/ch_sqlutil_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/l.db", dir);
    static const char *const steps[] = {"CREATE TABLE t (x);", "INSERT INTO t VALUES (1);",
                                        "INSERT INTO t VALUES (2);"};
    ch_sql c;
    ch_error err = {0};
    assert_int_equal(ch_sql_connect(&c, path, true, NULL, &err), 0);
    /* A file of an older build: steps 0 and 1 done, the version in a table of its own. */
    assert_int_equal(ch_sql_exec(c.db, c.path,
                                 "CREATE TABLE t (x); INSERT INTO t VALUES (1);"
                                 "CREATE TABLE meta (k TEXT, v TEXT);"
                                 "INSERT INTO meta VALUES ('version', '2');",
                                 &err),
                     0);
    ch_sql_schema s = {.component = "c",
                       .migrations = steps,
                       .version = 3,
                       .legacy_table = "meta",
                       .legacy_sql = "SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'version'",
                       .legacy_done = "DROP TABLE meta"};
    assert_int_equal(ch_sql_migrate(&c, &s, &err), 0);
    assert_int_equal(count_rows(&c, "SELECT count(*) FROM t"), 2); /* only step 2 ran */
    assert_int_equal(count_rows(&c, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'"), 0);
    int v = 0;
    assert_int_equal(ch_sql_schema_version(&c, "c", &v, &err), 0);
    assert_int_equal(v, 3);
    /* Once recorded, the old way is never read again. */
    assert_int_equal(ch_sql_migrate(&c, &s, &err), 0);
    assert_int_equal(count_rows(&c, "SELECT count(*) FROM t"), 2);
    ch_sql_close(&c);
    assert_int_equal(ch_test_rmdir(dir), 0);
}

/* ---- yaml_util ----------------------------------------------------------------------------- */

static void test_yaml_helpers_read_scalars_keys_and_positions(void **state)
{
    (void)state;
    static const char text[] = "name: x\nlist: [a, b, c]\n";
    yaml_parser_t p;
    yaml_document_t doc;
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    assert_true(yaml_parser_load(&p, &doc));
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_pair_t *pr = root->data.mapping.pairs.start;
    yaml_node_t *k0 = yaml_document_get_node(&doc, pr[0].key);
    yaml_node_t *v0 = yaml_document_get_node(&doc, pr[0].value);
    yaml_node_t *v1 = yaml_document_get_node(&doc, pr[1].value);
    assert_true(ch_yaml_key_is(k0, "name"));
    assert_false(ch_yaml_key_is(k0, "nam"));
    size_t len = 99;
    assert_null(ch_yaml_scalar(v1, &len));
    assert_int_equal(len, 0);
    assert_int_equal(ch_yaml_seq_len(v1), 3);
    unsigned line, col;
    ch_yaml_pos(v1, &line, &col);
    assert_int_equal(line, 2);
    assert_int_equal(col, 7);
    ch_yaml_pos(NULL, &line, &col);
    assert_int_equal(line * 10 + col, 11);
    ch_error err = {0};
    assert_string_equal(ch_yaml_scalar(v0, NULL), "x");
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);

    static const char bad[] = "a: [1,\n";
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)bad, strlen(bad));
    assert_false(yaml_parser_load(&p, &doc));
    assert_int_equal(ch_yaml_load_error(&err, "f.yml", &p), CH_EPARSE);
    assert_non_null(strstr(err.msg, "f.yml:"));
    assert_non_null(strstr(err.msg, ": not valid YAML: "));
    yaml_parser_delete(&p);
}

static int fail_at(ch_error *err, const yaml_node_t *n, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(ch_error *err, const yaml_node_t *n, const char *subject, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ch_yaml_vfail(err, "r.yml", subject, n, CH_EPARSE, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_yaml_vfail_names_file_position_and_subject(void **state)
{
    (void)state;
    ch_error err = {0};
    assert_int_equal(fail_at(&err, NULL, "CJ-1", "bad %s", "thing"), CH_EPARSE);
    assert_string_equal(err.msg, "r.yml:1:1: CJ-1: bad thing");
    assert_int_equal(fail_at(&err, NULL, NULL, "bad %d", 7), CH_EPARSE);
    assert_string_equal(err.msg, "r.yml:1:1: bad 7");
}

/* ---- jsonstream ---------------------------------------------------------------------------- */

static void test_jsonstream_reports_and_skips_records_that_do_not_parse(void **state)
{
    (void)state;
    static const char text[] = "{\"a\":1}\n{\"b\":tru}\n{\"c\":3}\n";
    ch_input *in = NULL;
    ch_error err = {0};
    assert_int_equal(ch_input_open_mem(&in, "mem", text, strlen(text), 0, &err), 0);
    ch_jsonrec *r = ch_jsonrec_new(in, 1024);
    ch_json_parser *p = ch_json_parser_new(1024, 64);
    assert_non_null(r);
    assert_non_null(p);
    FILE *sink = fopen("/dev/null", "w");
    assert_non_null(sink);
    ch_diag diag;
    ch_diag_init(&diag, sink);
    ch_jsonrec_rec rec;
    ch_json_val root;
    int got = 0;
    while (ch_jsonstream_next(r, p, &diag, CH_DS_CLOUDTRAIL, "mem", &rec, &root) == 1) {
        assert_int_equal(ch_json_typeof(root), CH_JSON_OBJECT);
        got++;
    }
    assert_int_equal(got, 2);
    assert_int_equal(ch_diag_count(&diag, "json_syntax"), 1);
    assert_int_equal(diag.by_ds[CH_DS_CLOUDTRAIL].records, 1); /* only the failed one */
    fclose(sink);
    ch_json_parser_free(p);
    ch_jsonrec_free(r);
    ch_input_close(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a_matches_the_published_vectors),
        cmocka_unit_test(test_hash_bytes_spreads_similar_names_over_low_bits),
        cmocka_unit_test(test_hindex_finds_every_item_across_growth),
        cmocka_unit_test(test_hindex_reserve_failing_leaves_the_index_intact),
        cmocka_unit_test(test_heap_pops_by_time_then_insertion_order),
        cmocka_unit_test(test_sql_open_creates_parents_and_refuses_a_missing_file_without_create),
        cmocka_unit_test(test_sql_migrate_runs_each_step_once_and_refuses_newer_schemas),
        cmocka_unit_test(test_sql_migrate_adopts_a_version_kept_the_old_way),
        cmocka_unit_test(test_yaml_helpers_read_scalars_keys_and_positions),
        cmocka_unit_test(test_yaml_vfail_names_file_position_and_subject),
        cmocka_unit_test(test_jsonstream_reports_and_skips_records_that_do_not_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
