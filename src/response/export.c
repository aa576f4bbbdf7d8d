/*
 * export.c - block lists for firewalls, IPS and resolvers from an offense (see export.h).
 *
 * Every value is checked again here, whatever the store says: an address is parsed and written
 * back in canonical form, a domain must be LDH labels of at most 63 bytes in a name of at most
 * 253. A value that fails is left out and counted in the header comment. That is what keeps a
 * crafted query name in a log from becoming an nftables statement, a Suricata option or a zone
 * record. O(observables) per export.
 */
#include "response/export.h"

#include <stdio.h>
#include <string.h>

#include "core/ip.h"
#include "core/timeparse.h"
#include "offense/observables.h"

typedef struct vals {
    const ch_offense *o;
    size_t skipped;
} vals;

static bool domain_ok(const char *d)
{
    size_t n = strlen(d), label = 0;
    if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.' || d[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
        if (++label > 63)
            return false;
    }
    return strchr(d, '.') != NULL;
}

/* The attributed values of kind k that pass the check, through fn. For addresses, *ip is set
 * and the canonical text is given; family 0/4/6 filters (0 = both). */
typedef int (*val_fn)(ch_buf *b, const char *text, const ch_ip *ip, size_t i, void *ud);

static int each(vals *v, ch_obs_kind k, int family, ch_buf *b, val_fn fn, void *ud, bool count)
{
    const ch_offense_obs *x = v->o->obs;
    size_t done = 0;
    for (size_t i = 0; x != NULL && i < x->n[k]; i++) {
        const ch_obs *e = &x->items[k][i];
        if (e->severity < CH_OBS_ATTRIBUTED_SEVERITY)
            continue;
        char t[64];
        ch_ip ip = {0};
        if (k == CH_OBS_POOL_DOMAIN) {
            if (!domain_ok(e->value)) {
                v->skipped += count;
                continue;
            }
        } else {
            if (!ch_ip_parse(e->value, strlen(e->value), &ip) || ch_ip_is_internal(&ip)) {
                v->skipped += count;
                continue;
            }
            if (family != 0 && ip.family != family)
                continue;
            ch_ip_format(&ip, t);
        }
        int rc = fn(b, k == CH_OBS_POOL_DOMAIN ? e->value : t, &ip, done++, ud);
        if (rc < 0)
            return rc;
    }
    return (int)done;
}

static int count_fn(ch_buf *b, const char *t, const ch_ip *ip, size_t i, void *ud)
{
    (void)b, (void)t, (void)ip, (void)i, (void)ud;
    return 0;
}

/* Count what will be skipped (once per value), so that the header can say it. */
static void precount(vals *v)
{
    v->skipped = 0;
    each(v, CH_OBS_SOURCE_IP, 0, NULL, count_fn, NULL, true);
    each(v, CH_OBS_POOL_IP, 0, NULL, count_fn, NULL, true);
    each(v, CH_OBS_POOL_DOMAIN, 0, NULL, count_fn, NULL, true);
}

static int header(ch_buf *b, const char *comment, vals *v, int64_t now_ms)
{
    char t[40];
    ch_time_format(now_ms, t);
    int rc = ch_buf_printf(b,
                           "%s coinhound offense %lld: mining pools and attacker addresses, "
                           "written %s\n",
                           comment, (long long)v->o->id, t);
    if (rc >= 0 && v->skipped > 0)
        rc = ch_buf_printf(b, "%s %zu value(s) left out: not a valid address or domain name\n",
                           comment, v->skipped);
    return rc;
}

/* ---- list -------------------------------------------------------------------------------------
 */

static int line_fn(ch_buf *b, const char *t, const ch_ip *ip, size_t i, void *ud)
{
    (void)ip, (void)i, (void)ud;
    return ch_buf_printf(b, "%s\n", t);
}

static int write_list(ch_buf *b, vals *v, int64_t now_ms)
{
    int rc = header(b, "#", v, now_ms);
    if (rc >= 0)
        rc = each(v, CH_OBS_POOL_IP, 0, b, line_fn, NULL, false);
    if (rc >= 0)
        rc = each(v, CH_OBS_SOURCE_IP, 0, b, line_fn, NULL, false);
    if (rc >= 0)
        rc = each(v, CH_OBS_POOL_DOMAIN, 0, b, line_fn, NULL, false);
    return rc < 0 ? rc : 0;
}

/* ---- nftables ---------------------------------------------------------------------------------
 */

static int elem_fn(ch_buf *b, const char *t, const ch_ip *ip, size_t i, void *ud)
{
    (void)ip, (void)ud;
    return ch_buf_printf(b, "%s%s", i ? ", " : "", t);
}

