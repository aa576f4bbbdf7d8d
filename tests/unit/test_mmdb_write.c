/*
 * test_mmdb_write.c - the MaxMind DB writer (enrich/mmdb_write.h), read back by the real
 * libmaxminddb and by the GeoIP enricher (ch_geoip_open) that analyze and `rules test` use.
 *
 * Every database here is written by the test itself into a temporary folder, so nothing
 * depends on an installed database or on ../shared/corpora.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <maxminddb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/readfile.h"
#include "enrich/geoip.h"
#include "enrich/mmdb_write.h"
#include "enrich/mmdb_write_int.h"

static char dir[] = "/tmp/ch-mmdb-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp(const char *name)
{
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void add(ch_mmdb_writer *w, const char *net, const char *cc, const char *name)
{
    ch_error err = {0};
    if (ch_mmdb_writer_add(w, net, cc, name, &err) != 0)
        fail_msg("add %s: %s", net, err.msg);
}

/* The networks most tests write: nested IPv4 (the /24 inside the /16 is another country), a
 * bare address, IPv6, and names on some. */
static ch_mmdb_writer *sample_writer(void)
{
    ch_mmdb_writer *w = NULL;
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_new(&w, NULL, &err), 0);
    add(w, "81.2.0.0/16", "GB", "United Kingdom");
    add(w, "81.2.69.0/24", "fr", "France"); /* more specific: wins inside the /16 */
    add(w, "5.255.255.5", "RU", NULL);      /* a bare address is a /32 */
    add(w, "2a01:4f8:1::/48", "DE", "Germany");
    add(w, "216.160.83.56/29", "US", "United States");
    return w;
}

static void write_sample(const char *path, unsigned record_size)
{
    ch_mmdb_writer *w = sample_writer();
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_set_record_size(w, record_size, &err), 0);
    if (ch_mmdb_writer_write(w, path, &err) != 0)
        fail_msg("write: %s", err.msg);
    ch_mmdb_writer_free(w);
}

/* country.iso_code (and country.names.en when want_name) of addr through libmaxminddb; "" when
 * the address is in no network. *netmask gets the matched prefix in the tree's bits. */
static void mmdb_country(MMDB_s *db, const char *addr, char *iso, char *name, int *netmask)
{
    int gai = 0, mmdb = 0;
    MMDB_lookup_result_s r = MMDB_lookup_string(db, addr, &gai, &mmdb);
    assert_int_equal(gai, 0);
    assert_int_equal(mmdb, MMDB_SUCCESS);
    iso[0] = name[0] = '\0';
    if (netmask)
        *netmask = r.netmask;
    if (!r.found_entry)
        return;
    MMDB_entry_data_s d;
    assert_int_equal(MMDB_get_value(&r.entry, &d, "country", "iso_code", NULL), MMDB_SUCCESS);
    assert_true(d.has_data);
    assert_int_equal(d.type, MMDB_DATA_TYPE_UTF8_STRING);
    snprintf(iso, 3, "%.*s", (int)d.data_size, d.utf8_string);
    int st = MMDB_get_value(&r.entry, &d, "country", "names", "en", NULL);
    if (st == MMDB_SUCCESS && d.has_data)
        snprintf(name, 64, "%.*s", (int)d.data_size, d.utf8_string);
}

