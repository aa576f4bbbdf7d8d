/*
 * test_images.c - deciding what an AMI runs from the image: the pack's catalogue names Kali by
 * its Marketplace product code and by its name, facts from DescribeImages, RunInstances and
 * RegisterImage merge into one record whatever their order, an image nobody described stays
 * unknown, the learned records survive a reopen of the store and are judged again by the
 * catalogue of the day, and a malformed catalogue is refused with file:line:column.
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

#include "core/json.h"
#include "enrich/images.h"
#include "enrich/refset.h"
#include "parse/cloudtrail.h"

#define PACK CH_SOURCE_DIR "/content/cryptojacking-aws"

static const char *KALI_CODE = "89bab4k3h9x4rkojcm2tj8j4l";

/* Parse one CloudTrail record and observe it; the parser is freed before returning, so a
 * record that survives proves the strings were copied. */
static void observe(ch_images *im, const char *text)
{
    ch_json_parser *p = ch_json_parser_new(1 << 20, 64);
    assert_non_null(p);
    ch_json_val root, rec;
    ch_error err = {0};
    assert_int_equal(ch_json_parse(p, text, strlen(text), strlen(text), &root, &err), 0);
    ch_event ev;
    ch_event_reset(&ev);
    bool env = false;
    const char *why = NULL;
    assert_int_equal(ch__cloudtrail_normalize(root, &ev, &rec, &env, &why), 0);
    ev.has_raw_doc = true;
    ev.raw_doc = rec;
    ch_images_observe(im, &ev);
    ch_json_parser_free(p);
}

static char *record(const char *action, const char *req, const char *resp, const char *err)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"eventVersion\":\"1.09\",\"userIdentity\":{\"type\":\"IAMUser\","
             "\"principalId\":\"AIDAX\",\"arn\":\"arn:aws:iam::111122223333:user/bob\","
             "\"accountId\":\"111122223333\",\"userName\":\"bob\"},"
             "\"eventTime\":\"2024-06-05T09:00:00Z\",\"eventSource\":\"ec2.amazonaws.com\","
             "\"eventName\":\"%s\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"81.2.69.142\","
             "\"requestParameters\":%s,\"responseElements\":%s,%s"
             "\"eventID\":\"e-1\",\"recipientAccountId\":\"111122223333\"}",
             action, req, resp, err != NULL ? err : "");
    return buf;
}

static char *run(const char *ami, const char *code)
{
    static char resp[1024];
    snprintf(resp, sizeof resp,
             "{\"instancesSet\":{\"items\":[{\"instanceId\":\"i-0000000000000001a\","
             "\"imageId\":\"%s\",\"productCodes\":%s%s%s}]}}",
             ami, code ? "{\"items\":[{\"productCode\":\"" : "{}", code ? code : "",
             code ? "\",\"type\":\"marketplace\"}]}" : "");
    return record("RunInstances", "{}", resp, NULL);
}

static char *describe(const char *ami, const char *name, const char *desc, const char *owner)
{
    static char resp[1024];
    snprintf(resp, sizeof resp,
             "{\"imagesSet\":{\"items\":[{\"imageId\":\"%s\",\"name\":\"%s\","
             "\"description\":\"%s\",\"imageOwnerId\":\"%s\"}]}}",
             ami, name, desc, owner);
    return record("DescribeImages", "{}", resp, NULL);
}

static bool flagged(ch_refsets *sets, const char *ami)
{
    ch_refset *s = ch_refsets_get(sets, CH_IMAGES_SET, strlen(CH_IMAGES_SET));
    return s != NULL && ch_refset_contains(s, ami, strlen(ami), 1717578000000LL, NULL);
}

