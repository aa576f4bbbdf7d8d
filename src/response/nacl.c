/*
 * nacl.c - reading EC2's DescribeNetworkAcls answer for the runner (run.h,
 * ch_resp_parse_nacls), and choosing the rule numbers of the deny entries a plan adds.
 *
 * The answer nests lists of <item> three deep (networkAclSet > item > entrySet / associationSet
 * > item), and an association's item repeats its ACL's networkAclId: the reader matches each
 * ACL's <item> with its own </item> by depth, takes the ACL's id and VPC from outside its
 * associationSet, its egress and ingress entries from entrySet and the subnets from
 * associationSet. Every value handed over has the shape of what it is (ids, CIDRs, rule numbers
 * 1..32766), since it goes into later requests; anything else refuses the whole answer rather
 * than guessing. Caps: CH_RESP_NACL_MAX_ENTRIES entries per ACL, 1000 ACLs, 256 subnets per
 * ACL (AWS allows 20 entries per direction by default, 40 at most, so the caps only stop
 * hostile text). Cost: linear in the answer, with one depth scan per ACL item.
 *
 * Rule numbers: a deny entry only works before the allow entries it must override (the lowest
 * number matching wins), so ch_resp_nacl_pick takes free egress numbers from 50 up to the
 * ACL's first egress allow entry that matches the address, then downwards from 49, and fails
 * when none is left below it rather than adding an entry that would never match.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "response/aws_int.h"
#include "response/run.h"

#define MAX_ACLS 1000
#define MAX_SUBNETS 256
#define FIRST_RULE 50 /* room below for the account's own first rules */

static const char *find(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    for (; p + n <= end; p++)
        if (memcmp(p, s, n) == 0)
            return p;
    return NULL;
}

/* The </item> closing the <item> whose content starts at p, by depth. */
static const char *item_close(const char *p, const char *end)
{
    int depth = 1;
    while (p < end) {
        const char *o = find(p, end, "<item>"), *c = find(p, end, "</item>");
        if (c == NULL)
            return NULL;
        if (o != NULL && o < c) {
            if (++depth > 8)
                return NULL;
            p = o + 6;
            continue;
        }
        if (--depth == 0)
            return c;
        p = c + 7;
    }
    return NULL;
}

static bool cidrlike(const char *s, size_t n)
{
    if (n < 3 || n >= sizeof((ch_resp_nacl_entry *)0)->cidr)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F') || s[i] == '.' || s[i] == ':' || s[i] == '/'))
            return false;
    return memchr(s, '/', n) != NULL;
}