static void assert_sample_lookups(const char *path, unsigned record_size)
{
    MMDB_s db;
    int st = MMDB_open(path, MMDB_MODE_MMAP, &db);
    if (st != MMDB_SUCCESS)
        fail_msg("MMDB_open %s: %s", path, MMDB_strerror(st));
    assert_int_equal(db.metadata.ip_version, 6);
    assert_int_equal(db.metadata.binary_format_major_version, 2);
    assert_int_equal(db.metadata.binary_format_minor_version, 0);
    assert_int_equal(db.metadata.record_size, record_size);
    assert_string_equal(db.metadata.database_type, "coinhound-test-country");
    assert_int_equal(db.metadata.languages.count, 1);
    assert_string_equal(db.metadata.languages.names[0], "en");
    assert_true(db.metadata.node_count > 0);

    char iso[3], name[64];
    int mask;
    mmdb_country(&db, "81.2.1.1", iso, name, NULL);
    assert_string_equal(iso, "GB");
    assert_string_equal(name, "United Kingdom");
    mmdb_country(&db, "81.2.69.142", iso, name, &mask);
    assert_string_equal(iso, "FR"); /* stored upper case */
    assert_string_equal(name, "France");
    assert_int_equal(mask, 24 + 96); /* IPv4 under ::/96 in an IPv6 tree */
    mmdb_country(&db, "81.2.70.0", iso, name, NULL);
    assert_string_equal(iso, "GB");
    mmdb_country(&db, "5.255.255.5", iso, name, &mask);
    assert_string_equal(iso, "RU");
    assert_string_equal(name, ""); /* no name given */
    assert_int_equal(mask, 128);
    mmdb_country(&db, "5.255.255.4", iso, name, NULL);
    assert_string_equal(iso, "");
    mmdb_country(&db, "216.160.83.63", iso, name, NULL);
    assert_string_equal(iso, "US");
    mmdb_country(&db, "216.160.83.64", iso, name, NULL);
    assert_string_equal(iso, "");
    mmdb_country(&db, "2a01:4f8:1:ffff::1", iso, name, &mask);
    assert_string_equal(iso, "DE");
    assert_int_equal(mask, 48);
    mmdb_country(&db, "2a01:4f8:2::1", iso, name, NULL);
    assert_string_equal(iso, "");
    mmdb_country(&db, "8.8.8.8", iso, name, NULL);
    assert_string_equal(iso, "");
    MMDB_close(&db);
}

static void test_libmaxminddb_reads_back_countries_names_and_prefixes(void **state)
{
    (void)state;
    write_sample(tmp("sample.mmdb"), 0);
    assert_sample_lookups(tmp("sample.mmdb"), 24); /* a small tree: the smallest records */
}

/* The three record layouts of the specification; 28 bits packs two nibbles in one byte. */
static void test_24_28_and_32_bit_records_give_the_same_answers(void **state)
{
    (void)state;
    const unsigned sizes[] = {24, 28, 32};
    for (size_t i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "rs%u.mmdb", sizes[i]);
        write_sample(tmp(name), sizes[i]);
        assert_sample_lookups(tmp(name), sizes[i]);
    }
}

/* Every node of the 28- and 32-bit files, as libmaxminddb decodes it, holds the same records
 * as the 24-bit file's. */
static void test_every_node_decodes_alike_in_all_record_sizes(void **state)
{
    (void)state;
    MMDB_s db[3];
    const unsigned sizes[] = {24, 28, 32};
    for (size_t i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "walk%u.mmdb", sizes[i]);
        write_sample(tmp(name), sizes[i]);
        assert_int_equal(MMDB_open(tmp(name), MMDB_MODE_MMAP, &db[i]), MMDB_SUCCESS);
    }
    uint32_t nodes = db[0].metadata.node_count;
    assert_true(nodes > 100); /* the /32 and the /48 alone are deep paths */
    for (size_t i = 1; i < 3; i++)
        assert_int_equal(db[i].metadata.node_count, nodes);
    for (uint32_t n = 0; n < nodes; n++) {
        MMDB_search_node_s a, b;
        assert_int_equal(MMDB_read_node(&db[0], n, &a), MMDB_SUCCESS);
        for (size_t i = 1; i < 3; i++) {
            assert_int_equal(MMDB_read_node(&db[i], n, &b), MMDB_SUCCESS);
            assert_int_equal(a.left_record, b.left_record);
            assert_int_equal(a.right_record, b.right_record);
            assert_int_equal(a.left_record_type, b.left_record_type);
            assert_int_equal(a.right_record_type, b.right_record_type);
        }
        /* No record points into the 16-byte separator or past the data. */
        assert_int_not_equal(a.left_record_type, MMDB_RECORD_TYPE_INVALID);
        assert_int_not_equal(a.right_record_type, MMDB_RECORD_TYPE_INVALID);
    }
    for (size_t i = 0; i < 3; i++)
        MMDB_close(&db[i]);
}

