/*
 * mmdb_write.c - a MaxMind DB writer for small country databases (see mmdb_write.h).
 *
 * Build: the added networks are sorted by prefix length (then address), so that a network is
 * always inserted after every less specific one. Insertion walks the binary trie from the root
 * one address bit per level; where it meets a leaf (a less specific network already there), it
 * splits it into a node whose two records both carry that leaf's data, and goes on; the last
 * bit's record gets the new network's data. So the more specific network wins where networks
 * overlap, with no second pass. Sorting also puts a network given twice next to its twin,
 * which is how duplicates are found: O(n log n) overall, and at most 128 nodes per network.
 *
 * Layout: trie nodes are numbered in creation order, the root first (node 0), which is the
 * numbering the file uses. A record is kept as one 32-bit word: 0 empty, 2*i a node (the root is
 * never a child, so 0 is free), 2*d+1 data record d. Each distinct (country, name) pair is one
 * data record, encoded once in the data section and shared by every network that maps to it.
 * The file is then: the tree (node_count nodes of two records each), 16 zero bytes, the data
 * section, "\xAB\xCD\xEFMaxMind.com" and the metadata map. A record's value in the file is
 * the node number, node_count for "no data", or node_count + 16 + the data's offset in the data
 * section, as the specification says.
 *
 * Everything is built in memory (a capped ch_buf) and written with one fwrite: fixture
 * databases are a few kilobytes.
 */
#include "enrich/mmdb_write.h"
#include "enrich/mmdb_write_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/ip.h"
#include "core/mem.h"
#include "core/readfile.h"

/* The whole file: tree, data and metadata. 2M nodes of 8 bytes at most, plus data. */
#define OUT_MAX (64u << 20)

/* Data types of the MaxMind DB data section (spec, "Output Data Section"). */
enum { T_UTF8 = 2, T_UINT16 = 5, T_UINT32 = 6, T_MAP = 7, T_UINT64 = 9, T_ARRAY = 11 };

typedef struct entry {
    uint8_t addr[16]; /* in the tree's IPv6 space: IPv4 at ::a.b.c.d */
    uint8_t prefix;   /* 0..128 bits of that space */
    uint32_t data;    /* index into the writer's data records */
    uint32_t line;    /* CSV line, or the entry's 1-based position for ch_mmdb_writer_add */
} entry;

typedef struct datarec {
    char iso[3];
    char *name; /* NULL when not given; owned */
} datarec;

struct ch_mmdb_writer {
    char *db_type;
    entry *ents;
    size_t n, cap;
    datarec *data;
    size_t ndata, datacap;
    uint32_t line;        /* set by the CSV reader before each add; 0 outside it */
    bool from_csv;        /* entries' `line` numbers are CSV lines */
    unsigned record_size; /* 0: the smallest that fits */
};

static const char *const default_type = "coinhound-test-country";

int ch_mmdb_writer_new(ch_mmdb_writer **out, const char *database_type, ch_error *err)
{
    if (out == NULL)
        return ch_error_set(err, CH_EUSAGE, "mmdb writer: no output handle");
    *out = NULL;
    const char *type = database_type ? database_type : default_type;
    if (strlen(type) > CH_MMDB_MAX_NAME)
        return ch_error_set(err, CH_EUSAGE, "mmdb writer: database type longer than %u bytes",
                            CH_MMDB_MAX_NAME);
    ch_mmdb_writer *w = ch_calloc(1, sizeof *w);
    if (w == NULL) {
        ch_error_set(err, CH_ENOMEM, "mmdb writer: out of memory");
        return CH_ENOMEM;
    }
    w->db_type = ch_strdup(type);
    if (w->db_type == NULL) {
        ch_free(w);
        ch_error_set(err, CH_ENOMEM, "mmdb writer: out of memory");
        return CH_ENOMEM;
    }
    *out = w;
    return CH_OK;
}

void ch_mmdb_writer_free(ch_mmdb_writer *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->ndata; i++)
        ch_free(w->data[i].name);
    ch_free(w->data);
    ch_free(w->ents);
    ch_free(w->db_type);
    ch_free(w);
}

