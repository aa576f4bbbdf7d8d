/*
 * vpcflow.c - AWS VPC Flow Logs (and Transit Gateway flow logs): space-separated text whose
 * columns a header line names.
 *
 * The header is resolved once into a layout: for each typed slot (srcaddr, dstport, start...)
 * the column that holds it, or -1. A record line is then split on spaces into views of the
 * input window and only the columns the layout points at are converted: integers are parsed
 * by hand, addresses by ch_ip_parse, nothing is allocated and nothing is copied, so the cost
 * per line is one pass to split it plus a few conversions. The header may appear again later
 * in the same file (concatenated exports) and is re-read each time it does.
 *
 * Files without a header are read by their column count against the layouts AWS documents
 * for "all fields of version N in their default order": 14 columns is the v2 default format
 * (the CloudWatch Logs form), 21/25/29 add the v3/v4/v5 fields, 39/40 the v7 ECS fields and
 * v8 reject-reason, 36 is the Transit Gateway default format. Lines exported from CloudWatch
 * Logs to S3 carry the ingestion time as a first column; it is dropped in header-less files.
 *
 * Mapping (docs/SCHEMA.md): @timestamp <- start (end when start is missing), event.end <- end,
 * source/destination <- srcaddr/dstaddr, except that when pkt-srcaddr / pkt-dstaddr are
 * present and differ (traffic through a NAT gateway or a load balancer) the packet-level
 * address is the ECS one; both stay in the raw columns. event.action keeps AWS's ACCEPT /
 * REJECT, event.outcome is success / failure from it. event.type is "connection" (ECS would
 * add "allowed" / "denied", which the action already says). Every column, "-" included, stays
 * reachable through raw_names / raw_values.
 *
 * NODATA and SKIPDATA records with no addresses are counted (records, skipped) and produce
 * no event; a record that carries addresses is a flow whatever its log-status says, so it is
 * kept (losing a flow to a mining pool would be worse than keeping an odd status).
 */
#include "parse/source.h"

#include <stdint.h>
#include <string.h>

#include "core/mem.h"

#define VF_MAX_COLS 128             /* AWS defines about 60 fields; wider lines are refused */
#define VF_MAX_LINE (1u << 20)      /* real lines are < 2 KB; the cap only bounds damage */
#define VF_NAMES_CAP 4096           /* bytes of header names kept */
#define VF_MAX_EPOCH 253402300799LL /* 9999-12-31T23:59:59Z: keeps times formattable */

/* Typed slots a layout can point at. Columns of any other name are raw only. */
enum vf_slot {
    VF_VERSION,
    VF_ACCOUNT_ID,
    VF_INTERFACE_ID,
    VF_SRCADDR,
    VF_DSTADDR,
    VF_SRCPORT,
    VF_DSTPORT,
    VF_PROTOCOL,
    VF_PACKETS,
    VF_BYTES,
    VF_START,
    VF_END,
    VF_ACTION,
    VF_LOG_STATUS,
    VF_INSTANCE_ID,
    VF_PKT_SRCADDR,
    VF_PKT_DSTADDR,
    VF_REGION,
    VF__NSLOTS,
    VF_RAW = VF__NSLOTS, /* a known AWS field kept raw */
};

/* The name tables read best packed, several to a line: clang-format is told so. */
// clang-format off
#define N(s) {s, (uint32_t)(sizeof(s) - 1)}
// clang-format on

typedef struct vf_field {
    ch_sv name;
    int slot;
} vf_field;

