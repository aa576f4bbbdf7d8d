/*
 * aws_int.h - what the files of src/response/ share: one HTTP exchange over libcurl, the XML
 * text readers (first <tag>, the five predefined entities, nothing else) and the shape of an id.
 */
#ifndef CH_RESPONSE_AWS_INT_H
#define CH_RESPONSE_AWS_INT_H

#include "core/curl_lazy.h"
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

/* One request: status into *status, body into resp (capped by resp's max). CH_EIO when no
 * answer came. The caller asked ch_curl_load before building hdrs. */
int ch__aws_http(const char *method, const char *url, struct curl_slist *hdrs, const char *body,
                 long connect_ms, long *status, ch_buf *resp, ch_error *err);

/* The text of the first <tag>...</tag> of xml[0..n), entities decoded, into out. */
bool ch__aws_xml_text(const char *xml, size_t n, const char *tag, char *out, size_t cap);

/* The raw text between the first <tag> at or after p and the </tag> after it, both before end:
 * its start, with its end in *vend; NULL when either is missing (run.c). */
const char *ch__aws_xml_find(const char *p, const char *end, const char *tag, const char **vend);

/* An AWS resource id as answers carry them (1 to 64 of [A-Za-z0-9_-]): what the runner accepts
 * before putting an id from an answer into a later request (run.c). */
bool ch__aws_id_shaped(const char *s, size_t n);

#endif