static ch_images *open_pack(ch_refsets *sets, const char *db)
{
    ch_images *im = NULL;
    ch_error err = {0};
    int rc = ch_images_open(PACK, db, sets, &im, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    return im;
}

static void test_kali_product_code_on_the_launch_itself(void **st)
{
    (void)st;
    ch_refsets *sets = NULL;
    assert_int_equal(ch_refsets_new(&sets), 0);
    ch_images *im = open_pack(sets, NULL);
    observe(im, run("ami-0a1b2c3d4e5f60718", KALI_CODE));
    observe(im, run("ami-0a1b2c3d4e5f60719", "6njl1pau431dv1qxipg63mvah"));
    observe(im, run("ami-0a1b2c3d4e5f6071a", NULL));
    assert_true(flagged(sets, "ami-0a1b2c3d4e5f60718"));
    assert_false(flagged(sets, "ami-0a1b2c3d4e5f60719")); /* another Marketplace product */
    assert_false(flagged(sets, "ami-0a1b2c3d4e5f6071a")); /* unknown is not unauthorised */
    ch_image_info info;
    assert_true(ch_images_get(im, "ami-0a1b2c3d4e5f60718", 21, &info));
    assert_string_equal(info.os, "Kali Linux");
    assert_string_equal(info.codes, KALI_CODE);
    ch_images_free(im);
    ch_refsets_free(sets);
}

static void test_amazon_linux_and_ubuntu_names_are_not_flagged(void **st)
{
    (void)st;
    ch_refsets *sets = NULL;
    assert_int_equal(ch_refsets_new(&sets), 0);
    ch_images *im = open_pack(sets, NULL);
    observe(im, describe("ami-0aaaa", "al2023-ami-2023.4.20240528.0-kernel-6.1-x86_64",
                         "Amazon Linux 2023 AMI 2023.4.20240528.0 x86_64 HVM kernel-6.1",
                         "137112412989"));
    observe(im, describe("ami-0bbbb", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64",
                         "Canonical, Ubuntu, 24.04 LTS", "099720109477"));
    /* The Marketplace account alone decides nothing: it publishes Ubuntu too. */
    observe(im, describe("ami-0cccc", "ubuntu-pro-server/images/hvm-ssd/ubuntu-jammy", "Ubuntu Pro",
                         "679593333241"));
    assert_false(flagged(sets, "ami-0aaaa"));
    assert_false(flagged(sets, "ami-0bbbb"));
    assert_false(flagged(sets, "ami-0cccc"));
    ch_images_stats s;
    ch_images_stats_get(im, &s);
    assert_int_equal(s.learned, 3);
    assert_int_equal(s.flagged, 0);
    ch_images_free(im);
    ch_refsets_free(sets);
}

static void test_facts_merge_whatever_their_order(void **st)
{
    (void)st;
    ch_refsets *sets = NULL;
    assert_int_equal(ch_refsets_new(&sets), 0);
    ch_images *im = open_pack(sets, NULL);
    /* The launch first (nothing known), the description later names Kali. */
    observe(im, run("ami-0c0ffee", NULL));
    assert_false(flagged(sets, "ami-0c0ffee"));
    observe(im, describe("ami-0c0ffee",
                         "kali-last-snapshot-amd64-2024.2.0-804fcc46-63fc-4eb6-85a1-50e66d6c7215",
                         "Kali Linux kali-last-snapshot (2024.2.0)", "679593333241"));
    assert_true(flagged(sets, "ami-0c0ffee"));
    ch_image_info info;
    assert_true(ch_images_get(im, "ami-0c0ffee", 11, &info));
    assert_string_equal(info.owner, "679593333241");
    assert_string_equal(info.os, "Kali Linux");
    /* A refused call teaches nothing. */
    observe(im, record("RegisterImage", "{\"name\":\"xmrig-1\"}", "{\"imageId\":\"ami-0refused\"}",
                       "\"errorCode\":\"UnauthorizedOperation\","));
    assert_false(ch_images_get(im, "ami-0refused", 12, &info));
    /* A registered image takes the event's account as owner. */
    observe(im, record("RegisterImage", "{\"name\":\"xmrig-worker\",\"description\":\"w\"}",
                       "{\"imageId\":\"ami-0miner\"}", NULL));
    assert_true(ch_images_get(im, "ami-0miner", 10, &info));
    assert_string_equal(info.owner, "111122223333");
    assert_string_equal(info.os, "XMRig miner");
    assert_true(flagged(sets, "ami-0miner"));
    ch_images_free(im);
    ch_refsets_free(sets);
}

static void test_store_keeps_images_across_runs(void **st)
{
    (void)st;
    char dir[] = "/tmp/ch-images-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[256];
    snprintf(db, sizeof db, "%s/s.db", dir);
    ch_refsets *sets = NULL;
    assert_int_equal(ch_refsets_new(&sets), 0);
    ch_images *im = open_pack(sets, db);
    observe(im, describe("ami-0c0ffee", "kali-linux-2024.2", "Kali", "679593333241"));
    observe(im, describe("ami-0bbbb", "ubuntu/images/noble", "Canonical, Ubuntu", "099720109477"));
    ch_error err = {0};
    assert_int_equal(ch_images_save(im, &err), 0);
    assert_int_equal(ch_images_save(im, &err), 0); /* nothing changed: nothing to write */
    ch_images_free(im);
    ch_refsets_free(sets);

    /* A new run on the same store: both are known, the Kali image is in the set at once. */
    assert_int_equal(ch_refsets_new(&sets), 0);
    im = open_pack(sets, db);
    ch_images_stats s;
    ch_images_stats_get(im, &s);
    assert_int_equal(s.restored, 2);
    assert_int_equal(s.flagged, 1);
    assert_true(flagged(sets, "ami-0c0ffee"));
    ch_image_info info;
    assert_true(ch_images_get(im, "ami-0bbbb", 9, &info));
    assert_string_equal(info.name, "ubuntu/images/noble");
    assert_string_equal(info.os, "");
    ch_images_free(im);
    ch_refsets_free(sets);

    /* The stored verdict is not trusted: a catalogue without Kali flags nothing. */
    static const char *nokali = "images:\n  - {os: Pentoo, text: pentoo, source: x}\n";
    char pack[256], cat[300];
    snprintf(pack, sizeof pack, "%s/pack", dir);
    snprintf(cat, sizeof cat, "%s/images.yaml", pack);
    assert_int_equal(mkdir(pack, 0700), 0);
    FILE *f = fopen(cat, "w");
    assert_non_null(f);
    fputs(nokali, f);
    fclose(f);
    assert_int_equal(ch_refsets_new(&sets), 0);
    assert_int_equal(ch_images_open(pack, db, sets, &im, &err), 0);
    assert_false(flagged(sets, "ami-0c0ffee"));
    ch_images_free(im);
    ch_refsets_free(sets);
    unlink(cat);
    rmdir(pack);
    char side[300];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", db, sfx[i]);
        unlink(side);
    }
    rmdir(dir);
}