/* Every field AWS documents, with its slot; used to resolve headers and recognise them. */
static const vf_field known_fields[] = {
    {N("version"), VF_VERSION},
    {N("account-id"), VF_ACCOUNT_ID},
    {N("interface-id"), VF_INTERFACE_ID},
    {N("srcaddr"), VF_SRCADDR},
    {N("dstaddr"), VF_DSTADDR},
    {N("srcport"), VF_SRCPORT},
    {N("dstport"), VF_DSTPORT},
    {N("protocol"), VF_PROTOCOL},
    {N("packets"), VF_PACKETS},
    {N("bytes"), VF_BYTES},
    {N("start"), VF_START},
    {N("end"), VF_END},
    {N("action"), VF_ACTION},
    {N("log-status"), VF_LOG_STATUS},
    {N("instance-id"), VF_INSTANCE_ID},
    {N("pkt-srcaddr"), VF_PKT_SRCADDR},
    {N("pkt-dstaddr"), VF_PKT_DSTADDR},
    {N("region"), VF_REGION},
    {N("vpc-id"), VF_RAW},
    {N("subnet-id"), VF_RAW},
    {N("tcp-flags"), VF_RAW},
    {N("type"), VF_RAW},
    {N("az-id"), VF_RAW},
    {N("sublocation-type"), VF_RAW},
    {N("sublocation-id"), VF_RAW},
    {N("pkt-src-aws-service"), VF_RAW},
    {N("pkt-dst-aws-service"), VF_RAW},
    {N("flow-direction"), VF_RAW},
    {N("traffic-path"), VF_RAW},
    {N("ecs-cluster-arn"), VF_RAW},
    {N("ecs-cluster-name"), VF_RAW},
    {N("ecs-container-instance-arn"), VF_RAW},
    {N("ecs-container-instance-id"), VF_RAW},
    {N("ecs-container-id"), VF_RAW},
    {N("ecs-second-container-id"), VF_RAW},
    {N("ecs-service-name"), VF_RAW},
    {N("ecs-task-definition-arn"), VF_RAW},
    {N("ecs-task-arn"), VF_RAW},
    {N("ecs-task-id"), VF_RAW},
    {N("reject-reason"), VF_RAW},
    {N("resource-type"), VF_RAW},
    {N("tgw-id"), VF_RAW},
    {N("tgw-attachment-id"), VF_RAW},
    {N("tgw-src-vpc-account-id"), VF_RAW},
    {N("tgw-dst-vpc-account-id"), VF_RAW},
    {N("tgw-src-vpc-id"), VF_RAW},
    {N("tgw-dst-vpc-id"), VF_RAW},
    {N("tgw-src-subnet-id"), VF_RAW},
    {N("tgw-dst-subnet-id"), VF_RAW},
    {N("tgw-src-eni"), VF_RAW},
    {N("tgw-dst-eni"), VF_RAW},
    {N("tgw-src-az-id"), VF_RAW},
    {N("tgw-dst-az-id"), VF_RAW},
    {N("tgw-pair-attachment-id"), VF_RAW},
    {N("packets-lost-no-route"), VF_RAW},
    {N("packets-lost-blackhole"), VF_RAW},
    {N("packets-lost-mtu-exceeded"), VF_RAW},
    {N("packets-lost-ttl-expired"), VF_RAW},
};

// clang-format off
/* All VPC fields in the order AWS lists them by version; header-less files with 14, 21, 25,
 * 29, 39 or 40 columns are read as the first that many of these. */
static const ch_sv vpc_default_names[] = {
    /* v2 */
    N("version"), N("account-id"), N("interface-id"), N("srcaddr"), N("dstaddr"), N("srcport"),
    N("dstport"), N("protocol"), N("packets"), N("bytes"), N("start"), N("end"), N("action"),
    N("log-status"),
    /* v3 */
    N("vpc-id"), N("subnet-id"), N("instance-id"), N("tcp-flags"), N("type"), N("pkt-srcaddr"),
    N("pkt-dstaddr"),
    /* v4 */
    N("region"), N("az-id"), N("sublocation-type"), N("sublocation-id"),
    /* v5 */
    N("pkt-src-aws-service"), N("pkt-dst-aws-service"), N("flow-direction"), N("traffic-path"),
    /* v7 */
    N("ecs-cluster-arn"), N("ecs-cluster-name"), N("ecs-container-instance-arn"),
    N("ecs-container-instance-id"), N("ecs-container-id"), N("ecs-second-container-id"),
    N("ecs-service-name"), N("ecs-task-definition-arn"), N("ecs-task-arn"), N("ecs-task-id"),
    /* v8 */
    N("reject-reason"),
};
static const uint32_t vpc_default_widths[] = {14, 21, 25, 29, 39, 40};
#define VF_NPRESETS_VPC (sizeof vpc_default_widths / sizeof vpc_default_widths[0])

