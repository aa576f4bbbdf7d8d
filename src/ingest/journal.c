/*
 * journal.c - segmented write-ahead journal with group commit (see journal.h for the contract
 * and docs/SERVE.md for the byte layout).
 *
 * The writer state is one mutex: append takes it, writes its entries with pwritev at the
 * segment's end and, under the batch policy, becomes or waits for the "leader" that runs
 * fdatasync outside the lock on behalf of everyone written so far. `synced` is the durable end
 * and, under batch, also the readable end; a reader never sees an entry whose writer could
 * still be told "failed". Rotation waits for a running fdatasync (it must not close the fd
 * under the leader) and syncs the closed segment itself, so positions in older segments are
 * always durable. Costs: an append is O(entry bytes) for the CRC plus one pwritev; opening is
 * one directory listing plus a CRC pass over the newest segment only (<= segment_bytes).
 *
 * Segment removal (release) only unlinks whole files, so positions stay valid.
 */
#include "ingest/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "ingest/crc32c.h"

#define SEG_MAGIC "CHJOURNL"
#define MAX_SEGMENTS 1000000 /* ids listed at open; 64 MiB segments make this 64 TB */

/* ---- little-endian helpers ----------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- positions ------------------------------------------------------------------------------ */

int ch_journal_pos_cmp(ch_journal_pos a, ch_journal_pos b)
{
    if (a.seg != b.seg)
        return a.seg < b.seg ? -1 : 1;
    if (a.off != b.off)
        return a.off < b.off ? -1 : 1;
    return 0;
}

void ch_journal_pos_format(ch_journal_pos p, char buf[CH_JOURNAL_POS_MAX])
{
    snprintf(buf, CH_JOURNAL_POS_MAX, "%016" PRIx64 ":%" PRIu64 ":%" PRIu64, p.id, p.seg, p.off);
}

int ch_journal_pos_parse(const char *s, ch_journal_pos *p, ch_error *err)
{
    char *e1 = NULL, *e2 = NULL, *e3 = NULL;
    memset(p, 0, sizeof *p);
    if (s == NULL || *s == '\0')
        return 0; /* no position: the beginning */
    errno = 0;
    p->id = strtoull(s, &e1, 16);
    if (*e1 == ':')
        p->seg = strtoull(e1 + 1, &e2, 10);
    if (e2 != NULL && *e2 == ':')
        p->off = strtoull(e2 + 1, &e3, 10);
    if (errno != 0 || e3 == NULL || *e3 != '\0' || e1 == s)
        return ch_error_set(err, CH_EPARSE, "bad journal position '%.64s'", s);
    return 0;
}

/* ---- segment files -------------------------------------------------------------------------- */

static void seg_path(char *buf, size_t cap, const char *dir, uint64_t seg)
{
    snprintf(buf, cap, "%s/%016" PRIx64 ".jnl", dir, seg);
}

static bool seg_name(const char *name, uint64_t *seg)
{
    if (strlen(name) != 20 || strcmp(name + 16, ".jnl") != 0 ||
        strspn(name, "0123456789abcdef") < 16)
        return false;
    *seg = strtoull(name, NULL, 16);
    return *seg > 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The segment numbers in dir, ascending. */
static int list_segments(const char *dir, uint64_t **out, size_t *n, ch_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return ch_error_set(err, CH_EIO, "journal %s: %s", dir, strerror(errno));
    size_t cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t s;
        if (!seg_name(de->d_name, &s))
            continue;
        if (*n >= MAX_SEGMENTS) {
            rc = ch_error_set(err, CH_ELIMIT, "journal %s: more than %d segments", dir,
                              MAX_SEGMENTS);
            break;
        }
        if (*n == cap) {
            uint64_t *v = ch_grow(*out, &cap, 16, sizeof *v);
            if (v == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                break;
            }
            *out = v;
        }
        (*out)[(*n)++] = s;
    }
    closedir(d);
    if (rc < 0) {
        ch_free(*out);
        *out = NULL;
        *n = 0;
        return rc;
    }
    if (*n > 1)
        qsort(*out, *n, sizeof **out, cmp_u64);
    return 0;
}

static void seg_header(unsigned char h[CH_JOURNAL_SEG_HEADER], uint64_t id, uint64_t seg)
{
    memset(h, 0, CH_JOURNAL_SEG_HEADER);
    memcpy(h, SEG_MAGIC, 8);
    put32(h + 8, CH_JOURNAL_VERSION);
    put64(h + 16, id);
    put64(h + 24, seg);
}