/* Values past 2^24 need a tree too big for a test; the layout is pinned against the
 * specification's figure instead: 28 bits are | left 23..0 | left 27..24, right 27..24 |
 * right 23..0 |, and decoded the way readers do. */
static void test_28_bit_node_puts_each_records_top_nibble_in_the_shared_byte(void **state)
{
    (void)state;
    uint8_t o[8];
    assert_int_equal(ch__mmdb_node_bytes(28, 0x0A123456u, 0x0B789ABCu, o), 7);
    const uint8_t want28[] = {0x12, 0x34, 0x56, 0xAB, 0x78, 0x9A, 0xBC};
    assert_memory_equal(o, want28, sizeof want28);
    uint32_t left =
        ((uint32_t)(o[3] & 0xF0) << 20) | ((uint32_t)o[0] << 16) | ((uint32_t)o[1] << 8) | o[2];
    uint32_t right =
        ((uint32_t)(o[3] & 0x0F) << 24) | ((uint32_t)o[4] << 16) | ((uint32_t)o[5] << 8) | o[6];
    assert_int_equal(left, 0x0A123456u);
    assert_int_equal(right, 0x0B789ABCu);
    assert_int_equal(ch__mmdb_node_bytes(32, 0xFEDCBA98u, 0x01234567u, o), 8);
    const uint8_t want32[] = {0xFE, 0xDC, 0xBA, 0x98, 0x01, 0x23, 0x45, 0x67};
    assert_memory_equal(o, want32, sizeof want32);
    assert_int_equal(ch__mmdb_node_bytes(24, 0xABCDEFu, 0x123456u, o), 6);
    const uint8_t want24[] = {0xAB, 0xCD, 0xEF, 0x12, 0x34, 0x56};
    assert_memory_equal(o, want24, sizeof want24);
}

static void test_record_size_other_than_24_28_32_is_a_usage_error(void **state)
{
    (void)state;
    ch_mmdb_writer *w = NULL;
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_new(&w, NULL, &err), 0);
    assert_int_equal(ch_mmdb_writer_set_record_size(w, 30, &err), CH_EUSAGE);
    assert_int_equal(ch_mmdb_writer_set_record_size(w, 16, &err), CH_EUSAGE);
    assert_int_equal(ch_mmdb_writer_set_record_size(w, 0, &err), 0);
    ch_mmdb_writer_free(w);
}