int ch_mmdb_writer_set_record_size(ch_mmdb_writer *w, unsigned bits, ch_error *err)
{
    if (w == NULL || (bits != 0 && bits != 24 && bits != 28 && bits != 32))
        return ch_error_set(err, CH_EUSAGE, "mmdb writer: record size must be 24, 28 or 32");
    w->record_size = bits;
    return CH_OK;
}

/* "a.b.c.d/len", "x::/len" or a bare address, into the tree's address space. */
static int parse_network(const char *s, uint8_t addr[16], uint8_t *prefix, ch_error *err)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    ch_ip ip;
    if (!ch_ip_parse(s, alen, &ip))
        return ch_error_set(err, CH_EPARSE, "'%s' is not an IPv4 or IPv6 network", s);
    unsigned max = ip.family == 4 ? 32 : 128;
    unsigned len = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (*p < '0' || *p > '9' || strlen(p) > 3)
            return ch_error_set(err, CH_EPARSE, "'%s': bad prefix length", s);
        char *end = NULL;
        unsigned long v = strtoul(p, &end, 10);
        if (*end != '\0' || v > max)
            return ch_error_set(err, CH_EPARSE, "'%s': prefix length must be 0..%u", s, max);
        len = (unsigned)v;
    }
    memset(addr, 0, 16);
    if (ip.family == 4) {
        memcpy(addr + 12, ip.b + 12, 4);
        len += 96;
    } else {
        memcpy(addr, ip.b, 16);
    }
    /* Host bits set: most likely a typo for another network, so refuse rather than guess. */
    for (unsigned bit = len; bit < 128; bit++)
        if (addr[bit / 8] & (0x80u >> (bit % 8)))
            return ch_error_set(err, CH_EPARSE, "'%s': bits set past the prefix length", s);
    *prefix = (uint8_t)len;
    return CH_OK;
}

static bool valid_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* The index of the data record for (iso, name), added when new. Linear in the distinct
 * records: a country database has a few hundred at most. */
static int find_data(ch_mmdb_writer *w, const char iso[3], const char *name, uint32_t *idx,
                     ch_error *err)
{
    for (size_t i = 0; i < w->ndata; i++) {
        const datarec *d = &w->data[i];
        if (strcmp(d->iso, iso) == 0 &&
            ((d->name == NULL && name == NULL) ||
             (d->name != NULL && name != NULL && strcmp(d->name, name) == 0))) {
            *idx = (uint32_t)i;
            return CH_OK;
        }
    }
    if (w->ndata == w->datacap) {
        datarec *d = ch_grow(w->data, &w->datacap, 16, sizeof *d);
        if (d == NULL)
            return ch_error_set(err, CH_ENOMEM, "mmdb writer: out of memory");
        w->data = d;
    }
    datarec *d = &w->data[w->ndata];
    memcpy(d->iso, iso, 3);
    d->name = NULL;
    if (name != NULL && (d->name = ch_strdup(name)) == NULL)
        return ch_error_set(err, CH_ENOMEM, "mmdb writer: out of memory");
    *idx = (uint32_t)w->ndata++;
    return CH_OK;
}

