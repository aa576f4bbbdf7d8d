/*
 * evcols.c - segment format 4's typed frame: a block's typed parts stored column by column.
 *
 * Format 3 compressed each block's typed parts as rows ([u32 length][typed part]...): zstd then
 * met every field of a record between two values of the same field, and spent 67 B per event
 * (docs/BENCHMARKS.md section 27) on 406 raw bytes, most of them strings that repeat from record
 * to record (the action, the user, the agent, the region, the source address). Format 4 cuts
 * every typed part into its items (ch__ev_typed_split: the same CH_EV_TYPED_ITEMS items for
 * every event) and stores, per item, one column for the block:
 *
 *     u8 1 (the layout), varint length of the rows, varint records
 *     per item, in item order:
 *       record id, time, end time: per record the zigzag varint of the difference to the
 *         previous record's value (times of a block lie close together)
 *       every other item: per record one byte, 0 = the next value of the item's table, k = the
 *         table's value k-1 again (a block holds at most 256 records, so 256 distinct values);
 *         then varint count and the table: varint length and the item's bytes, per distinct
 *         value in order of first use
 *
 * So a field that takes a handful of values in a block costs about a byte per record before
 * zstd and almost nothing after it, and the distinct values of a field lie side by side, where
 * zstd finds what they share (address prefixes, ARNs). The reader rebuilds the exact rows the
 * writer had (ch__evcols_decode): every reader above segment.c, the search, verify, the
 * summaries, sees the bytes of format 3. Rebuilding is a copy per item per record, written
 * column by column into row lengths checked first: about as much CPU as zstd spends on the
 * same block (docs/BENCHMARKS.md section 30), which a reader decoding events straight from
 * the columns would save. Everything read is bounded by what the header
 * and the tables promise, so damaged columns are CH_EPARSE, never an overrun.
 */
#include <string.h>

#include "core/hash.h"
#include "core/leb.h"
#include "core/mem.h"
#include "store/store_int.h"

#define LAYOUT 1
#define MAX_ROWS ((size_t)256 << 20)
#define HSLOTS 512 /* open addressing over at most 256 distinct values */

static bool is_delta(int item) { return item >= 1 && item <= 3; }

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8); /* one store */
#else
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
#endif
}

/* Equal items: most are a few bytes (codes, flags, absent strings), for which a call to memcmp
 * cost more than the comparison. */
static inline bool same(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    if (n > 8)
        return memcmp(a, b, n) == 0;
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* Per record, the offsets of its items in rows (off[i][k]), from the record's own offsets rel
 * (ch__ev_encode_typed_at) or, rel NULL, by parsing each row. */
static int item_offsets(const uint8_t *rows, size_t n, uint32_t cnt,
                        const uint32_t (*rel)[CH_EV_TYPED_ITEMS + 1],
                        uint32_t (*off)[CH_EV_TYPED_ITEMS + 1])
{
    size_t o = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        if (n - o < 4 || ch_le_get32(rows + o) > n - o - 4)
            return CH_EPARSE;
        uint32_t len = ch_le_get32(rows + o);
        if (rel == NULL) {
            if (ch__ev_typed_split(rows + o + 4, len, off[i]) < 0)
                return CH_EPARSE;
        } else {
            /* trusted less than checked: the columns below read rows at these offsets */
            uint32_t prev = 0;
            for (int k = 0; k <= CH_EV_TYPED_ITEMS; k++) {
                if (rel[i][k] < prev || rel[i][k] > len)
                    return CH_EPARSE;
                prev = off[i][k] = rel[i][k];
            }
            if (rel[i][0] != 0 || prev != len)
                return CH_EPARSE;
        }
        for (int k = 0; k <= CH_EV_TYPED_ITEMS; k++)
            off[i][k] += (uint32_t)(o + 4);
        o += 4 + len;
    }
    return o == n ? 0 : CH_EPARSE;
}