static int nft_set(ch_buf *b, vals *v, const char *name, ch_obs_kind k, int family)
{
    int rc = ch_buf_printf(b, "\tset %s {\n\t\ttype %s\n", name,
                           family == 4 ? "ipv4_addr" : "ipv6_addr");
    size_t mark = b->len;
    if (rc >= 0)
        rc = ch_buf_adds(b, "\t\telements = { ");
    int n = rc >= 0 ? each(v, k, family, b, elem_fn, NULL, false) : rc;
    if (n < 0)
        return n;
    if (n == 0)
        b->len = mark; /* an empty set is declared without elements */
    else if ((rc = ch_buf_adds(b, " }\n")) < 0)
        return rc;
    return ch_buf_adds(b, "\t}\n");
}

static int write_nft(ch_buf *b, vals *v, int64_t now_ms)
{
    int rc = header(b, "#", v, now_ms);
    long long id = (long long)v->o->id;
    if (rc >= 0)
        rc = ch_buf_printf(b, "table inet coinhound_offense_%lld {\n", id);
    if (rc >= 0)
        rc = nft_set(b, v, "pool_v4", CH_OBS_POOL_IP, 4);
    if (rc >= 0)
        rc = nft_set(b, v, "pool_v6", CH_OBS_POOL_IP, 6);
    if (rc >= 0)
        rc = nft_set(b, v, "attacker_v4", CH_OBS_SOURCE_IP, 4);
    if (rc >= 0)
        rc = nft_set(b, v, "attacker_v6", CH_OBS_SOURCE_IP, 6);
    /* Pools are blocked leaving (forward: hosts behind this firewall; output: this host),
     * the attacker's addresses arriving. */
    if (rc >= 0)
        rc = ch_buf_adds(b, "\tchain forward {\n"
                            "\t\ttype filter hook forward priority filter; policy accept;\n"
                            "\t\tip daddr @pool_v4 counter drop\n"
                            "\t\tip6 daddr @pool_v6 counter drop\n"
                            "\t\tip saddr @attacker_v4 counter drop\n"
                            "\t\tip6 saddr @attacker_v6 counter drop\n"
                            "\t}\n"
                            "\tchain output {\n"
                            "\t\ttype filter hook output priority filter; policy accept;\n"
                            "\t\tip daddr @pool_v4 counter drop\n"
                            "\t\tip6 daddr @pool_v6 counter drop\n"
                            "\t}\n"
                            "\tchain input {\n"
                            "\t\ttype filter hook input priority filter; policy accept;\n"
                            "\t\tip saddr @attacker_v4 counter drop\n"
                            "\t\tip6 saddr @attacker_v6 counter drop\n"
                            "\t}\n"
                            "}\n");
    return rc < 0 ? rc : 0;
}

/* ---- Suricata ---------------------------------------------------------------------------------
 */

typedef struct sur {
    long long id;
    unsigned sid;
} sur;

static int sur_domain_fn(ch_buf *b, const char *t, const ch_ip *ip, size_t i, void *ud)
{
    (void)ip, (void)i;
    sur *s = ud;
    /* dotprefix + endswith: the name itself and its subdomains, never "xpool.example". */
    int rc = ch_buf_printf(b,
                           "alert dns $HOME_NET any -> any any (msg:\"coinhound offense %lld: DNS "
                           "query for mining pool %s\"; dns.query; dotprefix; content:\".%s\"; "
                           "nocase; endswith; sid:%u; rev:1;)\n",
                           s->id, t, t, s->sid++);
    if (rc >= 0)
        rc = ch_buf_printf(b,
                           "alert tls $HOME_NET any -> any any (msg:\"coinhound offense %lld: TLS "
                           "SNI of mining pool %s\"; flow:established,to_server; tls.sni; "
                           "dotprefix; content:\".%s\"; nocase; endswith; sid:%u; rev:1;)\n",
                           s->id, t, t, s->sid++);
    return rc;
}

static int sur_list_fn(ch_buf *b, const char *t, const ch_ip *ip, size_t i, void *ud)
{
    (void)ip, (void)ud;
    return ch_buf_printf(b, "%s%s", i ? "," : "", t);
}

