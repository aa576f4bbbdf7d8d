/*
 * fuzz_images.c - libFuzzer target for the image catalogue reader (src/enrich/images.c):
 * arbitrary bytes as PACK/images.yaml. A catalogue that loads is then used: a RunInstances with
 * a product code and a DescribeImages with a name are observed, so that the classification of
 * whatever entries the loader accepts runs too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/json.h"
#include "enrich/images.h"
#include "enrich/refset.h"
#include "parse/cloudtrail.h"

static const char *const records[] = {
    "{\"eventVersion\":\"1.09\",\"eventTime\":\"2024-06-05T08:00:00Z\",\"eventSource\":"
    "\"ec2.amazonaws.com\",\"eventName\":\"RunInstances\",\"awsRegion\":\"us-east-1\","
    "\"eventID\":\"e1\",\"recipientAccountId\":\"111122223333\",\"userIdentity\":{\"type\":"
    "\"IAMUser\",\"userName\":\"bob\"},\"responseElements\":{\"instancesSet\":{\"items\":[{"
    "\"imageId\":\"ami-1\",\"productCodes\":{\"items\":[{\"productCode\":\"abc\"}]}}]}}}",
    "{\"eventVersion\":\"1.09\",\"eventTime\":\"2024-06-05T08:00:00Z\",\"eventSource\":"
    "\"ec2.amazonaws.com\",\"eventName\":\"DescribeImages\",\"awsRegion\":\"us-east-1\","
    "\"eventID\":\"e2\",\"recipientAccountId\":\"111122223333\",\"userIdentity\":{\"type\":"
    "\"IAMUser\",\"userName\":\"bob\"},\"responseElements\":{\"imagesSet\":{\"items\":[{"
    "\"imageId\":\"ami-2\",\"name\":\"Kali Linux 2024\",\"description\":\"x\","
    "\"imageOwnerId\":\"679593333241\"}]}}}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_refsets *sets = NULL;
    if (ch_refsets_new(&sets) != 0)
        return 0;
    ch_images *im = NULL;
    ch_error err;
    memset(&err, 0, sizeof err);
    int rc = ch_images_open_mem("fuzz.yaml", (const char *)data, size, sets, &im, &err);
    if (memchr(err.msg, '\0', sizeof err.msg) == NULL || (rc == 0) != (im != NULL))
        __builtin_trap();
    ch_json_parser *p = im != NULL ? ch_json_parser_new(1 << 16, 32) : NULL;
    for (size_t i = 0; p != NULL && i < sizeof records / sizeof *records; i++) {
        ch_json_val root, rec;
        const char *t = records[i];
        if (ch_json_parse(p, t, strlen(t), strlen(t), &root, &err) != 0)
            continue;
        ch_event ev;
        ch_event_reset(&ev);
        bool env = false;
        const char *why = NULL;
        if (ch__cloudtrail_normalize(root, &ev, &rec, &env, &why) != 0)
            continue;
        ev.has_raw_doc = true;
        ev.raw_doc = rec;
        ch_images_observe(im, &ev);
    }
    ch_json_parser_free(p);
    ch_images_free(im);
    ch_refsets_free(sets);
    return 0;
}
