/*
 * test_serve_config.c - the serve configuration: every documented key is read with its units,
 * unknown keys and bad values are refused with FILE:LINE:COL, and the checks against the world
 * refuse plain HTTP off loopback, short or world-readable token files, and a journal inside a
 * spool directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "tmpdir.h"

static char dir[256];

static int mk(void **state)
{
    (void)state;
    return ch_test_tmpdir(dir, sizeof dir, "scfg");
}

static int rm(void **state)
{
    (void)state;
    return ch_test_rmdir(dir);
}

static int load(const char *text, ch_serve_config *c, ch_error *err)
{
    return ch_serve_config_load_mem("serve.yaml", text, strlen(text), c, err);
}

static void test_every_key_is_read_with_its_units(void **state)
{
    (void)state;
    const char *y = "listen: 127.0.0.1:9000\n"
                    "tls: {cert: c.pem, key: k.pem}\n"
                    "db: data/x.db\npack: content/cryptojacking-aws\ncontext: ctx.yaml\n"
                    "geoip: [a.mmdb, b.mmdb]\n"
                    "spool: [/srv/a, /srv/b]\nspool_rescan: 500ms\nspool_max_files: 1000\n"
                    "journal: {dir: /var/j, max_bytes: 10GiB, segment_bytes: 64MiB, "
                    "fsync: 'interval:100ms'}\n"
                    "lateness: 20m\ncheckpoint: 2s\n"
                    "tokens: {ingest: i.tok, read: r.tok}\nmax_body: 32MiB\nmax_connections: 100\n"
                    "intel:\n  pull:\n    - {url: 'https://x/taxii2/', collection: c1, every: 15m, "
                    "token_file: t}\n";
    ch_serve_config c;
    ch_error err = {0};
    assert_int_equal(load(y, &c, &err), 0);
    assert_string_equal(c.listen, "127.0.0.1:9000");
    assert_string_equal(c.tls_cert, "c.pem");
    assert_int_equal(c.ngeoip, 2);
    assert_int_equal(c.nspool, 2);
    assert_string_equal(c.spool[1], "/srv/b");
    assert_int_equal(c.spool_rescan_ms, 500);
    assert_int_equal(c.journal_max_bytes, 10ull << 30);
    assert_int_equal(c.journal_segment_bytes, 64u << 20);
    assert_int_equal(c.fsync, CH_JOURNAL_FSYNC_INTERVAL);
    assert_int_equal(c.fsync_interval_ms, 100);
    assert_int_equal(c.lateness_ms, 20 * 60000);
    assert_int_equal(c.checkpoint_ms, 2000);
    assert_string_equal(c.read_token_file, "r.tok");
    assert_int_equal(c.max_body, 32u << 20);
    assert_int_equal(c.npull, 1);
    assert_int_equal(c.pull[0].every_ms, 15 * 60000);
    assert_string_equal(c.pull[0].collection, "c1");
    ch_serve_config_free(&c);
}

static void test_defaults_fill_what_is_not_said(void **state)
{
    (void)state;
    ch_serve_config c;
    ch_error err = {0};
    assert_int_equal(load("journal: {dir: j}\n", &c, &err), 0);
    assert_string_equal(c.listen, "127.0.0.1:8440");
    assert_int_equal(c.fsync, CH_JOURNAL_FSYNC_BATCH);
    assert_int_equal(c.journal_max_bytes, 10ull << 30);
    assert_int_equal(c.lateness_ms, 20 * 60000);
    assert_null(c.ingest_token_file);
    assert_null(c.store_hot); /* the store's saved setting decides */
    ch_serve_config_free(&c);
    assert_int_equal(load("journal: {dir: j}\nstore_hot: false\n", &c, &err), 0);
    assert_string_equal(c.store_hot, "off");
    ch_serve_config_free(&c);
    assert_int_equal(load("journal: {dir: j}\nstore_hot: yes\n", &c, &err), 0);
    assert_string_equal(c.store_hot, "on");
    ch_serve_config_free(&c);
    assert_int_equal(load("journal: {dir: j}\nstore_hot: raw\n", &c, &err), 0);
    assert_string_equal(c.store_hot, "raw");
    ch_serve_config_free(&c);
    assert_int_equal(load("journal: {dir: j}\nstore_hot: auto\n", &c, &err), 0);
    assert_string_equal(c.store_hot, "auto");
    ch_serve_config_free(&c);
    assert_int_equal(load("journal: {dir: j}\nstore_hot: maybe\n", &c, &err), CH_EPARSE);
    assert_non_null(
        strstr(err.msg, "serve.yaml:2:12: store_hot: expected true, false, raw or auto"));
}