/* The Transit Gateway flow log default format. */
static const ch_sv tgw_default_names[] = {
    N("version"), N("resource-type"), N("account-id"), N("tgw-id"), N("tgw-attachment-id"),
    N("tgw-src-vpc-account-id"), N("tgw-dst-vpc-account-id"), N("tgw-src-vpc-id"),
    N("tgw-dst-vpc-id"), N("tgw-src-subnet-id"), N("tgw-dst-subnet-id"), N("tgw-src-eni"),
    N("tgw-dst-eni"), N("tgw-src-az-id"), N("tgw-dst-az-id"), N("tgw-pair-attachment-id"),
    N("srcaddr"), N("dstaddr"), N("srcport"), N("dstport"), N("protocol"), N("packets"),
    N("bytes"), N("start"), N("end"), N("log-status"), N("type"), N("packets-lost-no-route"),
    N("packets-lost-blackhole"), N("packets-lost-mtu-exceeded"), N("packets-lost-ttl-expired"),
    N("tcp-flags"), N("region"), N("flow-direction"), N("pkt-src-aws-service"),
    N("pkt-dst-aws-service"),
};
#define VF_TGW_WIDTH ((uint32_t)(sizeof tgw_default_names / sizeof tgw_default_names[0]))
// clang-format on

/* A resolved header: the names of the columns and, per slot, the column holding it. */
typedef struct vf_layout {
    const ch_sv *names;
    uint32_t ncols;
    int16_t col[VF__NSLOTS]; /* -1 when the format lacks the field */
} vf_layout;

struct ch_stream {
    ch_input *in;
    ch_diag *diag;
    const char *file;
    bool failed;
    bool have_header; /* a header line was seen: its layout rules until the next one */
    bool first_line;  /* strip a UTF-8 byte order mark from the first line */
    vf_layout header;
    vf_layout presets[VF_NPRESETS_VPC];
    vf_layout tgw;
    ch_sv header_names[VF_MAX_COLS];
    char names_buf[VF_NAMES_CAP];
    ch_sv vals[VF_MAX_COLS]; /* this line's columns: views into the input window */
};

static inline bool sv_dash(ch_sv v) { return v.n == 1 && v.p[0] == '-'; }

/* Header names are matched with '_' and '-' equal, so Athena-style names resolve too. */
static bool name_eq(ch_sv a, ch_sv b)
{
    if (a.n != b.n)
        return false;
    for (uint32_t i = 0; i < a.n; i++) {
        char x = a.p[i] == '_' ? '-' : a.p[i];
        if (x != b.p[i])
            return false;
    }
    return true;
}

static int field_slot(ch_sv name)
{
    for (size_t i = 0; i < sizeof known_fields / sizeof known_fields[0]; i++)
        if (name_eq(name, known_fields[i].name))
            return known_fields[i].slot;
    return -1;
}

static void layout_resolve(vf_layout *l, const ch_sv *names, uint32_t ncols)
{
    l->names = names;
    l->ncols = ncols;
    for (int s = 0; s < VF__NSLOTS; s++)
        l->col[s] = -1;
    for (uint32_t c = 0; c < ncols; c++) {
        int s = field_slot(names[c]);
        if (s >= 0 && s < VF__NSLOTS && l->col[s] < 0)
            l->col[s] = (int16_t)c;
    }
}

/* 0x80 in each byte of w that is a space, 0 elsewhere (exact: no borrow between bytes). */
static inline uint64_t space_bytes(uint64_t w)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t x = w ^ 0x2020202020202020ULL;
    return ~(((x & lo7) + lo7) | x | lo7);
}

static inline uint64_t load8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Split on runs of spaces (AWS writes one; exports and hand edits may write more). Stores at
 * most VF_MAX_COLS views and returns the count; *high tells whether any byte is not 7-bit
 * ASCII, so UTF-8 is only validated on the rare lines that need it. Eight bytes at a time: the
 * spaces of a word are found with one SWAR mask and walked with ctz, which is what makes
 * splitting cheaper than the conversions that follow it. */
