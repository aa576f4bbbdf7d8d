/*
 * batch.c - count and classify the records of one batch (see batch.h).
 *
 * The batch is seen through ch_input_open_mem (so gzip is undone the way files are), its type
 * detected from the first 64 KiB like analyze does, and its stream drained. Messages the
 * parsers report go to an in-memory FILE (open_memstream) and are cut into the answer's error
 * list; the diag's per-reason rate limit bounds them. O(batch) time, O(window) memory.
 */
#include "ingest/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "ingest/input.h"
#include "parse/jsonrec.h"
#include "parse/jsonstream.h"

#define DETECT_BYTES (64 * 1024)

static void add_error(ch_batch_result *r, const char *reason, const char *msg)
{
    if (r->nerrors < CH_BATCH_MAX_ERRORS)
        snprintf(r->errors[r->nerrors++], CH_BATCH_ERROR_LEN, "%s: %s", reason, msg);
}

/* The whole batch is unusable: one rejected record. */
static void reject_all(ch_batch_result *r, const char *origin, const char *reason, const char *msg)
{
    ch_diag_report(&r->diag, CH_DS_UNKNOWN, origin, 0, UINT64_MAX, reason, "%s", msg);
    r->records++;
    r->rejected++;
    add_error(r, reason, msg);
}

int ch_batch_check(const void *data, size_t len, const ch_source_type *forced, const char *origin,
                   ch_batch_result *res, ch_error *err)
{
    memset(res, 0, sizeof *res);
    char *msgs = NULL;
    size_t msglen = 0;
    FILE *sink = open_memstream(&msgs, &msglen);
    if (sink == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_diag_init(&res->diag, sink);
    ch_input *in = NULL;
    ch_stream *st = NULL;
    ch_error ierr = {0};
    int rc = 0;
    const ch_source_type *type = forced;
    if (len == 0) {
        reject_all(res, origin, "empty_body", "no records");
        goto done;
    }
    if (ch_input_open_mem(&in, origin, data, len, 0, &ierr) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "%s", ierr.msg);
        goto done;
    }
    long head = ch_input_fill(in, DETECT_BYTES, &ierr);
    size_t hn = 0;
    const char *hp = ch_input_data(in, &hn);
    if (head < 0 && hn == 0) {
        reject_all(res, origin, ch_input_is_gzip(in) ? "gzip_error" : "read_error", ierr.msg);
        goto done;
    }
    /* Detection looks at the first 64 KiB: the window holds a whole chunk (1 MiB, or all of
     * a request body), and a detector that does not find its keys (route53's memmem) would
     * otherwise scan all of it for every input; the rest only when the head is not enough. */
    if (type == NULL)
        type = ch_source_detect(hp, hn < DETECT_BYTES ? hn : DETECT_BYTES);
    if (type == NULL && hn > DETECT_BYTES)
        type = ch_source_detect(hp, hn);
    if (type == NULL) {
        reject_all(res, origin, "unrecognized_format",
                   "not CloudTrail, VPC Flow Logs or Route 53 Resolver records");
        goto done;
    }
    res->type = type;
    if (type->dataset == CH_DS_CLOUDTRAIL || type->dataset == CH_DS_ROUTE53) {
        /* JSON sources: framing and syntax, record by record, without normalizing (see the
         * header for why); the pipeline's own parse refuses the rest. */
        ch_jsonrec *jr = ch_jsonrec_new(in, 0);
        ch_json_parser *jp = ch_json_parser_new(CH_INPUT_DEFAULT_MAX_WINDOW, 1024);
        if (jr == NULL || jp == NULL) {
            ch_jsonrec_free(jr);
            ch_json_parser_free(jp);
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto done;
        }
        ch_jsonrec_rec rec;
        ch_json_val root;
        uint64_t ok = 0;
        while (ch_jsonstream_next(jr, jp, &res->diag, type->dataset, origin, &rec, &root) == 1)
            ok++;
        ch_jsonrec_free(jr);
        ch_json_parser_free(jp);
        ch_ds_stats *s = &res->diag.by_ds[type->dataset];
        res->rejected = s->errors;
        res->accepted = ok;
        res->records = ok + s->errors;
        goto done;
    }
    st = type->open(in, &res->diag, &ierr);
    if (st == NULL) {
        reject_all(res, origin, "open_failed", ierr.msg);
        goto done;
    }
    ch_event ev;
    while (type->next(st, &ev) == 1) {
    }
    ch_ds_stats *s = &res->diag.by_ds[type->dataset];
    /* A stream that failed outright (damaged gzip, truncated document) reports an error that
     * is not a record of its own: the records are then at least the errors. */
    res->records = s->records > s->errors ? s->records : s->errors;
    res->rejected = s->errors;
    res->accepted = res->records - res->rejected;
done:
    if (st != NULL)
        type->close(st);
    ch_input_close(in);
    fclose(sink);
    /* Parser messages, "coinhound: ORIGIN:WHERE: reason: msg", become "reason: msg". */
    size_t kept = res->nerrors;
    for (char *line = msgs, *nl; line != NULL && *line && res->nerrors < CH_BATCH_MAX_ERRORS;
         line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (kept > 0) { /* reject_all already listed these */
            kept--;
            continue;
        }
        const char *p = strncmp(line, "coinhound: ", 11) == 0 ? line + 11 : line;
        snprintf(res->errors[res->nerrors++], CH_BATCH_ERROR_LEN, "%s", p);
    }
    free(msgs);
    res->diag.sink = NULL;
    return rc;
}