static void test_listen_port_past_65535_is_refused(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sl;
    bool lo;
    ch_error err = {0};
    static const char *const bad[] = {"127.0.0.1:4294967296", "127.0.0.1:65536", "[::1]:99999",
                                      "127.0.0.1:000008440", "127.0.0.1:"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ch_listen_parse(bad[i], &ss, &sl, &lo, &err), CH_EUSAGE);
        assert_non_null(strstr(err.msg, "bad port"));
    }
    assert_int_equal(ch_listen_parse("127.0.0.1:65535", &ss, &sl, &lo, &err), 0);
    assert_true(lo);
}

static void test_mistakes_are_refused_with_their_position(void **state)
{
    (void)state;
    ch_serve_config c;
    ch_error err = {0};
    assert_int_equal(load("journal: {dir: j}\nlisten_addr: x\n", &c, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "serve.yaml:2:1: unknown key"));
    assert_int_equal(load("journal: {dir: j, fsync: sometimes}\n", &c, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "journal.fsync"));
    assert_int_equal(load("journal: {dir: j}\nlateness: soon\n", &c, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "serve.yaml:2:11: lateness"));
    assert_int_equal(load("journal: {dir: j, max_bytes: lots}\n", &c, &err), CH_EPARSE);
    assert_int_equal(load("listen: 127.0.0.1:1\n", &c, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "journal.dir is required"));
    assert_int_equal(load("journal: [x\n", &c, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "not valid YAML"));
}

static void test_respond_section_is_read_and_checked(void **state)
{
    (void)state;
    ch_serve_config c;
    ch_error err = {0};
    /* Off unless said; the defaults of automatic response. */
    assert_int_equal(load("journal: {dir: j}\n", &c, &err), 0);
    assert_false(c.respond.execute);
    assert_int_equal(c.respond.nauto, 0);
    assert_int_equal(c.respond.auto_rate, 5);
    assert_int_equal(c.respond.auto_rate_ms, 3600000);
    ch_serve_config_free(&c);
    assert_int_equal(load("journal: {dir: j}\nrespond:\n  execute: true\n"
                          "  endpoint: http://127.0.0.1:4566/\n  assume_role: responder\n"
                          "  auto_rate: 20/1d\n  auto_every: 250ms\n  kill_switch: /run/stop\n"
                          "  auto:\n    - {rule: CJ-CHAIN-01, min_magnitude: 9,"
                          " steps: [deactivate_keys, stop_instances]}\n    - {rule: CJ-MINE-01}\n",
                          &c, &err),
                     0);
    assert_true(c.respond.execute);
    assert_string_equal(c.respond.endpoint, "http://127.0.0.1:4566"); /* no trailing slash */
    assert_string_equal(c.respond.assume_role, "responder");
    assert_int_equal(c.respond.auto_rate, 20);
    assert_int_equal(c.respond.auto_rate_ms, 86400000);
    assert_int_equal(c.respond.auto_every_ms, 250);
    assert_int_equal(c.respond.nauto, 2);
    assert_int_equal(c.respond.autos[0].min_magnitude, 9);
    assert_int_equal(c.respond.autos[0].nkinds, 2);
    assert_string_equal(c.respond.autos[0].kinds[1], "stop_instances");
    assert_int_equal(c.respond.autos[1].nkinds, 0); /* propose only */
    ch_serve_config_free(&c);
    /* Signed calls in clear text only to this machine. */
    assert_int_equal(
        load("journal: {dir: j}\nrespond: {endpoint: 'http://10.0.0.1:80'}\n", &c, &err),
        CH_EPARSE);
    assert_non_null(strstr(err.msg, "respond.endpoint"));
    assert_int_equal(
        load("journal: {dir: j}\nrespond: {auto: [{rule: R, steps: [reboot]}]}\n", &c, &err),
        CH_EPARSE);
    assert_non_null(strstr(err.msg, "unknown step kind 'reboot'"));
    assert_int_equal(load("journal: {dir: j}\nrespond: {auto_rate: often}\n", &c, &err), CH_EPARSE);
    assert_int_equal(load("journal: {dir: j}\nrespond: {auto: [{min_magnitude: 3}]}\n", &c, &err),
                     CH_EPARSE);
    assert_non_null(strstr(err.msg, "rule is required"));
    assert_int_equal(load("journal: {dir: j}\nrespond: {assume_role: 'a b'}\n", &c, &err),
                     CH_EPARSE);
    assert_int_equal(load("journal: {dir: j}\nrespond: {exec: true}\n", &c, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "respond: unknown key"));
}