static int encode_cols(const uint8_t *rows, size_t n, uint32_t cnt,
                       const uint32_t (*rel)[CH_EV_TYPED_ITEMS + 1], ch_buf *out)
{
    if (cnt == 0 || cnt > CH_SEG_BLOCK_RECORDS)
        return CH_EPARSE;
    /* per record, the offsets of its items in rows */
    uint32_t(*off)[CH_EV_TYPED_ITEMS + 1] = ch_malloc(cnt * sizeof *off);
    if (off == NULL)
        return CH_ENOMEM;
    int rc = item_offsets(rows, n, cnt, rel, off);
    uint8_t hdr = LAYOUT;
    if (rc == 0)
        rc = ch_buf_add(out, &hdr, 1) | ch_leb_put(out, n) | ch_leb_put(out, cnt);
    uint16_t slot[HSLOTS];
    uint32_t first[CH_SEG_BLOCK_RECORDS]; /* the record that introduced table value j */
    for (int c = 0; c < CH_EV_TYPED_ITEMS && rc == 0; c++) {
        if (is_delta(c)) {
            uint64_t prev = 0;
            /* at most 10 bytes a varint: written in place, without a check per record */
            if ((rc = ch_buf_reserve(out, (size_t)cnt * 10)) < 0)
                break;
            uint8_t *w = (uint8_t *)out->data + out->len;
            for (uint32_t i = 0; i < cnt; i++) {
                if (off[i][c + 1] - off[i][c] != 8) {
                    rc = CH_EPARSE;
                    break;
                }
                uint64_t v = get_le64(rows + off[i][c]);
                uint64_t d = v - prev; /* zigzag: small differences either way, small varints */
                uint64_t z = (d << 1) ^ (0 - (d >> 63));
                w = ch_leb_write(w, z);
                prev = v;
            }
            out->len = (size_t)(w - (uint8_t *)out->data);
            out->data[out->len] = '\0';
            continue;
        }
        memset(slot, 0, sizeof slot);
        uint32_t nd = 0, last = 0;
        if ((rc = ch_buf_reserve(out, cnt)) < 0)
            break;
        uint8_t *ids = (uint8_t *)out->data + out->len;
        for (uint32_t i = 0; i < cnt; i++) {
            const uint8_t *p = rows + off[i][c];
            uint32_t len = off[i][c + 1] - off[i][c];
            /* most items repeat the previous record's value: no hash for those */
            if (i > 0) {
                const uint8_t *q = rows + off[first[last]][c];
                if (off[first[last]][c + 1] - off[first[last]][c] == len && same(p, q, len)) {
                    ids[i] = (uint8_t)(last + 1);
                    continue;
                }
            }
            size_t h = (size_t)ch_hash_words(CH_HASH_SEED, p, len) & (HSLOTS - 1);
            for (;;) {
                if (slot[h] == 0) {
                    slot[h] = (uint16_t)(nd + 1);
                    first[nd] = i;
                    last = nd++;
                    ids[i] = 0;
                    break;
                }
                uint32_t j = slot[h] - 1u, f = first[j];
                if (off[f][c + 1] - off[f][c] == len && same(rows + off[f][c], p, len)) {
                    ids[i] = (uint8_t)(j + 1);
                    last = j;
                    break;
                }
                h = (h + 1) & (HSLOTS - 1);
            }
        }
        out->len += cnt;
        rc = ch_leb_put(out, nd);
        for (uint32_t j = 0; j < nd && rc == 0; j++) {
            uint32_t f = first[j], len = off[f][c + 1] - off[f][c];
            rc = ch_leb_put(out, len) | ch_buf_add(out, rows + off[f][c], len);
        }
    }
    ch_free(off);
    return rc < 0 ? (rc == CH_EPARSE ? CH_EPARSE : CH_ENOMEM) : 0;
}

int ch__evcols_encode(const uint8_t *rows, size_t n, uint32_t cnt, ch_buf *out)
{
    return encode_cols(rows, n, cnt, NULL, out);
}

int ch__evcols_encode_at(const uint8_t *rows, size_t n, uint32_t cnt,
                         const uint32_t (*off)[CH_EV_TYPED_ITEMS + 1], ch_buf *out)
{
    return encode_cols(rows, n, cnt, off, out);
}

/* Where a column's parts lie, found by one pass over the block's columns. */
struct ch_evcols_scratch {
    const uint8_t *ids[CH_EV_TYPED_ITEMS]; /* table items: cnt bytes */
    uint64_t dv[4][CH_SEG_BLOCK_RECORDS];  /* delta items 1-3: the values, summed once */
    uint8_t sel[CH_EV_TYPED_ITEMS][CH_SEG_BLOCK_RECORDS]; /* each record's table value */
    uint64_t rowlen[CH_SEG_BLOCK_RECORDS], pos[CH_SEG_BLOCK_RECORDS];
    uint32_t nd[CH_EV_TYPED_ITEMS];
    const uint8_t *val[CH_EV_TYPED_ITEMS][CH_SEG_BLOCK_RECORDS];
    uint32_t len[CH_EV_TYPED_ITEMS][CH_SEG_BLOCK_RECORDS];
};