/* Check a segment header; fills *id. */
static int seg_header_check(const unsigned char *h, uint64_t seg, uint64_t *id, const char *path,
                            ch_error *err)
{
    if (memcmp(h, SEG_MAGIC, 8) != 0)
        return ch_error_set(err, CH_EPARSE, "%s: not a coinhound journal segment", path);
    if (get32(h + 8) != CH_JOURNAL_VERSION)
        return ch_error_set(err, CH_EPARSE, "%s: journal format version %u (this build reads %d)",
                            path, get32(h + 8), CH_JOURNAL_VERSION);
    if (get64(h + 24) != seg)
        return ch_error_set(err, CH_EPARSE, "%s: segment header names segment %" PRIu64, path,
                            get64(h + 24));
    *id = get64(h + 16);
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Write all of buf at off (retrying short writes). */
static int pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* ---- entry decoding (shared by the reader and the tail scan) -------------------------------- */

typedef struct ehdr {
    uint32_t crc, len;
    uint64_t seq;
    int64_t time_ms;
    uint16_t tlen, olen;
} ehdr;

static void ehdr_put(unsigned char h[CH_JOURNAL_ENTRY_HEADER], const ehdr *e)
{
    memset(h, 0, CH_JOURNAL_ENTRY_HEADER);
    put32(h, e->crc);
    put32(h + 4, e->len);
    put64(h + 8, e->seq);
    put64(h + 16, (uint64_t)e->time_ms);
    h[24] = (unsigned char)(e->tlen & 0xff);
    h[25] = (unsigned char)(e->tlen >> 8);
    h[26] = (unsigned char)(e->olen & 0xff);
    h[27] = (unsigned char)(e->olen >> 8);
}

/* Decode and sanity-check an entry header; the CRC is checked once the body is read. */
static const char *ehdr_get(const unsigned char *h, uint64_t max_entry, ehdr *e)
{
    e->crc = get32(h);
    e->len = get32(h + 4);
    e->seq = get64(h + 8);
    e->time_ms = (int64_t)get64(h + 16);
    e->tlen = (uint16_t)(h[24] | (h[25] << 8));
    e->olen = (uint16_t)(h[26] | (h[27] << 8));
    if (get32(h + 28) != 0)
        return "reserved bytes are not zero";
    if (e->crc == 0 && e->len == 0 && e->seq == 0)
        return "zeroed entry header (torn write)";
    if (e->len > max_entry)
        return "payload length past the entry cap";
    if (e->tlen > CH_JOURNAL_MAX_TYPE || e->olen > CH_JOURNAL_MAX_ORIGIN)
        return "type or origin length past its cap";
    return NULL;
}

/* ---- reader --------------------------------------------------------------------------------- */

struct ch_journal_reader {
    char *dir;
    uint64_t id; /* 0 until the first segment header is read */
    ch_journal_pos pos;
    uint64_t max_entry;
    int fd;
    uint64_t fd_seg;
    unsigned char *buf; /* type NUL origin NUL payload */
    size_t cap;
};

int ch_journal_reader_open(const char *dir, ch_journal_pos from, uint64_t max_entry,
                           ch_journal_reader **out, ch_error *err)
{
    *out = NULL;
    ch_journal_reader *r = ch_calloc(1, sizeof *r);
    if (r == NULL || (r->dir = ch_strdup(dir)) == NULL) {
        ch_free(r);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    r->fd = -1;
    r->id = from.id;
    r->pos = from;
    r->max_entry = max_entry ? max_entry : CH_JOURNAL_DEFAULT_MAX_ENTRY;
    *out = r;
    return 0;
}

void ch_journal_reader_close(ch_journal_reader *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    ch_free(r->buf);
    ch_free(r->dir);
    ch_free(r);
}

ch_journal_pos ch_journal_reader_pos(const ch_journal_reader *r) { return r->pos; }

/* Make r->fd the segment r->pos.seg, or the first one after it when it is gone (removed behind
 * a checkpoint, or a position at the very start). 0 = none yet. */
static int reader_seek_segment(ch_journal_reader *r, ch_error *err)
{
    char path[4096];
    if (r->fd >= 0 && r->fd_seg == r->pos.seg)
        return 1;
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    uint64_t *segs = NULL;
    size_t n = 0;
    int rc = list_segments(r->dir, &segs, &n, err);
    if (rc < 0)
        return rc;
    uint64_t want = 0;
    for (size_t i = 0; i < n; i++)
        if (segs[i] >= r->pos.seg) {
            want = segs[i];
            break;
        }
    ch_free(segs);
    if (want == 0)
        return 0;
    seg_path(path, sizeof path, r->dir, want);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
    unsigned char h[CH_JOURNAL_SEG_HEADER];
    ssize_t got = pread(r->fd, h, sizeof h, 0);
    if (got != (ssize_t)sizeof h) {
        /* A segment being created: its header comes with its first entry. */
        close(r->fd);
        r->fd = -1;
        return 0;
    }
    uint64_t id = 0;
    rc = seg_header_check(h, want, &id, path, err);
    if (rc == 0 && r->id != 0 && id != r->id)
        rc = ch_error_set(err, CH_EPARSE,
                          "%s belongs to journal %016" PRIx64
                          ", the position to journal %016" PRIx64,
                          path, id, r->id);
    if (rc < 0) {
        close(r->fd);
        r->fd = -1;
        return rc;
    }
    r->id = id;
    r->fd_seg = want;
    if (want != r->pos.seg || r->pos.off < CH_JOURNAL_SEG_HEADER) {
        r->pos.seg = want;
        r->pos.off = CH_JOURNAL_SEG_HEADER;
    }
    r->pos.id = id;
    return 1;
}

static int reader_bad(ch_journal_reader *r, const char *why, ch_error *err)
{
    return ch_error_set(err, CH_EPARSE, "journal %s: segment %016" PRIx64 " offset %" PRIu64 ": %s",
                        r->dir, r->pos.seg, r->pos.off, why);
}

int ch_journal_reader_next(ch_journal_reader *r, ch_journal_pos limit, ch_journal_entry *e,
                           ch_error *err)
{
    for (;;) {
        bool limited = limit.seg != 0;
        if (limited && ch_journal_pos_cmp(r->pos, limit) >= 0)
            return 0;
        int rc = reader_seek_segment(r, err);
        if (rc <= 0)
            return rc;
        unsigned char h[CH_JOURNAL_ENTRY_HEADER];
        ssize_t got = pread(r->fd, h, sizeof h, (off_t)r->pos.off);
        if (got < 0)
            return ch_error_set(err, CH_EIO, "journal %s: %s", r->dir, strerror(errno));
        bool at_limit_seg = limited && limit.seg == r->pos.seg;
        if (got == 0 && !at_limit_seg && (!limited || limit.seg > r->pos.seg)) {
            /* The end of a closed segment: go on with the next one, if there is one. */
            ch_journal_pos save = r->pos;
            r->pos.seg++;
            r->pos.off = 0;
            rc = reader_seek_segment(r, err);
            if (rc <= 0) {
                r->pos = save;
                if (r->fd >= 0) {
                    close(r->fd);
                    r->fd = -1;
                }
                return rc;
            }
            continue;
        }
        if (got == 0)
            return 0;
        if (got < (ssize_t)sizeof h)
            return limited ? reader_bad(r, "truncated entry header", err) : 0;
        ehdr eh;
        const char *why = ehdr_get(h, r->max_entry, &eh);
        if (why != NULL)
            return reader_bad(r, why, err);
        size_t body = (size_t)eh.tlen + eh.olen + eh.len;
        if (body + 2 > r->cap) {
            size_t nc = body + 2 + 4096;
            unsigned char *nb = ch_realloc(r->buf, nc);
            if (nb == NULL)
                return ch_error_set(err, CH_ENOMEM, "out of memory");
            r->buf = nb;
            r->cap = nc;
        }
        /* Read type and origin where they go, then the payload after two NULs' room. */
        unsigned char *t = r->buf, *o = r->buf + eh.tlen + 1, *d = o + eh.olen + 1;
        size_t want[3] = {eh.tlen, eh.olen, eh.len};
        unsigned char *dst[3] = {t, o, d};
        uint64_t off = r->pos.off + CH_JOURNAL_ENTRY_HEADER;
        for (int i = 0; i < 3; i++) {
            size_t left = want[i];
            unsigned char *p = dst[i];
            while (left > 0) {
                ssize_t g = pread(r->fd, p, left, (off_t)off);
                if (g < 0 && errno == EINTR)
                    continue;
                if (g < 0)
                    return ch_error_set(err, CH_EIO, "journal %s: %s", r->dir, strerror(errno));
                if (g == 0)
                    return reader_bad(r, "truncated entry", err);
                p += g;
                off += (uint64_t)g;
                left -= (size_t)g;
            }
        }
        /* CRC-32C of type, origin and payload, then of the header after the CRC field (so the
         * writer can checksum the body before it knows the sequence number). */
        uint32_t c = ch_crc32c(0, t, eh.tlen);
        c = ch_crc32c(c, o, eh.olen);
        c = ch_crc32c(c, d, eh.len);
        c = ch_crc32c(c, h + 4, CH_JOURNAL_ENTRY_HEADER - 4);
        if (c != eh.crc)
            return reader_bad(r, "checksum mismatch", err);
        if (memchr(t, '\0', eh.tlen) != NULL || memchr(o, '\0', eh.olen) != NULL)
            return reader_bad(r, "NUL byte in type or origin", err);
        t[eh.tlen] = '\0';
        o[eh.olen] = '\0';
        e->pos = r->pos;
        e->seq = eh.seq;
        e->time_ms = eh.time_ms;
        e->type = (const char *)t;
        e->origin = (const char *)o;
        e->data = d;
        e->len = eh.len;
        r->pos.off = off;
        e->next = r->pos;
        return 1;
    }
}

uint64_t ch_journal_reader_skip_segment(ch_journal_reader *r)
{
    struct stat st;
    uint64_t skipped = 0;
    if (r->fd >= 0 && fstat(r->fd, &st) == 0 && (uint64_t)st.st_size > r->pos.off)
        skipped = (uint64_t)st.st_size - r->pos.off;
    r->pos.seg++;
    r->pos.off = 0;
    return skipped;
}

/* ---- writer --------------------------------------------------------------------------------- */

struct ch_journal {
    char *dir;
    ch_journal_opts o;
    uint64_t id;
    pthread_mutex_t mu;
    pthread_cond_t synced_cv; /* fdatasync finished (group commit) */
    pthread_cond_t data_cv;   /* the readable end moved (readers) */
    int fd;
    uint64_t seg, first_seg, wend; /* current segment, oldest kept, its write end */
    ch_journal_pos synced;         /* durable end */
    ch_journal_pos visible;        /* readable end */
    uint64_t sync_fail_gen;        /* bumped when an fdatasync fails */
    bool syncing, broken, stop;
    uint64_t next_seq;
    uint64_t bytes;
    uint64_t nsegs;
    ch_journal_stats st;
    pthread_t flusher;
    bool has_flusher;
};

static int open_segment(ch_journal *j, uint64_t seg, ch_error *err)
{
    char path[4096];
    seg_path(path, sizeof path, j->dir, seg);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
    unsigned char h[CH_JOURNAL_SEG_HEADER];
    seg_header(h, j->id, seg);
    if (pwrite_all(fd, h, sizeof h, 0) < 0 || fdatasync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(e));
    }
    fsync_dir(j->dir);
    j->fd = fd;
    j->seg = seg;
    j->wend = CH_JOURNAL_SEG_HEADER;
    j->bytes += CH_JOURNAL_SEG_HEADER;
    j->nsegs++;
    return 0;
}

static void *flusher_main(void *arg)
{
    ch_journal *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)j->o.interval_ms * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&j->synced_cv, &j->mu, &ts);
        if (j->stop || j->broken || j->syncing || j->fd < 0)
            continue;
        ch_journal_pos target = {j->id, j->seg, j->wend};
        if (ch_journal_pos_cmp(target, j->synced) <= 0)
            continue;
        j->syncing = true;
        int fd = j->fd;
        pthread_mutex_unlock(&j->mu);
        int rc = fdatasync(fd);
        pthread_mutex_lock(&j->mu);
        j->syncing = false;
        j->st.fsyncs++;
        if (rc == 0)
            j->synced = target;
        else
            j->broken = true; /* already acknowledged: nothing to take back, stop accepting */
        pthread_cond_broadcast(&j->synced_cv);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Scan the newest segment from its start; cut a damaged tail off. */