int ch_mmdb_writer_add(ch_mmdb_writer *w, const char *network, const char *country,
                       const char *name, ch_error *err)
{
    if (w == NULL || network == NULL || country == NULL)
        return ch_error_set(err, CH_EUSAGE, "mmdb writer: missing network or country");
    if (w->n >= CH_MMDB_MAX_ENTRIES)
        return ch_error_set(err, CH_ELIMIT, "more than %u networks", CH_MMDB_MAX_ENTRIES);
    entry e;
    memset(&e, 0, sizeof e);
    int rc = parse_network(network, e.addr, &e.prefix, err);
    if (rc < 0)
        return rc;
    char iso[3];
    bool alpha2 = strlen(country) == 2;
    for (int i = 0; alpha2 && i < 2; i++) {
        char c = country[i];
        alpha2 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        iso[i] = (char)(c & ~0x20); /* ASCII upper case */
    }
    if (!alpha2)
        return ch_error_set(err, CH_EPARSE, "'%s' is not a two-letter country code", country);
    iso[2] = '\0';
    if (name != NULL && name[0] == '\0')
        name = NULL;
    if (name != NULL) {
        size_t n = strlen(name);
        if (n > CH_MMDB_MAX_NAME)
            return ch_error_set(err, CH_ELIMIT, "country name longer than %u bytes",
                                CH_MMDB_MAX_NAME);
        if (!valid_name(name, n))
            return ch_error_set(err, CH_EPARSE, "control character in the name '%s'", name);
    }
    if (w->n == w->cap) {
        entry *ents = ch_grow(w->ents, &w->cap, 64, sizeof *ents);
        if (ents == NULL)
            return ch_error_set(err, CH_ENOMEM, "mmdb writer: out of memory");
        w->ents = ents;
    }
    if ((rc = find_data(w, iso, name, &e.data, err)) < 0)
        return rc;
    e.line = w->line ? w->line : (uint32_t)w->n + 1;
    w->ents[w->n++] = e;
    return CH_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    int c = memcmp(x->addr, y->addr, 16);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* ---- the search tree ---- */

typedef struct tree {
    uint32_t (*rec)[2]; /* rec[node][bit] as described at the top */
    size_t n, cap;
} tree;

#define REC_EMPTY 0u
#define REC_NODE(i) ((uint32_t)(i) << 1)
#define REC_DATA(d) (((uint32_t)(d) << 1) | 1u)

static int new_node(tree *t, uint32_t left, uint32_t right, uint32_t *idx)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        uint32_t(*r)[2] = ch_realloc(t->rec, cap * sizeof *r);
        if (r == NULL)
            return CH_ENOMEM;
        t->rec = r;
        t->cap = cap;
    }
    t->rec[t->n][0] = left;
    t->rec[t->n][1] = right;
    *idx = (uint32_t)t->n++;
    return CH_OK;
}

static int insert(tree *t, const entry *e)
{
    uint32_t node = 0;
    if (e->prefix == 0) { /* ::/0: both halves of the root */
        t->rec[0][0] = t->rec[0][1] = REC_DATA(e->data);
        return CH_OK;
    }
    for (unsigned depth = 0; depth + 1 < e->prefix; depth++) {
        unsigned bit = (e->addr[depth / 8] >> (7 - depth % 8)) & 1u;
        uint32_t r = t->rec[node][bit];
        if (r != REC_EMPTY && (r & 1u) == 0) {
            node = r >> 1;
            continue;
        }
        /* Empty, or a less specific network's leaf: split it so that both halves keep it. */
        uint32_t child;
        if (new_node(t, r, r, &child) < 0)
            return CH_ENOMEM;
        t->rec[node][bit] = REC_NODE(child);
        node = child;
    }
    unsigned last = e->prefix - 1u;
    t->rec[node][(e->addr[last / 8] >> (7 - last % 8)) & 1u] = REC_DATA(e->data);
    return CH_OK;
}

/* ---- the data section ---- */

/* A control byte for type and size, with the extended-type byte and the size bytes the
 * specification asks for past the 5 bits that fit. */
static int put_ctrl(ch_buf *b, unsigned type, size_t size)
{
    uint8_t out[5];
    size_t n = 0;
    uint8_t first = (uint8_t)((type <= 7 ? type : 0) << 5);
    size_t extra = 0, rest = 0;
    if (size < 29) {
        first |= (uint8_t)size;
    } else if (size < 29 + 256) {
        first |= 29;
        extra = 1;
        rest = size - 29;
    } else if (size < 285 + 65536) {
        first |= 30;
        extra = 2;
        rest = size - 285;
    } else {
        first |= 31;
        extra = 3;
        rest = size - 65821;
    }
    out[n++] = first;
    if (type > 7)
        out[n++] = (uint8_t)(type - 7);
    while (extra-- > 0)
        out[n++] = (uint8_t)(rest >> (8 * extra));
    return ch_buf_add(b, out, n);
}

static int put_str(ch_buf *b, const char *s)
{
    size_t n = strlen(s);
    int rc = put_ctrl(b, T_UTF8, n);
    return rc < 0 ? rc : ch_buf_add(b, s, n);
}