void ch__evcols_scratch_free(ch_evcols_scratch *s) { ch_free(s); }

int ch__evcols_decode(const uint8_t *c, size_t n, uint32_t cnt, uint8_t **rows, size_t *cap,
                      size_t *rows_len, ch_evcols_scratch **scratch)
{
    const uint8_t *p = c, *end = c + n;
    uint64_t rl, nr;
    if (n < 1 || *p++ != LAYOUT || !ch_leb_get(&p, end, &rl) || !ch_leb_get(&p, end, &nr))
        return CH_EPARSE;
    if (nr != cnt || cnt == 0 || cnt > CH_SEG_BLOCK_RECORDS || rl > MAX_ROWS ||
        rl < (uint64_t)cnt * 4)
        return CH_EPARSE;
    if (*scratch == NULL && (*scratch = ch_malloc(sizeof **scratch)) == NULL)
        return CH_ENOMEM;
    ch_evcols_scratch *s = *scratch;
    for (int k = 0; k < CH_EV_TYPED_ITEMS; k++) {
        s->ids[k] = p;
        if (is_delta(k)) {
            uint64_t z, prev = 0;
            for (uint32_t i = 0; i < cnt; i++) {
                if (!ch_leb_get(&p, end, &z))
                    return CH_EPARSE;
                prev += (z >> 1) ^ (0 - (z & 1));
                s->dv[k][i] = prev;
            }
            continue;
        }
        uint64_t nd;
        if ((size_t)(end - p) < cnt)
            return CH_EPARSE;
        p += cnt;
        if (!ch_leb_get(&p, end, &nd) || nd > cnt || nd == 0)
            return CH_EPARSE;
        s->nd[k] = (uint32_t)nd;
        for (uint32_t j = 0; j < nd; j++) {
            uint64_t l;
            if (!ch_leb_get(&p, end, &l) || l > (uint64_t)(end - p))
                return CH_EPARSE;
            s->val[k][j] = p;
            s->len[k][j] = (uint32_t)l;
            p += l;
        }
    }
    if (p != end)
        return CH_EPARSE;
    /* Which table value each record takes, checked, and each row's length: the rows are then
     * written column by column (one item for every record, then the next), each value at its
     * row's running offset, all within lengths known to add up to the promised total. */
    uint64_t total = 0;
    for (uint32_t i = 0; i < cnt; i++)
        s->rowlen[i] = 3 * 8;
    for (int k = 0; k < CH_EV_TYPED_ITEMS; k++) {
        if (is_delta(k))
            continue;
        uint32_t next = 0, nd = s->nd[k];
        const uint8_t *ids = s->ids[k];
        const uint32_t *len = s->len[k];
        uint8_t *sel = s->sel[k];
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t b = ids[i], j;
            if (b == 0) {
                if (next >= nd)
                    return CH_EPARSE;
                j = next++;
            } else {
                j = b - 1;
                if (j >= next)
                    return CH_EPARSE; /* a value used before the record that introduces it */
            }
            sel[i] = (uint8_t)j;
            s->rowlen[i] += len[j];
        }
        if (next != nd)
            return CH_EPARSE;
    }
    for (uint32_t i = 0; i < cnt; i++)
        total += 4 + s->rowlen[i];
    if (total != rl)
        return CH_EPARSE;
    if (*cap < rl) {
        uint8_t *nb = ch_realloc(*rows, rl ? (size_t)rl : 1);
        if (nb == NULL)
            return CH_ENOMEM;
        *rows = nb;
        *cap = (size_t)rl;
    }
    uint8_t *out = *rows;
    size_t o = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        ch_le_put32(out + o, (uint32_t)s->rowlen[i]);
        s->pos[i] = o + 4;
        o += 4 + s->rowlen[i];
    }
    for (int k = 0; k < CH_EV_TYPED_ITEMS; k++) {
        if (is_delta(k)) {
            for (uint32_t i = 0; i < cnt; i++) {
                put_le64(out + s->pos[i], s->dv[k][i]);
                s->pos[i] += 8;
            }
            continue;
        }
        const uint8_t *sel = s->sel[k];
        const uint32_t *len = s->len[k];
        const uint8_t *const *val = s->val[k];
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t j = sel[i], l = len[j];
            const uint8_t *v = val[j];
            uint8_t *d = out + s->pos[i];
            /* most items are a few bytes (flags, one-byte codes, absent strings): a call to
             * memcpy per item was a fifth of a typed scan's rebuild */
            if (l == 1)
                *d = *v;
            else if (l <= 8)
                for (uint32_t b2 = 0; b2 < l; b2++)
                    d[b2] = v[b2];
            else
                memcpy(d, v, l);
            s->pos[i] += l;
        }
    }
    *rows_len = o;
    return 0;
}