static int recover_tail(ch_journal *j, ch_journal_recovery *rec, ch_error *err)
{
    ch_journal_reader *r = NULL;
    ch_journal_pos from = {j->id, j->seg, CH_JOURNAL_SEG_HEADER};
    int rc = ch_journal_reader_open(j->dir, from, j->o.max_entry, &r, err);
    if (rc < 0)
        return rc;
    ch_journal_entry e;
    ch_journal_pos lim = {j->id, j->seg, UINT64_MAX};
    ch_error rerr = {0};
    while ((rc = ch_journal_reader_next(r, lim, &e, &rerr)) == 1)
        if (e.seq >= j->next_seq)
            j->next_seq = e.seq + 1;
    ch_journal_pos at = ch_journal_reader_pos(r);
    ch_journal_reader_close(r);
    struct stat st;
    if (fstat(j->fd, &st) < 0)
        return ch_error_set(err, CH_EIO, "journal %s: %s", j->dir, strerror(errno));
    if (rc == CH_EIO || rc == CH_ENOMEM)
        return ch_error_set(err, rc, "%s", rerr.msg);
    if (rc == CH_EPARSE || (uint64_t)st.st_size > at.off) {
        /* reader_next stops quietly at a short tail when unlimited; either way the bytes from
         * `at` on are not a whole, valid entry. */
        if (rec != NULL) {
            rec->damaged = true;
            rec->at = at;
            rec->cut_bytes = (uint64_t)st.st_size - at.off;
            snprintf(rec->reason, sizeof rec->reason, "%s",
                     rc == CH_EPARSE ? rerr.msg : "truncated entry");
        }
        if (ftruncate(j->fd, (off_t)at.off) < 0 || fdatasync(j->fd) < 0)
            return ch_error_set(err, CH_EIO, "journal %s: cutting the damaged tail: %s", j->dir,
                                strerror(errno));
        j->bytes -= (uint64_t)st.st_size - at.off;
    }
    j->wend = at.off;
    return 0;
}

