/*
 * fuzz_aws_creds.c - the responder's parsers of untrusted text (response/creds.h,
 * response/aws_call.h): the shared credentials/config INI reader, the STS response reader and
 * the AWS error reader (Query XML and JSON 1.1), on arbitrary bytes. Neither may
 * crash; a value the INI reader returns is NUL-terminated within its buffer and holds no line
 * break, and credentials the STS reader accepts are complete (key id and secret non-empty).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "response/aws_call.h"
#include "response/creds.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    static const char *const sections[] = {"default", "profile ops", "ops"};
    static const char *const keys[] = {"aws_access_key_id", "aws_secret_access_key", "role_arn"};
    for (size_t s = 0; s < 3; s++) {
        char out[64];
        ch_error err = {0};
        int rc = ch_aws_ini_get(t, size, "fuzz", sections[s], keys[s], out, sizeof out, &err);
        CHECK(rc == 0 || rc == 1 || rc == CH_EPARSE || rc == CH_ELIMIT);
        if (rc == 1) {
            CHECK(memchr(out, '\0', sizeof out) != NULL);
            CHECK(strchr(out, '\n') == NULL);
        }
    }
    ch_aws_creds c;
    ch_error err = {0};
    if (ch_aws_sts_parse(t, size, &c, &err) == 0)
        CHECK(c.access_key[0] != '\0' && c.secret_key[0] != '\0');
    char code[32], msg[64];
    if (ch_aws_error_parse(t, size, code, sizeof code, msg, sizeof msg))
        CHECK(code[0] != '\0' && memchr(code, '\0', sizeof code) != NULL &&
              memchr(msg, '\0', sizeof msg) != NULL);
    return 0;
}
