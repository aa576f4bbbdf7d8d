/*
 * fuzz_firehose.c - libFuzzer target for the Firehose HTTP endpoint request parser and the
 * CloudWatch Logs subscription envelopes inside its records (ingest/firehose.h).
 *
 * Oracles, checked with __builtin_trap: a parse succeeds or fails with CH_EPARSE/CH_ELIMIT and
 * a message; every payload handed on is within the unpacked cap, has data exactly when it is
 * not a control message, and counts add up (raw + data + control = records seen); a
 * CloudWatch Logs payload ends with a newline per message.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ingest/firehose.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static ch_firehose *fh;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_payload(void *ud, const ch_firehose_payload *p)
{
    size_t *n = ud;
    CHECK(p->index == *n);
    (*n)++;
    CHECK(p->len <= CH_FIREHOSE_MAX_UNPACKED);
    CHECK((p->data == NULL) == (p->kind == CH_FIREHOSE_CWL_CONTROL));
    if (p->kind == CH_FIREHOSE_CWL_DATA) {
        size_t nl = 0;
        for (size_t i = 0; i < p->len; i++)
            nl += p->data[i] == '\n';
        CHECK(nl == p->messages);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fh == NULL && ch_firehose_new(&fh) < 0)
        return 0;
    ch_firehose_request req;
    ch_error err = {0};
    size_t n = 0;
    int rc = ch_firehose_parse(fh, (const char *)data, size, &req, on_payload, &n, &err);
    CHECK(rc == 0 || rc == CH_EPARSE || rc == CH_ELIMIT);
    CHECK(rc == 0 || err.msg[0] != '\0');
    if (rc == 0)
        CHECK(req.raw + req.cwl_data + req.cwl_control == req.records && n == req.records);
    CHECK(strlen(req.request_id) <= CH_FIREHOSE_ID_MAX);
    return 0;
}