static int journal_load(ch_journal *j, ch_journal_recovery *rec, ch_error *err)
{
    uint64_t *segs = NULL;
    size_t n = 0;
    char path[4096];
    int rc = list_segments(j->dir, &segs, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        seg_path(path, sizeof path, j->dir, segs[i]);
        if (stat(path, &st) == 0) {
            j->bytes += (uint64_t)st.st_size;
            j->nsegs++;
        }
    }
    if (n == 0) {
        if (getrandom(&j->id, sizeof j->id, 0) != (ssize_t)sizeof j->id || j->id == 0)
            j->id = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15u;
        j->first_seg = 1;
        ch_free(segs);
        return open_segment(j, 1, err);
    }
    uint64_t last = segs[n - 1];
    j->first_seg = segs[0];
    ch_free(segs);
    seg_path(path, sizeof path, j->dir, last);
    j->fd = open(path, O_RDWR | O_CLOEXEC);
    if (j->fd < 0)
        return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
    j->seg = last;
    unsigned char h[CH_JOURNAL_SEG_HEADER];
    ssize_t got = pread(j->fd, h, sizeof h, 0);
    if (got != (ssize_t)sizeof h) {
        /* Created but its header never made it: a crash right at rotation. Start it over. */
        struct stat st;
        if (fstat(j->fd, &st) == 0)
            j->bytes -= (uint64_t)st.st_size;
        close(j->fd);
        j->fd = -1;
        unlink(path);
        j->nsegs--;
        if (j->nsegs == 0) {
            if (getrandom(&j->id, sizeof j->id, 0) != (ssize_t)sizeof j->id || j->id == 0)
                j->id = (uint64_t)wall_ms() ^ 0x9e3779b97f4a7c15u;
        } else {
            char prev[4096];
            seg_path(prev, sizeof prev, j->dir, last - 1);
            int pfd = open(prev, O_RDONLY | O_CLOEXEC);
            if (pfd < 0 || pread(pfd, h, sizeof h, 0) != (ssize_t)sizeof h ||
                seg_header_check(h, last - 1, &j->id, prev, err) < 0) {
                if (pfd >= 0)
                    close(pfd);
                return ch_error_set(err, CH_EPARSE,
                                    "journal %s: segment %016" PRIx64
                                    " has no header and no readable predecessor",
                                    j->dir, last);
            }
            close(pfd);
        }
        return open_segment(j, last, err);
    }
    rc = seg_header_check(h, last, &j->id, path, err);
    if (rc < 0)
        return rc;
    return recover_tail(j, rec, err);
}