/* Unsigned integers take as few big-endian bytes as their value needs (0 takes none). */
static int put_uint(ch_buf *b, unsigned type, uint64_t v)
{
    uint8_t bytes[8];
    size_t n = 0;
    for (uint64_t x = v; x != 0; x >>= 8)
        n++;
    for (size_t i = 0; i < n; i++)
        bytes[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    int rc = put_ctrl(b, type, n);
    return rc < 0 ? rc : ch_buf_add(b, bytes, n);
}

/* {country: {iso_code: ISO, names: {en: NAME}}}, names only when there is one. */
static int put_record(ch_buf *b, const datarec *d)
{
    int rc = 0;
    rc |= put_ctrl(b, T_MAP, 1);
    rc |= put_str(b, "country");
    rc |= put_ctrl(b, T_MAP, d->name ? 2 : 1);
    rc |= put_str(b, "iso_code");
    rc |= put_str(b, d->iso);
    if (d->name != NULL) {
        rc |= put_str(b, "names");
        rc |= put_ctrl(b, T_MAP, 1);
        rc |= put_str(b, "en");
        rc |= put_str(b, d->name);
    }
    return rc < 0 ? CH_ELIMIT : CH_OK;
}

static int put_metadata(ch_buf *b, const ch_mmdb_writer *w, uint32_t node_count,
                        unsigned record_size)
{
    bool names = false;
    for (size_t i = 0; i < w->ndata; i++)
        names |= w->data[i].name != NULL;
    int rc = ch_buf_add(b, "\xAB\xCD\xEFMaxMind.com", 14);
    rc |= put_ctrl(b, T_MAP, 9);
    rc |= put_str(b, "binary_format_major_version");
    rc |= put_uint(b, T_UINT16, 2);
    rc |= put_str(b, "binary_format_minor_version");
    rc |= put_uint(b, T_UINT16, 0);
    rc |= put_str(b, "build_epoch");
    /* A fixed time keeps the output deterministic; 1, not 0, which libmaxminddb takes for a
     * missing build_epoch and refuses. */
    rc |= put_uint(b, T_UINT64, 1);
    rc |= put_str(b, "database_type");
    rc |= put_str(b, w->db_type);
    rc |= put_str(b, "description");
    rc |= put_ctrl(b, T_MAP, 1);
    rc |= put_str(b, "en");
    rc |= put_str(b, "coinhound test database (ch_mmdb_write)");
    rc |= put_str(b, "ip_version");
    rc |= put_uint(b, T_UINT16, 6);
    rc |= put_str(b, "languages");
    rc |= put_ctrl(b, T_ARRAY, names ? 1 : 0);
    if (names)
        rc |= put_str(b, "en");
    rc |= put_str(b, "node_count");
    rc |= put_uint(b, T_UINT32, node_count);
    rc |= put_str(b, "record_size");
    rc |= put_uint(b, T_UINT16, record_size);
    return rc < 0 ? CH_ELIMIT : CH_OK;
}

/* One node: two records of record_size bits, big-endian; with 28 bits the middle byte holds
 * the left record's top nibble, then the right record's. */
size_t ch__mmdb_node_bytes(unsigned record_size, uint32_t l, uint32_t r, uint8_t o[8])
{
    switch (record_size) {
    case 24:
        o[0] = (uint8_t)(l >> 16), o[1] = (uint8_t)(l >> 8), o[2] = (uint8_t)l;
        o[3] = (uint8_t)(r >> 16), o[4] = (uint8_t)(r >> 8), o[5] = (uint8_t)r;
        return 6;
    case 28:
        o[0] = (uint8_t)(l >> 16), o[1] = (uint8_t)(l >> 8), o[2] = (uint8_t)l;
        o[3] = (uint8_t)(((l >> 20) & 0xF0u) | ((r >> 24) & 0x0Fu));
        o[4] = (uint8_t)(r >> 16), o[5] = (uint8_t)(r >> 8), o[6] = (uint8_t)r;
        return 7;
    default:
        for (int i = 0; i < 4; i++) {
            o[i] = (uint8_t)(l >> (24 - 8 * i));
            o[4 + i] = (uint8_t)(r >> (24 - 8 * i));
        }
        return 8;
    }
}

/* e's network as text into buf (at least 50 bytes): IPv4 for the ::/96 subtree. */
static void format_network(const entry *e, char *buf)
{
    static const uint8_t zero[12] = {0};
    ch_ip ip;
    memset(&ip, 0, sizeof ip);
    unsigned prefix = e->prefix;
    if (prefix >= 96 && memcmp(e->addr, zero, 12) == 0) {
        ip.family = 4;
        ip.b[10] = ip.b[11] = 0xff; /* ch_ip keeps IPv4 as ::ffff:a.b.c.d */
        memcpy(ip.b + 12, e->addr + 12, 4);
        prefix -= 96;
    } else {
        ip.family = 6;
        memcpy(ip.b, e->addr, 16);
    }
    size_t n = ch_ip_format(&ip, buf);
    snprintf(buf + n, 5, "/%u", prefix);
}

/* The whole file into out. */
static int build(ch_mmdb_writer *w, ch_buf *out, ch_error *err)
{
    tree t = {0};
    ch_buf data;
    uint32_t *offset = NULL;
    uint32_t root;
    int rc;

    ch_buf_init(&data, OUT_MAX);
    qsort(w->ents, w->n, sizeof *w->ents, cmp_entry);
    for (size_t i = 1; i < w->n; i++)
        if (w->ents[i].prefix == w->ents[i - 1].prefix &&
            memcmp(w->ents[i].addr, w->ents[i - 1].addr, 16) == 0) {
            char net[64];
            format_network(&w->ents[i], net);
            rc = ch_error_set(err, CH_EPARSE, "network %s given twice (%s %u and %u)", net,
                              w->from_csv ? "lines" : "entries", w->ents[i - 1].line,
                              w->ents[i].line);
            goto cleanup;
        }
    if (new_node(&t, REC_EMPTY, REC_EMPTY, &root) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "mmdb writer: out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < w->n; i++)
        if (insert(&t, &w->ents[i]) < 0) {
            rc = ch_error_set(err, CH_ENOMEM, "mmdb writer: out of memory");
            goto cleanup;
        }

    offset = ch_calloc(w->ndata ? w->ndata : 1, sizeof *offset);
    if (offset == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "mmdb writer: out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < w->ndata; i++) {
        offset[i] = (uint32_t)data.len;
        if (put_record(&data, &w->data[i]) < 0) {
            rc = ch_error_set(err, CH_ELIMIT, "mmdb writer: data section too large");
            goto cleanup;
        }
    }

    uint32_t node_count = (uint32_t)t.n;
    uint64_t largest = (uint64_t)node_count + 16 + data.len;
    unsigned record_size = largest < (1u << 24) ? 24 : largest < (1u << 28) ? 28 : 32;
    if (w->record_size != 0) {
        if (w->record_size < record_size) {
            rc = ch_error_set(err, CH_ELIMIT, "mmdb writer: %u-bit records cannot hold %llu",
                              w->record_size, (unsigned long long)largest);
            goto cleanup;
        }
        record_size = w->record_size;
    }
    for (size_t i = 0; i < t.n; i++) {
        uint32_t v[2];
        for (int k = 0; k < 2; k++) {
            uint32_t r = t.rec[i][k];
            v[k] = r == REC_EMPTY ? node_count
                   : (r & 1u)     ? node_count + 16 + offset[r >> 1]
                                  : r >> 1;
        }
        uint8_t node[8];
        if (ch_buf_add(out, node, ch__mmdb_node_bytes(record_size, v[0], v[1], node)) < 0) {
            rc = ch_error_set(err, CH_ELIMIT, "mmdb writer: search tree too large");
            goto cleanup;
        }
    }
    static const uint8_t separator[16] = {0};
    if (ch_buf_add(out, separator, sizeof separator) < 0 ||
        (data.len > 0 && ch_buf_add(out, data.data, data.len) < 0) ||
        put_metadata(out, w, node_count, record_size) < 0) {
        rc = ch_error_set(err, CH_ELIMIT, "mmdb writer: database too large");
        goto cleanup;
    }
    rc = CH_OK;
cleanup:
    ch_free(offset);
    ch_free(t.rec);
    ch_buf_free(&data);
    return rc;
}

int ch_mmdb_writer_write(ch_mmdb_writer *w, const char *path, ch_error *err)
{
    if (w == NULL || path == NULL || path[0] == '\0')
        return ch_error_set(err, CH_EUSAGE, "mmdb writer: no writer or no path");
    ch_buf out;
    ch_buf_init(&out, OUT_MAX);
    FILE *f = NULL;
    int rc = build(w, &out, err);
    if (rc < 0)
        goto cleanup;
    f = fopen(path, "wb");
    if (f == NULL) {
        rc = ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    size_t put = fwrite(out.data, 1, out.len, f);
    int saved = errno;
    int closed = fclose(f);
    f = NULL;
    if (put != out.len || closed != 0) {
        rc = ch_error_set(err, CH_EIO, "%s: write failed: %s", path,
                          strerror(put != out.len ? saved : errno));
        goto cleanup;
    }
    rc = CH_OK;
cleanup:
    ch_buf_free(&out);
    return rc;
}

/* ---- the CSV fixture ---- */

/* Split line (NUL-terminated, modified in place) at commas into at most max fields with the
 * spaces around each trimmed; returns the number of fields, max + 1 when there are more. */
static size_t split(char *line, char **field, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        char *end = p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (n == max)
            return max + 1;
        field[n++] = p;
        if (comma == NULL)
            return n;
        p = comma + 1;
    }
}

static int read_csv(ch_mmdb_writer *w, const char *path, char *text, size_t len, ch_error *err)
{
    bool header = false, has_name = false;
    uint32_t lineno = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        lineno++;
        if ((size_t)(eol - p) > CH_MMDB_MAX_LINE)
            return ch_error_set(err, CH_ELIMIT, "%s:%u: line longer than %u bytes", path, lineno,
                                CH_MMDB_MAX_LINE);
        *eol = '\0';
        if (strlen(p) != (size_t)(eol - p))
            return ch_error_set(err, CH_EPARSE, "%s:%u: NUL byte in the line", path, lineno);
        if (eol > p && eol[-1] == '\r')
            eol[-1] = '\0';
        char *line = p;
        p = nl ? nl + 1 : end;
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '\0' || *line == '#')
            continue;
        char *f[3];
        size_t nf = split(line, f, 3);
        if (!header) {
            if ((nf != 2 && nf != 3) || strcmp(f[0], "network") != 0 ||
                strcmp(f[1], "country") != 0 || (nf == 3 && strcmp(f[2], "name") != 0))
                return ch_error_set(err, CH_EPARSE,
                                    "%s:%u: expected the header network,country or "
                                    "network,country,name",
                                    path, lineno);
            header = true;
            has_name = nf == 3;
            continue;
        }
        if (nf < 2 || nf > (has_name ? 3u : 2u))
            return ch_error_set(err, CH_EPARSE, "%s:%u: expected %s", path, lineno,
                                has_name ? "network,country[,name]" : "network,country");
        w->line = lineno;
        ch_error e = {0};
        int rc = ch_mmdb_writer_add(w, f[0], f[1], nf == 3 ? f[2] : NULL, &e);
        w->line = 0;
        if (rc < 0)
            return ch_error_set(err, rc, "%s:%u: %s", path, lineno, e.msg);
    }
    if (!header || w->n == 0)
        return ch_error_set(err, CH_EPARSE, "%s: no networks", path);
    return CH_OK;
}

