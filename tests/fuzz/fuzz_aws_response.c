/*
 * fuzz_aws_response.c - the runner's readers of AWS answers (response/run.h), on arbitrary
 * bytes: the DescribeInstances reader (an instance's VPC, subnet and security groups), the
 * DescribeNetworkAcls reader (each ACL's id, VPC, subnets and entries) and the JSON path reader
 * of Route 53 Resolver answers. Neither may crash; every value handed over is
 * NUL-terminated, id-shaped (letters, digits, '-' and '_': it goes into later requests) and the
 * group list is comma-separated ids.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "response/run.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void shaped(const char *s, const char *extra)
{
    for (; *s; s++)
        CHECK((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || (extra != NULL && strchr(extra, *s) != NULL));
}

static int on_instance(void *ud, const char *id, const char *vpc, const char *subnet,
                       const char *groups)
{
    (void)ud;
    CHECK(id[0] != '\0');
    shaped(id, NULL);
    shaped(vpc, NULL);
    shaped(subnet, NULL);
    shaped(groups, ",");
    return 0;
}

static int on_acl(void *ud, const char *acl, const char *vpc, const char *subnets,
                  const ch_resp_nacl_entry *e, size_t n)
{
    (void)ud;
    CHECK(acl[0] != '\0');
    shaped(acl, NULL);
    shaped(vpc, NULL);
    shaped(subnets, ",");
    CHECK(n <= CH_RESP_NACL_MAX_ENTRIES);
    for (size_t i = 0; i < n; i++) {
        CHECK(e[i].number >= 1 && e[i].number <= 32767);
        CHECK(memchr(e[i].cidr, '\0', sizeof e[i].cidr) != NULL);
        for (const char *c = e[i].cidr; *c; c++)
            CHECK(strchr("0123456789abcdefABCDEF.:/", *c) != NULL);
    }
    int r = ch_resp_nacl_pick(e, n, n > 0 ? e[0].cidr : "192.0.2.1/32", NULL, 0);
    CHECK(r == CH_ELIMIT || (r >= 1 && r <= 32766));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    int n = ch_resp_parse_instances(t, size, on_instance, NULL);
    CHECK(n >= 0 || n == CH_EPARSE || n == CH_ELIMIT);
    n = ch_resp_parse_nacls(t, size, on_acl, NULL);
    CHECK(n >= 0 || n == CH_EPARSE || n == CH_ELIMIT);
    char out[128];
    int rc = ch_resp_json_path(t, size, "FirewallDomainList", "Id", out, sizeof out);
    CHECK(rc == 0 || rc == 1 || rc < 0);
    if (rc == 1) {
        CHECK(memchr(out, '\0', sizeof out) != NULL && out[0] != '\0');
        shaped(out, NULL);
    }
    return 0;
}