int ch_journal_open(const ch_journal_opts *o, ch_journal **out, ch_journal_recovery *rec,
                    ch_error *err)
{
    int rc = 0;
    *out = NULL;
    if (rec != NULL)
        memset(rec, 0, sizeof *rec);
    if (o->dir == NULL || *o->dir == '\0')
        return ch_error_set(err, CH_EUSAGE, "the journal needs a directory");
    if (mkdir(o->dir, 0750) < 0 && errno != EEXIST)
        return ch_error_set(err, CH_EIO, "journal %s: %s", o->dir, strerror(errno));
    ch_journal *j = ch_calloc(1, sizeof *j);
    if (j == NULL || (j->dir = ch_strdup(o->dir)) == NULL) {
        ch_free(j);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    j->o = *o;
    j->o.dir = j->dir;
    if (j->o.max_bytes == 0)
        j->o.max_bytes = 10ull << 30;
    if (j->o.segment_bytes == 0)
        j->o.segment_bytes = CH_JOURNAL_DEFAULT_SEGMENT;
    if (j->o.max_entry == 0)
        j->o.max_entry = CH_JOURNAL_DEFAULT_MAX_ENTRY;
    if (j->o.interval_ms == 0)
        j->o.interval_ms = 100;
    j->fd = -1;
    j->next_seq = 1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->synced_cv, NULL);
    pthread_cond_init(&j->data_cv, NULL);
    rc = journal_load(j, rec, err);
    if (rc < 0) {
        ch_journal_close(j);
        return rc;
    }
    j->synced = j->visible = (ch_journal_pos){j->id, j->seg, j->wend};
    if (j->o.fsync == CH_JOURNAL_FSYNC_INTERVAL) {
        if (pthread_create(&j->flusher, NULL, flusher_main, j) != 0) {
            ch_journal_close(j);
            return ch_error_set(err, CH_ERR, "cannot start the journal's flusher thread");
        }
        j->has_flusher = true;
    }
    *out = j;
    return 0;
}

