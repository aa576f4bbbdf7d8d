/*
 * jsonstream.c - next parsed JSON record with error reporting (see jsonstream.h).
 */
#include "parse/jsonstream.h"

#include <string.h>

#include "core/error.h"

const char *ch_jsonstream_parse_reason(const ch_json_parser *p)
{
    const char *r = ch_json_last_reason(p);
    if (strcmp(r, "utf8") == 0)
        return "invalid_utf8";
    if (strcmp(r, "depth") == 0)
        return "too_deep";
    if (strcmp(r, "too_large") == 0)
        return "record_too_large";
    if (strcmp(r, "memory") == 0)
        return "out_of_memory";
    return "json_syntax";
}

int ch_jsonstream_next(ch_jsonrec *r, ch_json_parser *p, ch_diag *diag, ch_dataset ds,
                       const char *name, ch_jsonrec_rec *rec, ch_json_val *root)
{
    for (;;) {
        int rc = ch_jsonrec_next(r, diag, ds, rec);
        if (rc <= 0)
            return rc;
        ch_error err; /* 512 bytes: not cleared per record; read only after a failure sets it */
        if (ch_json_parse(p, rec->p, rec->n, rec->n + CH_JSON_PADDING, root, &err) >= 0)
            return 1;
        diag->by_ds[ds].records++;
        ch_diag_report(diag, ds, name, rec->line, rec->offset, ch_jsonstream_parse_reason(p), "%s",
                       err.msg);
    }
}