int ch_mmdb_write_csv(const char *csv_path, const char *out_path, ch_error *err)
{
    ch_mmdb_writer *w = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;
    if (csv_path == NULL || out_path == NULL)
        return ch_error_set(err, CH_EUSAGE, "mmdb writer: no CSV or output path");
    rc = ch_read_file(csv_path, CH_MMDB_MAX_CSV, &text, &len, err);
    if (rc == CH_ELIMIT)
        rc = ch_error_set(err, CH_ELIMIT, "%s: larger than %u bytes", csv_path, CH_MMDB_MAX_CSV);
    if (rc < 0)
        goto cleanup;
    if ((rc = ch_mmdb_writer_new(&w, NULL, err)) < 0)
        goto cleanup;
    w->from_csv = true;
    if ((rc = read_csv(w, csv_path, text, len, err)) < 0)
        goto cleanup;
    ch_error e = {0};
    rc = ch_mmdb_writer_write(w, out_path, &e);
    if (rc == CH_EPARSE) /* duplicates: the lines are numbers of csv_path */
        rc = ch_error_set(err, rc, "%s: %s", csv_path, e.msg);
    else if (rc < 0)
        rc = ch_error_set(err, rc, "%s", e.msg);
cleanup:
    ch_mmdb_writer_free(w);
    ch_free(text);
    return rc;
}