void ch_journal_close(ch_journal *j)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_broadcast(&j->synced_cv);
    pthread_cond_broadcast(&j->data_cv);
    pthread_mutex_unlock(&j->mu);
    if (j->has_flusher)
        pthread_join(j->flusher, NULL);
    if (j->fd >= 0) {
        if (j->o.fsync != CH_JOURNAL_FSYNC_NONE)
            fdatasync(j->fd);
        close(j->fd);
    }
    pthread_cond_destroy(&j->synced_cv);
    pthread_cond_destroy(&j->data_cv);
    pthread_mutex_destroy(&j->mu);
    ch_free(j->dir);
    ch_free(j);
}

/* Close the current segment (durably) and start the next. Called with the lock held. The new
 * segment is made before the old one is closed: when the disk is full, appends are refused
 * and the journal goes on with the old segment once there is room again. */
static int rotate(ch_journal *j, ch_error *err)
{
    while (j->syncing)
        pthread_cond_wait(&j->synced_cv, &j->mu);
    if (j->o.fsync != CH_JOURNAL_FSYNC_NONE && fdatasync(j->fd) < 0)
        return ch_error_set(err, CH_EIO, "journal %s: fdatasync: %s", j->dir, strerror(errno));
    j->st.fsyncs++;
    ch_journal_pos end = {j->id, j->seg, j->wend};
    j->synced = end;
    j->visible = end;
    pthread_cond_broadcast(&j->data_cv);
    int oldfd = j->fd;
    int rc = open_segment(j, j->seg + 1, err);
    if (rc < 0)
        return rc;
    close(oldfd);
    return 0;
}

static uint64_t entry_size(const ch_journal_rec *r)
{
    return CH_JOURNAL_ENTRY_HEADER + (r->type ? strlen(r->type) : 0) +
           (r->origin ? strlen(r->origin) : 0) + r->len;
}