static int write_suricata(ch_buf *b, vals *v, int64_t now_ms)
{
    /* sids in the local range (1000000-1999999), 1000 per offense id modulo the range. */
    sur s = {(long long)v->o->id, 1000000u + (unsigned)((uint64_t)v->o->id % 999u) * 1000u};
    int rc = header(b, "#", v, now_ms);
    if (rc >= 0)
        rc = each(v, CH_OBS_POOL_DOMAIN, 0, b, sur_domain_fn, &s, false);
    /* Stratum JSON-RPC, whatever the pool: the miner's subscribe/authorize (Bitcoin-style
     * Stratum) and login (Monero's XMRig, the usual cryptojacking miner). */
    if (rc >= 0)
        rc = ch_buf_printf(
            b,
            "alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:\"coinhound offense %lld: Stratum "
            "mining.subscribe\"; flow:established,to_server; content:\"\\\"method\\\"\"; "
            "content:\"\\\"mining.subscribe\\\"\"; distance:0; within:40; sid:%u; rev:1;)\n"
            "alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:\"coinhound offense %lld: Stratum "
            "mining.authorize\"; flow:established,to_server; content:\"\\\"method\\\"\"; "
            "content:\"\\\"mining.authorize\\\"\"; distance:0; within:40; sid:%u; rev:1;)\n"
            "alert tcp $HOME_NET any -> $EXTERNAL_NET any (msg:\"coinhound offense %lld: Stratum "
            "login (XMRig)\"; flow:established,to_server; content:\"\\\"method\\\"\"; "
            "content:\"\\\"login\\\"\"; distance:0; within:20; content:\"\\\"params\\\"\"; "
            "distance:0; sid:%u; rev:1;)\n",
            s.id, s.sid, s.id, s.sid + 1, s.id, s.sid + 2);
    s.sid += 3;
    for (int pass = 0; pass < 2 && rc >= 0; pass++) {
        ch_obs_kind k = pass == 0 ? CH_OBS_POOL_IP : CH_OBS_SOURCE_IP;
        ch_buf addrs;
        ch_buf_init(&addrs, 1 << 20);
        int n = each(v, k, 0, &addrs, sur_list_fn, NULL, false);
        if (n > 0 && ch_buf_addc(&addrs, '\0') >= 0)
            rc = pass == 0
                     ? ch_buf_printf(b,
                                     "alert ip $HOME_NET any -> [%s] any (msg:\"coinhound offense "
                                     "%lld: traffic to mining pool addresses\"; sid:%u; rev:1;)\n",
                                     addrs.data, s.id, s.sid++)
                     : ch_buf_printf(b,
                                     "alert ip [%s] any -> $HOME_NET any (msg:\"coinhound offense "
                                     "%lld: traffic from the attacker's addresses\"; sid:%u; "
                                     "rev:1;)\n",
                                     addrs.data, s.id, s.sid++);
        else if (n < 0)
            rc = n;
        ch_buf_free(&addrs);
    }
    return rc < 0 ? rc : 0;
}

/* ---- RPZ --------------------------------------------------------------------------------------
 */

static int rpz_domain_fn(ch_buf *b, const char *t, const ch_ip *ip, size_t i, void *ud)
{
    (void)ip, (void)i, (void)ud;
    return ch_buf_printf(b, "%s\tCNAME\t.\n*.%s\tCNAME\t.\n", t, t);
}

/* A response-IP trigger: answers that carry a pool address are rewritten too (a pool reached
 * through a domain the feed does not list yet). */
static int rpz_ip_fn(ch_buf *b, const char *t, const ch_ip *ip, size_t i, void *ud)
{
    (void)t, (void)i, (void)ud;
    if (ip->family == 4)
        return ch_buf_printf(b, "32.%u.%u.%u.%u.rpz-ip\tCNAME\t.\n", ip->b[15], ip->b[14],
                             ip->b[13], ip->b[12]);
    int rc = ch_buf_adds(b, "128");
    for (int g = 7; g >= 0 && rc >= 0; g--)
        rc = ch_buf_printf(b, ".%x", (unsigned)(ip->b[2 * g] << 8 | ip->b[2 * g + 1]));
    return rc < 0 ? rc : ch_buf_adds(b, ".rpz-ip\tCNAME\t.\n");
}

static int write_rpz(ch_buf *b, vals *v, int64_t now_ms)
{
    int rc = header(b, ";", v, now_ms);
    if (rc >= 0)
        rc = ch_buf_printf(b,
                           "$TTL 300\n"
                           "@\tIN\tSOA\tlocalhost. hostmaster.localhost. (%u 3600 600 604800 "
                           "300)\n"
                           "\tIN\tNS\tlocalhost.\n",
                           (unsigned)(now_ms / 1000));
    if (rc >= 0)
        rc = each(v, CH_OBS_POOL_DOMAIN, 0, b, rpz_domain_fn, NULL, false);
    if (rc >= 0)
        rc = each(v, CH_OBS_POOL_IP, 0, b, rpz_ip_fn, NULL, false);
    return rc < 0 ? rc : 0;
}

/* ---- the registry ------------------------------------------------------------------------------
 */

static const struct {
    const char *name;
    int (*write)(ch_buf *b, vals *v, int64_t now_ms);
} formats[] = {
    {"nft", write_nft},
    {"suricata", write_suricata},
    {"rpz", write_rpz},
    {"list", write_list},
};

const char *const *ch_resp_export_formats(void)
{
    static const char *const names[] = {"nft", "suricata", "rpz", "list", NULL};
    return names;
}

int ch_resp_export(ch_buf *b, const char *format, const ch_offense *o, int64_t now_ms,
                   ch_error *err)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(formats[i].name, format) != 0)
            continue;
        vals v = {o, 0};
        precount(&v);
        int rc = formats[i].write(b, &v, now_ms);
        return rc < 0 ? ch_error_set(err, rc, "writing the %s export (%s)", format, ch_strerror(rc))
                      : 0;
    }
    return ch_error_set(err, CH_EUSAGE, "unknown export format '%s' (nft, suricata, rpz, list)",
                        format);
}