static void write_file(const char *name, const char *text, mode_t mode, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_checks_refuse_unsafe_setups(void **state)
{
    (void)state;
    char y[2048], tok[512], weak[512], open_[512];
    write_file("ingest.tok", "# rotated 2024-06\n0123456789abcdef0123\n", 0600, tok, sizeof tok);
    write_file("weak.tok", "secret\n", 0600, weak, sizeof weak);
    write_file("open.tok", "0123456789abcdef0123\n", 0644, open_, sizeof open_);
    ch_serve_config c;
    ch_error err = {0};

    snprintf(y, sizeof y, "journal: {dir: %s/j}\ntokens: {ingest: %s}\n", dir, tok);
    assert_int_equal(load(y, &c, &err), 0);
    assert_int_equal(ch_serve_config_check(&c, &err), 0);
    ch_serve_config_free(&c);

    snprintf(y, sizeof y, "listen: 0.0.0.0:8440\njournal: {dir: %s/j}\n", dir);
    assert_int_equal(load(y, &c, &err), 0);
    assert_int_equal(ch_serve_config_check(&c, &err), CH_EUSAGE);
    assert_non_null(strstr(err.msg, "not loopback"));
    ch_serve_config_free(&c);

    snprintf(y, sizeof y, "journal: {dir: %s/j}\ntokens: {ingest: %s}\n", dir, weak);
    assert_int_equal(load(y, &c, &err), 0);
    assert_int_equal(ch_serve_config_check(&c, &err), CH_EUSAGE);
    assert_non_null(strstr(err.msg, "at least 16 bytes"));
    ch_serve_config_free(&c);

    snprintf(y, sizeof y, "journal: {dir: %s/j}\ntokens: {ingest: %s}\n", dir, open_);
    assert_int_equal(load(y, &c, &err), 0);
    assert_int_equal(ch_serve_config_check(&c, &err), CH_EUSAGE);
    assert_non_null(strstr(err.msg, "readable by everyone"));
    ch_serve_config_free(&c);

    char sp[512];
    snprintf(sp, sizeof sp, "%s/spool", dir);
    mkdir(sp, 0755);
    snprintf(y, sizeof y, "journal: {dir: %s/spool/j}\nspool: [%s]\n", dir, sp);
    mkdir(strcat(strcpy(tok, sp), "/j"), 0755);
    assert_int_equal(load(y, &c, &err), 0);
    assert_int_equal(ch_serve_config_check(&c, &err), CH_EUSAGE);
    assert_non_null(strstr(err.msg, "inside spool directory"));
    ch_serve_config_free(&c);
}

static void test_durations_and_sizes(void **state)
{
    (void)state;
    assert_int_equal(ch_parse_duration_ms("100ms"), 100);
    assert_int_equal(ch_parse_duration_ms("15"), 15000);
    assert_int_equal(ch_parse_duration_ms("1.5h"), 5400000);
    assert_int_equal(ch_parse_duration_ms("-1s"), -1);
    assert_int_equal(ch_parse_duration_ms("5 min"), -1);
    assert_int_equal(ch_parse_size("64KiB"), 65536);
    assert_int_equal(ch_parse_size("1GB"), 1000000000ull);
    assert_int_equal(ch_parse_size("12"), 12);
    assert_int_equal(ch_parse_size("12 bytes"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_is_read_with_its_units),
        cmocka_unit_test(test_defaults_fill_what_is_not_said),
        cmocka_unit_test(test_mistakes_are_refused_with_their_position),
        cmocka_unit_test_setup_teardown(test_checks_refuse_unsafe_setups, mk, rm),
        cmocka_unit_test(test_durations_and_sizes),
        cmocka_unit_test(test_listen_port_past_65535_is_refused),
        cmocka_unit_test(test_respond_section_is_read_and_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