int ch_journal_append(ch_journal *j, const ch_journal_rec *recs, size_t n, ch_journal_pos *end,
                      ch_error *err)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tl = recs[i].type ? strlen(recs[i].type) : 0;
        size_t ol = recs[i].origin ? strlen(recs[i].origin) : 0;
        if (tl > CH_JOURNAL_MAX_TYPE || ol > CH_JOURNAL_MAX_ORIGIN)
            return ch_error_set(err, CH_ELIMIT, "journal: type or origin too long");
        if (recs[i].len > j->o.max_entry)
            return ch_error_set(err, CH_ELIMIT,
                                "journal: entry of %zu bytes is over the %" PRIu64 " byte cap",
                                recs[i].len, j->o.max_entry);
        total += entry_size(&recs[i]);
    }
    if (n == 0)
        return 0;
    /* Checksums of the bodies and the iovecs are made before taking the lock; sequence numbers
     * are filled in under it, and the CRC is finished over the 28 header bytes there. */
    unsigned char(*hdrs)[CH_JOURNAL_ENTRY_HEADER] = ch_malloc(n * CH_JOURNAL_ENTRY_HEADER);
    uint32_t *body_crc = ch_malloc(n * sizeof *body_crc);
    struct iovec *iov = ch_malloc(n * 4 * sizeof *iov);
    if (hdrs == NULL || body_crc == NULL || iov == NULL) {
        ch_free(hdrs);
        ch_free(body_crc);
        ch_free(iov);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        size_t tl = recs[i].type ? strlen(recs[i].type) : 0;
        size_t ol = recs[i].origin ? strlen(recs[i].origin) : 0;
        uint32_t c = ch_crc32c(0, recs[i].type ? recs[i].type : "", tl);
        c = ch_crc32c(c, recs[i].origin ? recs[i].origin : "", ol);
        c = ch_crc32c(c, recs[i].data, recs[i].len);
        body_crc[i] = c;
        iov[4 * i] = (struct iovec){hdrs[i], CH_JOURNAL_ENTRY_HEADER};
        iov[4 * i + 1] = (struct iovec){(void *)(recs[i].type ? recs[i].type : ""), tl};
        iov[4 * i + 2] = (struct iovec){(void *)(recs[i].origin ? recs[i].origin : ""), ol};
        iov[4 * i + 3] = (struct iovec){(void *)recs[i].data, recs[i].len};
    }
    int rc = 0;
    int64_t now = wall_ms();
    pthread_mutex_lock(&j->mu);
    if (j->broken || j->fd < 0) {
        rc = ch_error_set(err, CH_EIO,
                          "journal %s: an earlier write or sync failed; restart "
                          "coinhound",
                          j->dir);
        j->st.io_errors++;
        goto out;
    }
    if (j->bytes + total > j->o.max_bytes) {
        rc = ch_error_set(err, CH_ELIMIT, "journal %s is full (%" PRIu64 " of %" PRIu64 " bytes)",
                          j->dir, j->bytes, j->o.max_bytes);
        j->st.full++;
        goto out;
    }
    if (j->wend > CH_JOURNAL_SEG_HEADER && j->wend + total > j->o.segment_bytes) {
        rc = rotate(j, err);
        if (rc < 0) {
            j->st.io_errors++;
            goto out;
        }
    }
    uint64_t start = j->wend, first_seq = j->next_seq;
    for (size_t i = 0; i < n; i++) {
        ehdr e = {0,
                  (uint32_t)recs[i].len,
                  first_seq + i,
                  now,
                  (uint16_t)iov[4 * i + 1].iov_len,
                  (uint16_t)iov[4 * i + 2].iov_len};
        ehdr_put(hdrs[i], &e);
        put32(hdrs[i], ch_crc32c(body_crc[i], hdrs[i] + 4, CH_JOURNAL_ENTRY_HEADER - 4));
    }
    /* pwritev takes at most IOV_MAX vectors; write in slices. */
    size_t niov = 4 * n, done = 0;
    uint64_t off = start;
    while (done < niov && rc == 0) {
        size_t k = niov - done > 1024 ? 1024 : niov - done;
        size_t want = 0;
        for (size_t i = 0; i < k; i++)
            want += iov[done + i].iov_len;
        ssize_t w = pwritev(j->fd, iov + done, (int)k, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 || (size_t)w != want) {
            int e = w < 0 ? errno : ENOSPC; /* a short write is the disk filling up */
            if (w > 0) {
                /* Retry the remainder once through the plain path to learn the real errno. */
                off += (uint64_t)w;
                size_t skip = (size_t)w;
                while (skip > 0 && done < niov) {
                    if (iov[done].iov_len <= skip) {
                        skip -= iov[done].iov_len;
                        done++;
                    } else {
                        iov[done].iov_base = (char *)iov[done].iov_base + skip;
                        iov[done].iov_len -= skip;
                        skip = 0;
                    }
                }
                continue;
            }
            rc = ch_error_set(err, CH_EIO, "journal %s: write: %s (nothing acknowledged)", j->dir,
                              strerror(e));
            break;
        }
        off += (uint64_t)w;
        done += k;
    }
    if (rc < 0) {
        j->st.io_errors++;
        if (ftruncate(j->fd, (off_t)start) < 0)
            j->broken = true; /* the half entry stays: refuse until a restart cuts it */
        goto out;
    }
    j->wend = off;
    j->bytes += total;
    j->next_seq += n;
    j->st.appended += n;
    j->st.appended_bytes += total;
    ch_journal_pos mine = {j->id, j->seg, j->wend};
    if (j->o.fsync != CH_JOURNAL_FSYNC_BATCH) {
        j->visible = mine;
        pthread_cond_broadcast(&j->data_cv);
    } else {
        uint64_t gen = j->sync_fail_gen;
        while (ch_journal_pos_cmp(j->synced, mine) < 0 && j->sync_fail_gen == gen) {
            if (j->syncing) {
                pthread_cond_wait(&j->synced_cv, &j->mu);
                continue;
            }
            j->syncing = true;
            ch_journal_pos target = {j->id, j->seg, j->wend};
            int fd = j->fd;
            pthread_mutex_unlock(&j->mu);
            int src = fdatasync(fd);
            int serr = errno;
            pthread_mutex_lock(&j->mu);
            j->syncing = false;
            j->st.fsyncs++;
            if (src == 0) {
                j->synced = target;
                j->visible = target;
                pthread_cond_broadcast(&j->data_cv);
            } else {
                /* Everything after the durable end is unacknowledged: cut it off and fail its
                 * writers (they are all waiting here). */
                j->sync_fail_gen++;
                uint64_t cut = j->wend - j->synced.off;
                if (j->synced.seg != j->seg || ftruncate(j->fd, (off_t)j->synced.off) < 0)
                    j->broken = true;
                else {
                    j->wend = j->synced.off;
                    j->bytes -= cut;
                }
                rc = ch_error_set(err, CH_EIO, "journal %s: fdatasync: %s (nothing acknowledged)",
                                  j->dir, strerror(serr));
            }
            pthread_cond_broadcast(&j->synced_cv);
        }
        if (rc == 0 && ch_journal_pos_cmp(j->synced, mine) < 0)
            rc = ch_error_set(err, CH_EIO, "journal %s: fdatasync failed (nothing acknowledged)",
                              j->dir);
        if (rc < 0)
            j->st.io_errors++;
    }
    if (rc == 0 && end != NULL)
        *end = mine;
out:
    pthread_mutex_unlock(&j->mu);
    ch_free(hdrs);
    ch_free(body_crc);
    ch_free(iov);
    return rc;
}

ch_journal_pos ch_journal_end(ch_journal *j)
{
    pthread_mutex_lock(&j->mu);
    ch_journal_pos p = j->visible;
    pthread_mutex_unlock(&j->mu);
    return p;
}