static uint32_t split(const char *p, size_t n, ch_sv *out, bool *high)
{
    uint32_t k = 0;
    size_t tok = 0; /* start of the current token */
    uint64_t acc = 0;
    for (size_t base = 0; base < n; base += 8) {
        uint64_t w;
        if (n - base >= 8) {
            w = load8(p + base);
        } else {
            char tail[8];
            memset(tail, ' ', 8);
            memcpy(tail, p + base, n - base);
            w = load8(tail);
        }
        acc |= w;
        for (uint64_t m = space_bytes(w); m != 0; m &= m - 1) {
            size_t pos = base + ((size_t)__builtin_ctzll(m) >> 3);
            if (pos > tok) {
                if (k < VF_MAX_COLS)
                    out[k] = (ch_sv){p + tok, (uint32_t)(pos - tok)};
                k++;
            }
            tok = pos + 1;
        }
    }
    if (n > tok) {
        if (k < VF_MAX_COLS)
            out[k] = (ch_sv){p + tok, (uint32_t)(n - tok)};
        k++;
    }
    *high = (acc & 0x8080808080808080ULL) != 0;
    return k;
}

/* RFC 3629 UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            min = 0x10000;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        unsigned cp = c & (0xFFu >> (len + 1));
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* Decimal digits only. Up to 19 digits cannot overflow, so the common case has no check
 * inside the loop (a division per digit cost more than the rest of the record). */
static bool parse_u64(ch_sv v, uint64_t max, uint64_t *out)
{
    if (v.n == 0 || v.n > 20)
        return false;
    uint64_t x = 0;
    uint32_t fast = v.n < 19 ? v.n : 19;
    for (uint32_t i = 0; i < fast; i++) {
        unsigned d = (unsigned)(unsigned char)v.p[i] - '0';
        if (d > 9)
            return false;
        x = x * 10 + d;
    }
    if (v.n == 20) {
        unsigned d = (unsigned)(unsigned char)v.p[19] - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    if (x > max)
        return false;
    *out = x;
    return true;
}

/* A token shaped like a field name: [a-z][a-z0-9_-]*. */
static bool name_shaped(ch_sv t)
{
    if (t.n == 0 || t.p[0] < 'a' || t.p[0] > 'z')
        return false;
    for (uint32_t i = 1; i < t.n; i++) {
        char c = t.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* A header line: every column name-shaped and at least one a known AWS field. `cols` holds
 * the line split (ncols of them, possibly more than were stored). */
static bool is_header(const ch_sv *cols, uint32_t ncols)
{
    bool known = false;
    uint32_t stored = ncols < VF_MAX_COLS ? ncols : VF_MAX_COLS;
    if (ncols == 0)
        return false;
    for (uint32_t i = 0; i < stored; i++) {
        if (!name_shaped(cols[i]))
            return false;
        if (!known && field_slot(cols[i]) >= 0)
            known = true;
    }
    return known;
}

/* An ISO 8601 time as CloudWatch Logs exports put before each message. */
static bool looks_like_cw_time(ch_sv t)
{
    return t.n >= 20 && t.p[0] >= '0' && t.p[0] <= '9' && t.p[4] == '-' && t.p[10] == 'T' &&
           (t.p[t.n - 1] == 'Z' || t.p[t.n - 1] == 'z');
}

/* The layout a header-less line of ncols columns is read with, or NULL. The first column must
 * be a version number, and a TGW line must name a transit gateway in column 4. */
static const vf_layout *preset_for(const ch_stream *s, const ch_sv *v, uint32_t ncols)
{
    uint64_t ver;
    if (ncols == 0 || ncols > VF_MAX_COLS || !parse_u64(v[0], 99, &ver))
        return NULL;
    for (size_t i = 0; i < VF_NPRESETS_VPC; i++)
        if (s->presets[i].ncols == ncols)
            return &s->presets[i];
    if (ncols == VF_TGW_WIDTH && v[3].n > 4 && memcmp(v[3].p, "tgw-", 4) == 0)
        return &s->tgw;
    return NULL;
}

/* Keep a header: copy its names out of the input window (which moves on). */
static bool install_header(ch_stream *s, const ch_sv *cols, uint32_t ncols, uint64_t line_no)
{
    if (ncols > VF_MAX_COLS) {
        ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX, "bad_field_count",
                       "header names %u fields, more than the %u supported", ncols, VF_MAX_COLS);
        return false;
    }
    size_t used = 0;
    for (uint32_t i = 0; i < ncols; i++) {
        if (used + cols[i].n > VF_NAMES_CAP) {
            ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX, "bad_field_count",
                           "header names are longer than %u bytes", VF_NAMES_CAP);
            return false;
        }
        memcpy(s->names_buf + used, cols[i].p, cols[i].n);
        s->header_names[i] = (ch_sv){s->names_buf + used, cols[i].n};
        used += cols[i].n;
    }
    layout_resolve(&s->header, s->header_names, ncols);
    s->have_header = true;
    return true;
}

/* network.transport by IANA protocol number, as ECS spells them; others keep the number. */
static const char *const transport_names[256] = {
    [0] = "hopopt",     [1] = "icmp",   [2] = "igmp",   [4] = "ipv4", [6] = "tcp",
    [17] = "udp",       [41] = "ipv6",  [47] = "gre",   [50] = "esp", [51] = "ah",
    [58] = "ipv6-icmp", [112] = "vrrp", [132] = "sctp",
};

static inline ch_sv col_val(const ch_stream *s, const vf_layout *l, int slot)
{
    int c = l->col[slot];
    return c >= 0 ? s->vals[c] : (ch_sv){"-", 1};
}

/* Parse an optional address column: absent ("-") is fine, garbage is a bad_address. */
static bool addr_col(ch_stream *s, const vf_layout *l, int slot, ch_ip *out, uint64_t line_no)
{
    ch_sv v = col_val(s, l, slot);
    if (sv_dash(v))
        return true;
    if (ch_ip_parse(v.p, v.n, out))
        return true;
    ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX, "bad_address",
                   "%.*s '%.*s' is not an IP address", (int)l->names[l->col[slot]].n,
                   l->names[l->col[slot]].p, (int)(v.n > 64 ? 64 : v.n), v.p);
    return false;
}