static void test_geoip_enricher_reads_the_written_database(void **state)
{
    (void)state;
    const char *path = tmp("enrich.mmdb");
    write_sample(path, 0);
    ch_geoip *g = NULL;
    ch_error err = {0};
    if (ch_geoip_open(&g, &path, 1, &err) != 0)
        fail_msg("ch_geoip_open: %s", err.msg);
    assert_string_equal(ch_geoip_db_type(g, 0), "coinhound-test-country");
    const struct {
        const char *addr, *country, *name;
    } want[] = {
        {"81.2.69.142", "FR", "France"},
        {"81.2.1.1", "GB", "United Kingdom"},
        {"5.255.255.5", "RU", ""},
        {"2a01:4f8:1::7", "DE", "Germany"},
        {"8.8.8.8", "", ""},
        {"::ffff:81.2.69.142", "FR", "France"},
        {"216.160.83.56", "US", "United States"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ch_ip ip;
        assert_true(ch_ip_parse(want[i].addr, strlen(want[i].addr), &ip));
        ch_geo geo;
        ch_geoip_lookup(g, &ip, &geo);
        assert_true(geo.looked_up);
        if (strcmp(geo.country, want[i].country) != 0)
            fail_msg("%s: country \"%s\", want \"%s\"", want[i].addr, geo.country, want[i].country);
        if (!ch_sv_eq(geo.country_name, want[i].name, strlen(want[i].name)))
            fail_msg("%s: name \"%.*s\", want \"%s\"", want[i].addr, (int)geo.country_name.n,
                     geo.country_name.p ? geo.country_name.p : "", want[i].name);
    }
    ch_geoip_stats st;
    ch_geoip_stats_get(g, &st);
    assert_int_equal(st.errors, 0);
    ch_geoip_close(g);
}

static void test_same_entries_give_the_same_bytes(void **state)
{
    (void)state;
    write_sample(tmp("a.mmdb"), 0);
    write_sample(tmp("b.mmdb"), 0);
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    ch_error err = {0};
    assert_int_equal(ch_read_file(tmp("a.mmdb"), 1 << 20, &a, &na, &err), 0);
    assert_int_equal(ch_read_file(tmp("b.mmdb"), 1 << 20, &b, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    ch_free(a);
    ch_free(b);
}

/* ::/0 is the whole space, IPv4 included; a more specific network still wins. */
static void test_default_route_covers_everything_else(void **state)
{
    (void)state;
    ch_mmdb_writer *w = NULL;
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_new(&w, "Custom-Type", &err), 0);
    add(w, "::/0", "ZZ", NULL);
    add(w, "81.2.69.0/24", "GB", NULL);
    assert_int_equal(ch_mmdb_writer_write(w, tmp("default.mmdb"), &err), 0);
    ch_mmdb_writer_free(w);
    MMDB_s db;
    assert_int_equal(MMDB_open(tmp("default.mmdb"), MMDB_MODE_MMAP, &db), MMDB_SUCCESS);
    assert_string_equal(db.metadata.database_type, "Custom-Type");
    assert_int_equal(db.metadata.languages.count, 0);
    char iso[3], name[64];
    mmdb_country(&db, "81.2.69.1", iso, name, NULL);
    assert_string_equal(iso, "GB");
    mmdb_country(&db, "8.8.8.8", iso, name, NULL);
    assert_string_equal(iso, "ZZ");
    mmdb_country(&db, "2a00::1", iso, name, NULL);
    assert_string_equal(iso, "ZZ");
    MMDB_close(&db);
}

static void assert_add_fails(const char *net, const char *cc, const char *name, int code,
                             const char *quoted)
{
    ch_mmdb_writer *w = NULL;
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_new(&w, NULL, &err), 0);
    int rc = ch_mmdb_writer_add(w, net, cc, name, &err);
    if (rc != code)
        fail_msg("add(%s, %s): %d, want %d (%s)", net, cc, rc, code, err.msg);
    if (quoted && strstr(err.msg, quoted) == NULL)
        fail_msg("message does not quote %s: %s", quoted, err.msg);
    ch_mmdb_writer_free(w);
}

static void test_bad_networks_codes_and_names_are_refused(void **state)
{
    (void)state;
    assert_add_fails("81.2.69.1/24", "GB", NULL, CH_EPARSE, "81.2.69.1/24"); /* host bits */
    assert_add_fails("81.2.69.0/33", "GB", NULL, CH_EPARSE, "81.2.69.0/33");
    assert_add_fails("81.2.69.0/", "GB", NULL, CH_EPARSE, "81.2.69.0/");
    assert_add_fails("81.2.69.0/+8", "GB", NULL, CH_EPARSE, NULL);
    assert_add_fails("2001:db8::/129", "GB", NULL, CH_EPARSE, NULL);
    assert_add_fails("81.2.69", "GB", NULL, CH_EPARSE, "81.2.69");
    assert_add_fails("", "GB", NULL, CH_EPARSE, NULL);
    assert_add_fails("81.2.69.0/24", "GBR", NULL, CH_EPARSE, "GBR");
    assert_add_fails("81.2.69.0/24", "G1", NULL, CH_EPARSE, "G1");
    assert_add_fails("81.2.69.0/24", "GB", "United\nKingdom", CH_EPARSE, NULL);
    char longname[CH_MMDB_MAX_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_add_fails("81.2.69.0/24", "GB", longname, CH_ELIMIT, NULL);
    assert_add_fails(NULL, "GB", NULL, CH_EUSAGE, NULL);
}

static void test_a_network_given_twice_is_refused_naming_both(void **state)
{
    (void)state;
    ch_mmdb_writer *w = NULL;
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_new(&w, NULL, &err), 0);
    add(w, "81.2.69.0/24", "GB", NULL);
    add(w, "10.0.0.0/8", "US", NULL);
    add(w, "81.2.69.0/24", "FR", NULL);
    assert_int_equal(ch_mmdb_writer_write(w, tmp("dup.mmdb"), &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "81.2.69.0/24 given twice (entries 1 and 3)"));
    ch_mmdb_writer_free(w);
}

static void test_entries_past_the_cap_are_refused(void **state)
{
    (void)state;
    ch_mmdb_writer *w = NULL;
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_new(&w, NULL, &err), 0);
    for (unsigned i = 0; i < CH_MMDB_MAX_ENTRIES; i++) {
        char net[32];
        snprintf(net, sizeof net, "11.%u.%u.0/24", i >> 8, i & 0xff);
        add(w, net, "US", NULL);
    }
    assert_int_equal(ch_mmdb_writer_add(w, "12.0.0.0/8", "US", NULL, &err), CH_ELIMIT);
    /* What fitted still makes a database, and a 24-bit one at that. */
    assert_int_equal(ch_mmdb_writer_write(w, tmp("cap.mmdb"), &err), 0);
    ch_mmdb_writer_free(w);
    MMDB_s db;
    assert_int_equal(MMDB_open(tmp("cap.mmdb"), MMDB_MODE_MMAP, &db), MMDB_SUCCESS);
    char iso[3], name[64];
    mmdb_country(&db, "11.63.255.9", iso, name, NULL);
    assert_string_equal(iso, "US");
    MMDB_close(&db);
}