/* How many of p[0..n) are 0, eight bytes at a time: a byte's high bit is set in t unless the
 * byte is 0 (adding 0x7f carries into the high bit of any other value; no carry crosses into the
 * next byte because each is masked to seven bits first). No popcount: without -mpopcnt it is a
 * library call that cost more than the bytes counted one by one. */
static uint32_t zero_bytes(const uint8_t *p, uint32_t n)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full, hi = 0x8080808080808080ull;
    uint32_t z = 0, r = 0;
    for (; r + 8 <= n; r += 8) {
        uint64_t v, t;
        memcpy(&v, p + r, 8); /* byte order does not matter to a count */
        t = ((v & lo7) + lo7) | v;
        /* one bit per zero byte, at its bit 0; the multiply sums the eight into the top byte */
        z += (uint32_t)((((~t & hi) >> 7) * 0x0101010101010101ull) >> 56);
    }
    for (; r < n; r++)
        z += p[r] == 0;
    return z;
}

int ch__evcols_row(const uint8_t *c, size_t n, uint32_t cnt, uint32_t i, uint8_t **row, size_t *cap,
                   size_t *row_len)
{
    const uint8_t *p = c, *end = c + n;
    uint64_t rl, nr;
    if (n < 1 || *p++ != LAYOUT || !ch_leb_get(&p, end, &rl) || !ch_leb_get(&p, end, &nr))
        return CH_EPARSE;
    if (nr != cnt || cnt == 0 || cnt > CH_SEG_BLOCK_RECORDS || i >= cnt || rl > MAX_ROWS ||
        rl < (uint64_t)cnt * 4)
        return CH_EPARSE;
    /* The row is never longer than the columns' bytes and its three 8-byte items. */
    if (*cap < n + 3 * 8) {
        uint8_t *nb = ch_realloc(*row, n + 3 * 8);
        if (nb == NULL)
            return CH_ENOMEM;
        *row = nb;
        *cap = n + 3 * 8;
    }
    uint8_t *out = *row;
    size_t o = 0;
    for (int k = 0; k < CH_EV_TYPED_ITEMS; k++) {
        if (is_delta(k)) {
            /* the sum of the differences up to record i, then the later ones only skipped
             * (a varint ends at a byte below 0x80) */
            uint64_t z, v = 0;
            for (uint32_t r = 0; r <= i; r++) {
                if (p < end && *p < 0x80)
                    z = *p++;
                else if (!ch_leb_get(&p, end, &z))
                    return CH_EPARSE;
                v += (z >> 1) ^ (0 - (z & 1));
            }
            for (uint32_t left = cnt - 1 - i; left > 0; p++) {
                if (p >= end)
                    return CH_EPARSE;
                left -= *p < 0x80;
            }
            put_le64(out + o, v);
            o += 8;
            continue;
        }
        if ((size_t)(end - p) < cnt)
            return CH_EPARSE;
        const uint8_t *ids = p;
        p += cnt;
        /* Record i takes the next new value (the count of new values before it) or an earlier
         * one; every new value is in the table (checked as ch__evcols_decode does). */
        uint32_t before = zero_bytes(ids, i), zeros = before + zero_bytes(ids + i, cnt - i);
        uint32_t j = ids[i] == 0 ? before : ids[i] - 1u;
        uint64_t nd;
        if (!ch_leb_get(&p, end, &nd) || nd != zeros || (ids[i] != 0 && j >= before))
            return CH_EPARSE;
        for (uint32_t t = 0; t < nd; t++) {
            uint64_t l;
            if (p < end && *p < 0x80)
                l = *p++;
            else if (!ch_leb_get(&p, end, &l))
                return CH_EPARSE;
            if (l > (uint64_t)(end - p))
                return CH_EPARSE;
            if (t == j) {
                memcpy(out + o, p, (size_t)l);
                o += (size_t)l;
            }
            p += l;
        }
    }
    if (p != end)
        return CH_EPARSE;
    *row_len = o;
    return 0;
}