/* Parse an optional number column into *out; returns false (reported) when out of range. */
static bool num_col(ch_stream *s, const vf_layout *l, int slot, uint64_t max, uint64_t *out,
                    bool *present, uint64_t line_no)
{
    ch_sv v = col_val(s, l, slot);
    *present = false;
    if (sv_dash(v))
        return true;
    if (parse_u64(v, max, out)) {
        *present = true;
        return true;
    }
    ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX, "bad_number",
                   "%.*s '%.*s' is not a number in 0..%llu", (int)l->names[l->col[slot]].n,
                   l->names[l->col[slot]].p, (int)(v.n > 64 ? 64 : v.n), v.p,
                   (unsigned long long)max);
    return false;
}

/* Fill ev from the split line. Returns 1 with an event, 0 when the record is skipped by design
 * (NODATA/SKIPDATA), -1 when it was bad (already reported). */
static int fill_event(ch_stream *s, const vf_layout *l, ch_event *ev, uint64_t line_no)
{
    ch_ip src = {0}, dst = {0}, psrc = {0}, pdst = {0};
    uint64_t sport = 0, dport = 0, proto = 0, packets = 0, bytes = 0, start = 0, end = 0;
    bool has_sport, has_dport, has_proto, has_packets, has_bytes, has_start, has_end;

    if (!addr_col(s, l, VF_SRCADDR, &src, line_no) || !addr_col(s, l, VF_DSTADDR, &dst, line_no))
        return -1;

    ch_sv status = col_val(s, l, VF_LOG_STATUS);
    if (src.family == 0 && dst.family == 0 &&
        (ch_sv_eq(status, "NODATA", 6) || ch_sv_eq(status, "SKIPDATA", 8)))
        return 0;

    if (!addr_col(s, l, VF_PKT_SRCADDR, &psrc, line_no) ||
        !addr_col(s, l, VF_PKT_DSTADDR, &pdst, line_no) ||
        !num_col(s, l, VF_SRCPORT, 65535, &sport, &has_sport, line_no) ||
        !num_col(s, l, VF_DSTPORT, 65535, &dport, &has_dport, line_no) ||
        !num_col(s, l, VF_PROTOCOL, 255, &proto, &has_proto, line_no) ||
        !num_col(s, l, VF_PACKETS, UINT64_MAX, &packets, &has_packets, line_no) ||
        !num_col(s, l, VF_BYTES, UINT64_MAX, &bytes, &has_bytes, line_no) ||
        !num_col(s, l, VF_START, VF_MAX_EPOCH, &start, &has_start, line_no) ||
        !num_col(s, l, VF_END, VF_MAX_EPOCH, &end, &has_end, line_no))
        return -1;
    if (!has_start && !has_end) {
        ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX, "bad_timestamp",
                       "record has neither start nor end");
        return -1;
    }

    ch_event_reset(ev);
    ev->dataset = CH_DS_VPCFLOW;
    ev->category = CH_SV("network");
    ev->type = CH_SV("connection");
    ev->ts_ms = (int64_t)(has_start ? start : end) * 1000;
    if (has_end) {
        ev->end_ms = (int64_t)end * 1000;
        ev->flags |= CH_F_END;
    }

    /* ECS source/destination are where the packets really came from and went to. */
    ev->src_ip = psrc.family != 0 ? psrc : src;
    ev->dst_ip = pdst.family != 0 ? pdst : dst;
    if (has_sport) {
        ev->src_port = (uint16_t)sport;
        ev->flags |= CH_F_SRC_PORT;
    }
    if (has_dport) {
        ev->dst_port = (uint16_t)dport;
        ev->flags |= CH_F_DST_PORT;
    }
    if (has_proto) {
        const char *t = transport_names[proto];
        ev->iana_proto = (uint8_t)proto;
        if (t != NULL)
            ev->transport = (ch_sv){t, (uint32_t)strlen(t)};
        else
            ev->transport = col_val(s, l, VF_PROTOCOL); /* the number itself, as ECS does */
    }
    if (has_packets) {
        ev->packets = packets;
        ev->flags |= CH_F_PACKETS;
    }
    if (has_bytes) {
        ev->bytes = bytes;
        ev->flags |= CH_F_BYTES;
    }

    ch_sv v = col_val(s, l, VF_ACTION);
    if (!sv_dash(v)) {
        ev->action = v;
        if (ch_sv_eq(v, "ACCEPT", 6))
            ev->outcome = CH_OUTCOME_SUCCESS;
        else if (ch_sv_eq(v, "REJECT", 6))
            ev->outcome = CH_OUTCOME_FAILURE;
        else
            ev->outcome = CH_OUTCOME_UNKNOWN;
    }
    if (!sv_dash(v = col_val(s, l, VF_ACCOUNT_ID)))
        ev->account_id = v;
    if (!sv_dash(v = col_val(s, l, VF_REGION)))
        ev->region = v;
    if (!sv_dash(v = col_val(s, l, VF_INSTANCE_ID)))
        ev->instance_id = v;
    if (!sv_dash(v = col_val(s, l, VF_INTERFACE_ID)))
        ev->interface_id = v;

    ev->raw_names = l->names;
    ev->raw_values = s->vals;
    ev->raw_count = l->ncols;
    return 1;
}