static void test_unwritable_path_is_an_io_error_naming_it(void **state)
{
    (void)state;
    ch_mmdb_writer *w = sample_writer();
    ch_error err = {0};
    assert_int_equal(ch_mmdb_writer_write(w, "/nonexistent/dir/x.mmdb", &err), CH_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.mmdb"));
    ch_mmdb_writer_free(w);
}

static void test_csv_with_comments_header_and_names_reads_back(void **state)
{
    (void)state;
    write_text(tmp("ok.csv"), "# a fixture\n"
                              "\n"
                              "network,country,name\r\n"
                              "81.2.69.0/24, GB ,United Kingdom\n"
                              "  # indented comment\n"
                              "5.255.255.5/32,RU\n"
                              "2a01:4f8:1::/48,de,Germany"); /* no newline at the end */
    ch_error err = {0};
    if (ch_mmdb_write_csv(tmp("ok.csv"), tmp("ok.mmdb"), &err) != 0)
        fail_msg("%s", err.msg);
    MMDB_s db;
    assert_int_equal(MMDB_open(tmp("ok.mmdb"), MMDB_MODE_MMAP, &db), MMDB_SUCCESS);
    char iso[3], name[64];
    mmdb_country(&db, "81.2.69.142", iso, name, NULL);
    assert_string_equal(iso, "GB");
    assert_string_equal(name, "United Kingdom");
    mmdb_country(&db, "5.255.255.5", iso, name, NULL);
    assert_string_equal(iso, "RU");
    mmdb_country(&db, "2a01:4f8:1::1", iso, name, NULL);
    assert_string_equal(iso, "DE");
    assert_string_equal(name, "Germany");
    MMDB_close(&db);
}

static void assert_csv_fails(const char *text, int code, const char *msg_part)
{
    write_text(tmp("bad.csv"), text);
    ch_error err = {0};
    int rc = ch_mmdb_write_csv(tmp("bad.csv"), tmp("bad.mmdb"), &err);
    if (rc != code)
        fail_msg("%d, want %d (%s) for:\n%s", rc, code, err.msg, text);
    if (strstr(err.msg, tmp("bad.csv")) == NULL || strstr(err.msg, msg_part) == NULL)
        fail_msg("message does not name the file and \"%s\": %s", msg_part, err.msg);
}

static void test_bad_csv_files_fail_naming_file_and_line(void **state)
{
    (void)state;
    assert_csv_fails("81.2.69.0/24,GB\n", CH_EPARSE, ":1: expected the header");
    assert_csv_fails("network,iso\n81.2.69.0/24,GB\n", CH_EPARSE, ":1: expected the header");
    assert_csv_fails("network,country\n81.2.69.0/24,GB,United Kingdom\n", CH_EPARSE,
                     ":2: expected network,country");
    assert_csv_fails("network,country,name\n81.2.69.0/24\n", CH_EPARSE, ":2: expected");
    assert_csv_fails("network,country\n#\n81.2.69.9/24,GB\n", CH_EPARSE, ":3: '81.2.69.9/24'");
    assert_csv_fails("network,country\n81.2.69.0/24,XYZ\n", CH_EPARSE, ":2: 'XYZ'");
    assert_csv_fails("network,country\n81.2.69.0/24,GB\n10.0.0.0/8,US\n81.2.69.0/24,FR\n",
                     CH_EPARSE, "81.2.69.0/24 given twice (lines 2 and 4)");
    assert_csv_fails("# only a comment\n", CH_EPARSE, "no networks");
    assert_csv_fails("network,country\n", CH_EPARSE, "no networks");
    char line[CH_MMDB_MAX_LINE + 40];
    memset(line, ' ', sizeof line);
    memcpy(line, "network,country\n", 16);
    line[sizeof line - 1] = '\0';
    assert_csv_fails(line, CH_ELIMIT, ":2: line longer than");
    ch_error err = {0};
    assert_int_equal(ch_mmdb_write_csv(tmp("none.csv"), tmp("none.mmdb"), &err), CH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "none.csv"));
}

