/*
 * fuzz_taxii_envelope.c - libFuzzer target for the TAXII 2.1 resource parsers that read what a
 * remote server sends: envelopes, discovery and collections (intel/taxii_client.h).
 *
 * Oracles, checked with __builtin_trap: a parse either fails with CH_EPARSE/CH_ELIMIT and a
 * message, or succeeds with results that hold together: nobjects counts the objects array
 * (when there is one), next is non-empty, within the cap and inside the parsed document's
 * strings; discovery never returns more roots than the capacity given, each non-empty;
 * collections have non-empty ids.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/json.h"
#include "intel/taxii_client.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static ch_json_parser *parser;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (parser == NULL)
        parser = ch_json_parser_new(1u << 20, 64);
    if (parser == NULL)
        return 0;
    const char *buf = (const char *)data;
    ch_error err = {0};

    ch_taxii_envelope env;
    int rc = ch_taxii_parse_envelope(parser, buf, size, &env, &err);
    if (rc < 0) {
        CHECK(rc == CH_EPARSE || rc == CH_ELIMIT);
        CHECK(err.msg[0] != '\0');
    } else {
        if (env.next != NULL)
            CHECK(env.next_len > 0 && env.next_len <= CH_TAXII_NEXT_MAX);
        if (env.has_objects) {
            CHECK(ch_json_typeof(env.objects) == CH_JSON_ARRAY);
            ch_json_iter it;
            ch_json_val v;
            size_t n = 0;
            ch_json_arr_iter(env.objects, &it);
            while (ch_json_arr_next(&it, &v))
                n++;
            CHECK(n == env.nobjects);
        } else {
            CHECK(env.nobjects == 0);
        }
    }

    ch_taxii_str roots[4];
    bool is_root = false;
    memset(&err, 0, sizeof err);
    rc = ch_taxii_parse_discovery(parser, buf, size, roots, 4, &is_root, &err);
    if (rc < 0) {
        CHECK(err.msg[0] != '\0');
    } else {
        CHECK(rc <= 4);
        CHECK(!is_root || rc == 0);
        for (int i = 0; i < rc; i++)
            CHECK(roots[i].s != NULL && roots[i].n > 0);
    }

    ch_taxii_collection_info cis[8];
    memset(&err, 0, sizeof err);
    rc = ch_taxii_parse_collections(parser, buf, size, cis, 8, &err);
    if (rc < 0) {
        CHECK(err.msg[0] != '\0');
    } else {
        CHECK(rc <= 8);
        for (int i = 0; i < rc; i++)
            CHECK(cis[i].id.s != NULL && cis[i].id.n > 0);
    }
    return 0;
}