static int report_input_failure(ch_stream *s, int rc, const ch_error *err, uint64_t line_no)
{
    const char *reason = rc == CH_EPARSE ? "gzip_error" : "read_error";
    ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, ch_input_offset(s->in), reason, "%s",
                   err->msg[0] ? err->msg : ch_strerror(rc));
    s->failed = true;
    return rc;
}

static int next_(ch_stream *s, ch_event *ev)
{
    ch_ds_stats *st = &s->diag->by_ds[CH_DS_VPCFLOW];
    if (s->failed)
        return 0;
    for (;;) {
        const char *line;
        size_t len;
        uint64_t line_no = 0;
        ch_error err;
        ch_error_clear(&err);
        int rc = ch_input_line(s->in, VF_MAX_LINE, &line, &len, &line_no, &err);
        if (rc == 0)
            return 0;
        if (rc == CH_ELIMIT) {
            st->records++;
            ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX, "line_too_long",
                           "line longer than %u bytes skipped", VF_MAX_LINE);
            continue;
        }
        if (rc < 0)
            return report_input_failure(s, rc, &err, line_no);

        if (s->first_line) {
            s->first_line = false;
            if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
                line += 3;
                len -= 3;
            }
        }
        bool high;
        uint32_t ncols = split(line, len, s->vals, &high);
        if (ncols == 0)
            continue; /* blank lines are not records */
        if (high && !utf8_valid((const unsigned char *)line, len)) {
            st->records++;
            ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX, "invalid_utf8",
                           "line is not valid UTF-8");
            continue;
        }
        if (is_header(s->vals, ncols)) {
            if (!install_header(s, s->vals, ncols, line_no))
                st->records++; /* a refused header is a bad record, so the counts add up */
            continue;
        }
        st->records++;

        const vf_layout *l;
        if (s->have_header) {
            l = &s->header;
        } else {
            l = preset_for(s, s->vals, ncols);
            if (l == NULL && ncols > 1 && looks_like_cw_time(s->vals[0]) &&
                (l = preset_for(s, s->vals + 1, ncols - 1)) != NULL) {
                memmove(s->vals, s->vals + 1, (ncols - 1) * sizeof s->vals[0]);
                ncols--;
            }
        }
        if (l == NULL || ncols != l->ncols) {
            if (l != NULL)
                ch_diag_report(s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX,
                               "bad_field_count", "expected %u fields, found %u", l->ncols, ncols);
            else
                ch_diag_report(
                    s->diag, CH_DS_VPCFLOW, s->file, line_no, UINT64_MAX, "bad_field_count",
                    "%u fields and no header line: not a default flow log format", ncols);
            continue;
        }
        int r = fill_event(s, l, ev, line_no);
        if (r == 0) {
            st->skipped++;
            continue;
        }
        if (r < 0)
            continue;
        st->events++;
        return 1;
    }
}