/* Any allocation may fail: the error comes back and nothing leaks (ASan checks). */
static void test_allocation_failures_are_reported_not_fatal(void **state)
{
    (void)state;
    write_text(tmp("mem.csv"), "network,country,name\n81.2.69.0/24,GB,United Kingdom\n"
                               "5.255.255.5,RU\n2001:db8::/32,DE\n");
    int failures = 0;
    for (long n = 0; n < 40; n++) {
        ch_error err = {0};
        ch_mem_fail_after(n);
        int rc = ch_mmdb_write_csv(tmp("mem.csv"), tmp("mem.mmdb"), &err);
        ch_mem_fail_after(-1);
        if (rc == 0)
            break;
        failures++;
        if (rc != CH_ENOMEM && rc != CH_ELIMIT)
            fail_msg("allocation %ld: %d (%s)", n, rc, err.msg);
    }
    assert_true(failures >= 5);
    ch_error err = {0};
    assert_int_equal(ch_mmdb_write_csv(tmp("mem.csv"), tmp("mem.mmdb"), &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libmaxminddb_reads_back_countries_names_and_prefixes),
        cmocka_unit_test(test_24_28_and_32_bit_records_give_the_same_answers),
        cmocka_unit_test(test_every_node_decodes_alike_in_all_record_sizes),
        cmocka_unit_test(test_28_bit_node_puts_each_records_top_nibble_in_the_shared_byte),
        cmocka_unit_test(test_record_size_other_than_24_28_32_is_a_usage_error),
        cmocka_unit_test(test_geoip_enricher_reads_the_written_database),
        cmocka_unit_test(test_same_entries_give_the_same_bytes),
        cmocka_unit_test(test_default_route_covers_everything_else),
        cmocka_unit_test(test_bad_networks_codes_and_names_are_refused),
        cmocka_unit_test(test_a_network_given_twice_is_refused_naming_both),
        cmocka_unit_test(test_entries_past_the_cap_are_refused),
        cmocka_unit_test(test_unwritable_path_is_an_io_error_naming_it),
        cmocka_unit_test(test_csv_with_comments_header_and_names_reads_back),
        cmocka_unit_test(test_bad_csv_files_fail_naming_file_and_line),
        cmocka_unit_test(test_allocation_failures_are_reported_not_fatal),
    };
    return cmocka_run_group_tests_name("mmdb_write", tests, setup, teardown);
}