/* A scalar child of an entry into out; "" when absent, false when malformed. */
static bool child(const char *p, const char *end, const char *tag, char *out, size_t cap)
{
    const char *ve, *v = ch__aws_xml_find(p, end, tag, &ve);
    out[0] = '\0';
    if (v == NULL)
        return true;
    size_t n = (size_t)(ve - v);
    if (n >= cap)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

static int parse_entry(const char *p, const char *end, ch_resp_nacl_entry *e)
{
    char num[16], eg[8], act[8], c4[64], c6[64];
    if (!child(p, end, "ruleNumber", num, sizeof num) || !child(p, end, "egress", eg, sizeof eg) ||
        !child(p, end, "ruleAction", act, sizeof act) ||
        !child(p, end, "cidrBlock", c4, sizeof c4) ||
        !child(p, end, "ipv6CidrBlock", c6, sizeof c6))
        return CH_EPARSE;
    char *stop = NULL;
    long n = strtol(num, &stop, 10);
    if (num[0] < '0' || num[0] > '9' || *stop != '\0' || n < 1 || n > 32767)
        return CH_EPARSE;
    if (strcmp(eg, "true") != 0 && strcmp(eg, "false") != 0)
        return CH_EPARSE;
    if (strcmp(act, "allow") != 0 && strcmp(act, "deny") != 0)
        return CH_EPARSE;
    const char *cidr = c4[0] ? c4 : c6;
    if (cidr[0] && !cidrlike(cidr, strlen(cidr)))
        return CH_EPARSE;
    e->number = (int)n;
    e->egress = eg[0] == 't';
    e->deny = act[0] == 'd';
    snprintf(e->cidr, sizeof e->cidr, "%s", cidr);
    return 0;
}

/* The first <tag> of the ACL item [a, b) outside its associationSet [as, ae). */
static bool acl_scalar(const char *a, const char *b, const char *as, const char *ae,
                       const char *tag, char *out, size_t cap)
{
    const char *ve, *v = ch__aws_xml_find(a, as != NULL ? as : b, tag, &ve);
    if (v == NULL && ae != NULL)
        v = ch__aws_xml_find(ae, b, tag, &ve);
    out[0] = '\0';
    if (v == NULL)
        return true;
    size_t n = (size_t)(ve - v);
    if (!ch__aws_id_shaped(v, n) || n >= cap)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

int ch_resp_parse_nacls(const char *xml, size_t n, ch_resp_nacl_fn fn, void *ud)
{
    const char *end = xml + n, *se;
    const char *set = ch__aws_xml_find(xml, end, "networkAclSet", &se);
    if (set == NULL)
        return find(xml, end, "<networkAclSet/>") != NULL ? 0 : CH_EPARSE;
    ch_resp_nacl_entry *entries = malloc(CH_RESP_NACL_MAX_ENTRIES * sizeof *entries);
    char *subnets = malloc(MAX_SUBNETS * 72);
    int count = 0, rc = 0;
    if (entries == NULL || subnets == NULL) {
        rc = CH_ENOMEM;
        goto cleanup;
    }
    /* Items nest: each ACL's item is matched with its own close tag by depth. */
    const char *p = set;
    for (;;) {
        const char *o = find(p, se, "<item>");
        if (o == NULL)
            break;
        const char *a = o + 6, *b = item_close(a, se);
        if (b == NULL) {
            rc = CH_EPARSE;
            goto cleanup;
        }
        const char *ae = NULL, *as = ch__aws_xml_find(a, b, "associationSet", &ae);
        const char *ee = NULL, *es = ch__aws_xml_find(a, b, "entrySet", &ee);
        char acl[72], vpc[72];
        if (!acl_scalar(a, b, as != NULL ? as - 16 : NULL, ae, "networkAclId", acl, sizeof acl) ||
            !acl_scalar(a, b, as != NULL ? as - 16 : NULL, ae, "vpcId", vpc, sizeof vpc) ||
            acl[0] == '\0') {
            rc = CH_EPARSE;
            goto cleanup;
        }
        size_t ne = 0;
        for (const char *q = es; q != NULL;) {
            const char *io = find(q, ee, "<item>");
            if (io == NULL)
                break;
            const char *ic = find(io + 6, ee, "</item>");
            if (ic == NULL || ne == CH_RESP_NACL_MAX_ENTRIES) {
                rc = ic == NULL ? CH_EPARSE : CH_ELIMIT;
                goto cleanup;
            }
            if ((rc = parse_entry(io + 6, ic, &entries[ne++])) < 0)
                goto cleanup;
            q = ic + 7;
        }
        size_t used = 0, ns = 0;
        subnets[0] = '\0';
        for (const char *q = as; q != NULL;) {
            const char *io = find(q, ae, "<item>");
            if (io == NULL)
                break;
            const char *ic = find(io + 6, ae, "</item>");
            if (ic == NULL || ns == MAX_SUBNETS) {
                rc = ic == NULL ? CH_EPARSE : CH_ELIMIT;
                goto cleanup;
            }
            const char *ve, *v = ch__aws_xml_find(io + 6, ic, "subnetId", &ve);
            if (v != NULL) {
                if (!ch__aws_id_shaped(v, (size_t)(ve - v))) {
                    rc = CH_EPARSE;
                    goto cleanup;
                }
                used += (size_t)snprintf(subnets + used, MAX_SUBNETS * 72 - used, "%s%.*s",
                                         ns ? "," : "", (int)(ve - v), v);
                ns++;
            }
            q = ic + 7;
        }
        if (++count > MAX_ACLS) {
            rc = CH_ELIMIT;
            goto cleanup;
        }
        if ((rc = fn(ud, acl, vpc, subnets, entries, ne)) < 0)
            goto cleanup;
        p = b + 7;
    }
    rc = count;
cleanup:
    free(entries);
    free(subnets);
    return rc;
}

/* "a.b.c.d/n" or "x::y/n" into bytes and a prefix length; false when it is neither. */
static bool cidr_parse(const char *s, unsigned char addr[16], int *family, int *bits)
{
    char host[64];
    const char *slash = strchr(s, '/');
    if (slash == NULL || (size_t)(slash - s) >= sizeof host)
        return false;
    snprintf(host, sizeof host, "%.*s", (int)(slash - s), s);
    char *end = NULL;
    long b = strtol(slash + 1, &end, 10);
    *family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
    if (end == slash + 1 || *end != '\0' || b < 0 || b > (*family == AF_INET ? 32 : 128))
        return false;
    *bits = (int)b;
    return inet_pton(*family, host, addr) == 1;
}

/* Whether the entry's CIDR holds every address of cidr (unknown shapes count as holding it:
 * the cautious answer, since a deny after an allow that matches is never reached). */
static bool covers(const char *outer, const char *cidr)
{
    unsigned char a[16], b[16];
    int fa, fb, ba, bb;
    if (!cidr_parse(outer, a, &fa, &ba) || !cidr_parse(cidr, b, &fb, &bb))
        return true;
    if (fa != fb || ba > bb)
        return false;
    int full = ba / 8, rest = ba % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ b[full]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

int ch_resp_nacl_pick(const ch_resp_nacl_entry *e, size_t n, const char *cidr, const int *taken,
                      size_t ntaken)
{
    int first_allow = 32767;
    for (size_t i = 0; i < n; i++)
        if (e[i].egress && !e[i].deny && e[i].number < first_allow && covers(e[i].cidr, cidr))
            first_allow = e[i].number;
    for (int pass = 0; pass < 2; pass++) {
        int below = first_allow - 1 < FIRST_RULE - 1 ? first_allow - 1 : FIRST_RULE - 1;
        int from = pass == 0 ? FIRST_RULE : below, step = pass == 0 ? 1 : -1;
        for (int r = from; r >= 1 && r < first_allow && r <= 32766; r += step) {
            bool used = false;
            for (size_t i = 0; i < n && !used; i++)
                used = e[i].egress && e[i].number == r;
            for (size_t i = 0; i < ntaken && !used; i++)
                used = taken[i] == r;
            if (!used)
                return r;
        }
    }
    return CH_ELIMIT;
}