static ch_stream *open_(ch_input *in, ch_diag *diag, ch_error *err)
{
    ch_stream *s = ch_calloc(1, sizeof *s);
    if (s == NULL) {
        ch_error_set(err, CH_ENOMEM, "out of memory opening a flow log stream");
        return NULL;
    }
    s->in = in;
    s->diag = diag;
    s->file = ch_input_name(in);
    s->first_line = true;
    for (size_t i = 0; i < VF_NPRESETS_VPC; i++)
        layout_resolve(&s->presets[i], vpc_default_names, vpc_default_widths[i]);
    layout_resolve(&s->tgw, tgw_default_names, VF_TGW_WIDTH);
    return s;
}

static void close_(ch_stream *s) { ch_free(s); }

/* Confidence that the first line of head is a flow log: a header naming the core fields, or a
 * record of one of the default formats. */
static int detect(const char *head, size_t n)
{
    ch_sv cols[VF_MAX_COLS];
    if (n >= 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0) {
        head += 3;
        n -= 3;
    }
    const char *nl = memchr(head, '\n', n);
    size_t len = nl ? (size_t)(nl - head) : n;
    if (len > 0 && head[len - 1] == '\r')
        len--;
    bool high;
    uint32_t ncols = split(head, len, cols, &high);
    if (ncols == 0 || ncols > VF_MAX_COLS)
        return 0;
    if (is_header(cols, ncols)) {
        int core = 0;
        for (uint32_t i = 0; i < ncols; i++) {
            int sl = field_slot(cols[i]);
            core += sl == VF_SRCADDR || sl == VF_DSTADDR || sl == VF_ACTION || sl == VF_LOG_STATUS;
        }
        return core >= 2 ? 95 : core == 1 ? 60 : 30;
    }
    uint32_t off = ncols > 1 && looks_like_cw_time(cols[0]) ? 1 : 0;
    const ch_sv *v = cols + off;
    uint32_t nv = ncols - off;
    uint64_t ver;
    if (!parse_u64(v[0], 99, &ver))
        return 0;
    if (nv == VF_TGW_WIDTH && v[3].n > 4 && memcmp(v[3].p, "tgw-", 4) == 0)
        return 85;
    for (size_t i = 0; i < VF_NPRESETS_VPC; i++) {
        if (nv != vpc_default_widths[i])
            continue;
        /* interface-id is "eni-..." or "-"; log-status is one of three words. */
        ch_sv eni = v[2], status = v[13];
        bool eni_ok = sv_dash(eni) || (eni.n > 4 && memcmp(eni.p, "eni-", 4) == 0);
        bool st_ok = ch_sv_eq(status, "OK", 2) || ch_sv_eq(status, "NODATA", 6) ||
                     ch_sv_eq(status, "SKIPDATA", 8);
        return eni_ok && st_ok ? 90 : eni_ok || st_ok ? 50 : 0;
    }
    return 0;
}

const ch_source_type ch_source_vpcflow = {
    "vpcflow", CH_DS_VPCFLOW, detect, open_, next_, close_,
};
