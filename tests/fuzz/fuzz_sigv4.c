/*
 * fuzz_sigv4.c - the SigV4 signer's request parsing (response/sigv4.h) on arbitrary requests:
 * the input is split at the first two newlines into path, query and one header value (also the
 * body). The signer must never crash, and what it accepts must be canonical: the canonical path
 * starts with '/', the canonical query holds no byte outside the unreserved set, '%', '=' and
 * '&' (so no input byte reaches it raw), and the Authorization header names exactly the headers
 * given with a 64-digit signature.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "response/sigv4.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static bool query_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("-._~%=&", c) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 3);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = s[size + 1] = s[size + 2] = '\0';
    for (size_t i = 0; i < size; i++)
        if (s[i] == '\0')
            s[i] = ' ';
    char *path = s, *query = "", *value = "";
    char *nl = strchr(path, '\n');
    if (nl != NULL) {
        *nl = '\0';
        query = nl + 1;
        if ((nl = strchr(query, '\n')) != NULL) {
            *nl = '\0';
            value = nl + 1;
        }
    }
    ch_sigv4_header h[] = {{"Host", "ec2.us-east-1.amazonaws.com"},
                           {"X-Amz-Date", "20240604T010000Z"},
                           {"X-Fuzz", value}};
    ch_sigv4_request r = {"POST", path, query, h, 3, value, strlen(value)};
    ch_sigv4_key k = {"AKIDEXAMPLE", "secret", "us-east-1", "ec2", "20240604T010000Z"};
    ch_sigv4_out out;
    ch_sigv4_out_init(&out);
    ch_error err = {0};
    if (ch_sigv4_sign(&r, &k, &out, &err) == 0) {
        ch_buf_addc(&out.creq, '\0');
        ch_buf_addc(&out.authorization, '\0');
        /* line 2 is the path, line 3 the query */
        const char *p2 = strchr(out.creq.data, '\n') + 1;
        const char *q = strchr(p2, '\n') + 1;
        CHECK(p2[0] == '/');
        for (const char *c = q; *c != '\n'; c++)
            CHECK(query_char(*c));
        CHECK(strstr(out.authorization.data, "SignedHeaders=host;x-amz-date;x-fuzz, ") != NULL);
        CHECK(strlen(strstr(out.authorization.data, "Signature=")) == 10 + 64);
    }
    ch_sigv4_out_free(&out);
    free(s);
    return 0;
}
