/*
 * aws_int.h - what creds.c and aws_call.c share inside src/response/: one HTTP exchange over
 * libcurl and the XML text reader (first <tag>, the five predefined entities, nothing else).
 */
#ifndef CH_RESPONSE_AWS_INT_H
#define CH_RESPONSE_AWS_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

/* One request: status into *status, body into resp (capped by resp's max). CH_EIO when no
 * answer came. */
int ch__aws_http(const char *method, const char *url, struct curl_slist *hdrs, const char *body,
                 long connect_ms, long *status, ch_buf *resp, ch_error *err);

/* The text of the first <tag>...</tag> of xml[0..n), entities decoded, into out. */
bool ch__aws_xml_text(const char *xml, size_t n, const char *tag, char *out, size_t cap);

#endif