ch_journal_pos ch_journal_begin(ch_journal *j)
{
    pthread_mutex_lock(&j->mu);
    ch_journal_pos p = {j->id, j->first_seg, CH_JOURNAL_SEG_HEADER};
    pthread_mutex_unlock(&j->mu);
    return p;
}

int ch_journal_wait(ch_journal *j, ch_journal_pos after, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_mutex_lock(&j->mu);
    while (ch_journal_pos_cmp(j->visible, after) <= 0 && !j->stop) {
        if (pthread_cond_timedwait(&j->data_cv, &j->mu, &ts) != 0)
            break;
    }
    int r = ch_journal_pos_cmp(j->visible, after) > 0;
    pthread_mutex_unlock(&j->mu);
    return r;
}

void ch_journal_wake(ch_journal *j)
{
    pthread_mutex_lock(&j->mu);
    pthread_cond_broadcast(&j->data_cv);
    pthread_mutex_unlock(&j->mu);
}

int ch_journal_release(ch_journal *j, ch_journal_pos upto, ch_error *err)
{
    char path[4096];
    int removed = 0;
    pthread_mutex_lock(&j->mu);
    if (upto.id != 0 && upto.id != j->id) {
        pthread_mutex_unlock(&j->mu);
        return ch_error_set(err, CH_EUSAGE, "position of another journal");
    }
    while (j->first_seg < upto.seg && j->first_seg < j->seg) {
        struct stat st;
        seg_path(path, sizeof path, j->dir, j->first_seg);
        uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
        if (unlink(path) < 0 && errno != ENOENT) {
            int e = errno;
            pthread_mutex_unlock(&j->mu);
            return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(e));
        }
        j->bytes -= size <= j->bytes ? size : j->bytes;
        if (size > 0)
            j->nsegs--;
        j->first_seg++;
        removed++;
    }
    /* Everything written has been consumed: start a fresh segment and drop the current one,
     * so that a journal at its cap gets its room back as soon as the pipeline catches up, not
     * only once the segment fills. (Not while a sync runs on the current descriptor.) */
    if (upto.seg == j->seg && upto.off == j->wend && j->wend > CH_JOURNAL_SEG_HEADER &&
        !j->syncing && !j->broken && upto.seg == j->first_seg) {
        uint64_t old = j->seg;
        int oldfd = j->fd;
        ch_error oerr = {0};
        uint64_t old_bytes = j->wend;
        if (open_segment(j, old + 1, &oerr) == 0) {
            close(oldfd);
            seg_path(path, sizeof path, j->dir, old);
            if (unlink(path) == 0) {
                j->bytes -= old_bytes <= j->bytes ? old_bytes : j->bytes;
                j->nsegs--;
                j->first_seg = old + 1;
                removed++;
            }
            j->synced = j->visible = (ch_journal_pos){j->id, j->seg, j->wend};
        } else {
            j->fd = oldfd; /* no room for a new segment: keep appending to this one */
        }
    }
    pthread_mutex_unlock(&j->mu);
    return removed;
}

bool ch_journal_full(ch_journal *j, uint64_t bytes)
{
    pthread_mutex_lock(&j->mu);
    bool full = j->bytes + bytes + CH_JOURNAL_ENTRY_HEADER > j->o.max_bytes;
    pthread_mutex_unlock(&j->mu);
    return full;
}

void ch_journal_stats_get(ch_journal *j, ch_journal_stats *s)
{
    pthread_mutex_lock(&j->mu);
    *s = j->st;
    s->bytes = j->bytes;
    s->max_bytes = j->o.max_bytes;
    s->segments = j->nsegs;
    s->next_seq = j->next_seq;
    s->broken = j->broken;
    pthread_mutex_unlock(&j->mu);
}

uint64_t ch_journal_lag(ch_journal *j, ch_journal_pos from)
{
    /* Whole segments between are stat'ed: a few per scrape, never per record. A segment that is
     * gone (released) counts nothing. */
    char path[4096];
    pthread_mutex_lock(&j->mu);
    ch_journal_pos end = j->visible;
    uint64_t lag = 0;
    if (ch_journal_pos_cmp(from, end) < 0) {
        if (from.seg == end.seg) {
            lag = end.off - from.off;
        } else {
            for (uint64_t seg = from.seg; seg < end.seg; seg++) {
                struct stat st;
                seg_path(path, sizeof path, j->dir, seg);
                if (stat(path, &st) < 0)
                    continue;
                uint64_t start = seg == from.seg ? from.off : CH_JOURNAL_SEG_HEADER;
                if ((uint64_t)st.st_size > start)
                    lag += (uint64_t)st.st_size - start;
            }
            lag += end.off - CH_JOURNAL_SEG_HEADER;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return lag;
}