static void test_bad_catalogue_names_file_line_and_column(void **st)
{
    (void)st;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"images:\n  - {os: Kali, text: kali}\n",
         "cat.yaml:2:5: image catalogue: an entry needs source"},
        {"images:\n  - {os: Kali, source: x}\n",
         "cat.yaml:2:5: image catalogue: an entry needs product_code"},
        {"images:\n  - {os: Kali, txt: kali, source: x}\n",
         "cat.yaml:2:16: image catalogue: unknown key 'txt'"},
        {"imagez: []\n", "cat.yaml:1:1: image catalogue: unknown key"},
        {"images: {a: b}\n", "cat.yaml:1:9: image catalogue: images: expected a list"},
        {"images:\n  - {os: Kali, text: kali, text: k, source: x}\n", "given twice"},
        {"images: [\n", "cat.yaml:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ch_images *im = NULL;
        ch_error err = {0};
        assert_int_equal(
            ch_images_open_mem("cat.yaml", cases[i].text, strlen(cases[i].text), NULL, &im, &err),
            CH_EPARSE);
        assert_null(im);
        if (strstr(err.msg, cases[i].want) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].want);
    }
}

static void test_pack_catalogue_cites_its_sources(void **st)
{
    (void)st;
    ch_refsets *sets = NULL;
    assert_int_equal(ch_refsets_new(&sets), 0);
    ch_images *im = open_pack(sets, NULL);
    ch_images_stats s;
    ch_images_stats_get(im, &s);
    assert_true(s.catalogue >= 10); /* every entry has a source: the loader requires it */
    ch_images_free(im);
    ch_refsets_free(sets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kali_product_code_on_the_launch_itself),
        cmocka_unit_test(test_amazon_linux_and_ubuntu_names_are_not_flagged),
        cmocka_unit_test(test_facts_merge_whatever_their_order),
        cmocka_unit_test(test_store_keeps_images_across_runs),
        cmocka_unit_test(test_bad_catalogue_names_file_line_and_column),
        cmocka_unit_test(test_pack_catalogue_cites_its_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
