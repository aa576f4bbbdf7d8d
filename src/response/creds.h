/*
 * creds.h - AWS credentials for the responder, from the standard chain, in the order the AWS
 * SDKs and CLI use:
 *   1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (AWS_ROLE_SESSION_NAME), or a
 *      profile's web_identity_token_file and role_arn, exchanged at STS with
 *      AssumeRoleWithWebIdentity (an unsigned call: the token is the proof);
 *   3. the shared files: AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials, sections
 *      [name]) and AWS_CONFIG_FILE (default ~/.aws/config, sections [profile name] and
 *      [default]) for the profile AWS_PROFILE (default "default");
 *   4. IMDSv2 on EC2 (a session token by PUT, then the instance role's credentials), unless
 *      AWS_EC2_METADATA_DISABLED=true; AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the address.
 * ch_aws_assume_role then takes the result into a member account with a signed STS AssumeRole.
 * AWS_ENDPOINT_URL_STS overrides STS's address (tests point it at a loopback server).
 *
 * The shared files are INI as the CLI reads them: `[section]`, `key = value`, comments from '#'
 * or ';' at the start of a line. A file over 1 MiB, a line over 4096 bytes or a line that is
 * neither is refused with the file and line. Responses (STS XML, IMDS JSON) are read with caps
 * and no entity expansion beyond the five XML predefined ones.
 *
 * Ownership: ch_aws_creds is a plain value; clear it with ch_aws_creds_wipe when done.
 */
#ifndef CH_RESPONSE_CREDS_H
#define CH_RESPONSE_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ch_aws_creds {
    char access_key[128];
    char secret_key[128];
    char session_token[4096]; /* "" for long-term keys */
    int64_t expires_ms;       /* 0 = does not expire */
    char source[32];          /* "env", "web-identity", "shared-files", "imds", "assume-role" */
} ch_aws_creds;

void ch_aws_creds_wipe(ch_aws_creds *c);

/* Look up key in [section] of an INI text; path names the file in errors. Returns 1 found (out
 * NUL-terminated), 0 not found, CH_EPARSE for a malformed line, CH_ELIMIT for a value longer
 * than cap - 1 or a text over the caps. */
int ch_aws_ini_get(const char *text, size_t n, const char *path, const char *section,
                   const char *key, char *out, size_t cap, ch_error *err);

/* The chain above. CH_ENOTFOUND (with every place tried in the message) when nothing gives
 * credentials; CH_EPARSE / CH_EIO with the source named otherwise. */
int ch_aws_creds_chain(ch_aws_creds *c, ch_error *err);

/* Parse an STS response (AssumeRole or AssumeRoleWithWebIdentity) into c, or its ErrorResponse
 * into err ("STS AccessDenied: message ... needs sts:AssumeRole"), CH_EIO. */
int ch_aws_sts_parse(const char *xml, size_t n, ch_aws_creds *c, ch_error *err);

/* Assume role_arn (session name "coinhound-respond") with base credentials; region signs the
 * call (STS's regional endpoint, or AWS_ENDPOINT_URL_STS). */
int ch_aws_assume_role(const ch_aws_creds *base, const char *role_arn, const char *region,
                       ch_aws_creds *out, ch_error *err);

/* The same at an explicit STS endpoint ("https://sts.us-east-1.amazonaws.com", or respond.endpoint
 * in the configuration); NULL = as ch_aws_assume_role. */
int ch_aws_assume_role_at(const ch_aws_creds *base, const char *role_arn, const char *region,
                          const char *endpoint, ch_aws_creds *out, ch_error *err);

#endif
