/*
 * spool.c - watched spool directories and their ledger (see spool.h for the contract).
 *
 * The ledger is an open-addressing table keyed by (device, inode) with backward-shift deletion
 * (no tombstones), so lookups stay O(1) however many files came and went; it holds identity,
 * fingerprint and offset only (~40 bytes a file). Changes come from inotify as paths; a path
 * is read at once (its stat says which ledger entry it is), so there is no queue of pending
 * work beyond the events of one poll. A rescan walks the trees in name order (which is time
 * order for S3 delivery names), re-adding watches (idempotent) and reading whatever grew; it
 * costs one stat per file and one directory read per directory, every rescan_ms.
 *
 * Whole-file reads check gzip completeness by inflating into a small scratch buffer without
 * keeping the output: O(file) CPU, O(64 KiB) memory.
 */
#include "ingest/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/hash.h"
#include "core/mem.h"

#define FP_MAX 256      /* bytes fingerprinted */
#define MAX_DEPTH 32    /* directory nesting walked */
#define HEADER_MAX 4096 /* a flow log header line carried in front of later chunks */
#define STALE_FACTOR 30 /* an incomplete gzip unchanged settle*30 is read as it is */

typedef struct lent {
    uint64_t dev, ino, off;
    uint32_t fp;
    uint16_t fplen;
    bool used;
    bool verified; /* fingerprint checked by this process (not persisted) */
    uint32_t gen;  /* the rescan that last saw it */
} lent;

struct ch_spool {
    ch_spool_opts o;
    char **dirs;
    lent *tab;
    size_t cap, n; /* cap is a power of two */
    uint32_t gen;
    int ifd;
    char **wd_path; /* indexed by watch descriptor */
    size_t wd_cap;
    int64_t next_rescan;
    bool rescan_now, walk_incomplete, paused;
    ch_buf chunk;
    ch_buf origin;
    ch_spool_stats st;
    ch_spool_log log;
    void *log_ud;
    ch_spool_emit emit;
    void *emit_ud;
    int emit_rc;
    int emitted;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(ch_spool *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(ch_spool *s, const char *fmt, ...)
{
    if (s->log == NULL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->log(s->log_ud, msg);
}

/* ---- ledger table --------------------------------------------------------------------------- */

static size_t slot_of(const ch_spool *s, uint64_t dev, uint64_t ino)
{
    /* Inode numbers are dense and devices few: mix both words so every bit counts. */
    return (size_t)ch_hash_mix64(ino ^ ch_hash_mix64(dev + 0x9e3779b97f4a7c15u)) & (s->cap - 1);
}

static lent *find(ch_spool *s, uint64_t dev, uint64_t ino)
{
    for (size_t i = slot_of(s, dev, ino);; i = (i + 1) & (s->cap - 1)) {
        if (!s->tab[i].used)
            return NULL;
        if (s->tab[i].dev == dev && s->tab[i].ino == ino)
            return &s->tab[i];
    }
}

static int grow(ch_spool *s)
{
    size_t ncap = s->cap * 2;
    lent *nt = ch_calloc(ncap, sizeof *nt);
    if (nt == NULL)
        return CH_ENOMEM;
    lent *old = s->tab;
    size_t ocap = s->cap;
    s->tab = nt;
    s->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].used)
            continue;
        size_t j = slot_of(s, old[i].dev, old[i].ino);
        while (s->tab[j].used)
            j = (j + 1) & (s->cap - 1);
        s->tab[j] = old[i];
    }
    ch_free(old);
    return 0;
}

/* The entry for (dev, ino), created (offset 0) when missing; NULL when the ledger is full. */
static lent *get(ch_spool *s, uint64_t dev, uint64_t ino)
{
    lent *e = find(s, dev, ino);
    if (e != NULL)
        return e;
    if (s->n >= s->o.max_files)
        return NULL;
    if ((s->n + 1) * 4 > s->cap * 3 && grow(s) < 0)
        return NULL;
    size_t i = slot_of(s, dev, ino);
    while (s->tab[i].used)
        i = (i + 1) & (s->cap - 1);
    s->tab[i] = (lent){dev, ino, 0, 0, 0, true, false, s->gen};
    s->n++;
    return &s->tab[i];
}

/* Backward-shift deletion: later entries of the probe run move up to fill the hole. */
static void del_at(ch_spool *s, size_t i)
{
    s->tab[i].used = false;
    s->n--;
    for (size_t j = (i + 1) & (s->cap - 1); s->tab[j].used; j = (j + 1) & (s->cap - 1)) {
        size_t home = slot_of(s, s->tab[j].dev, s->tab[j].ino);
        /* Move j into the hole i when its home is not in (i, j] cyclically. */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            s->tab[i] = s->tab[j];
            s->tab[j].used = false;
            i = j;
        }
    }
}

/* ---- setup ---------------------------------------------------------------------------------- */

int ch_spool_new(const ch_spool_opts *o, ch_spool **out, ch_error *err)
{
    *out = NULL;
    if (o->ndirs == 0 || o->ndirs > CH_SPOOL_MAX_DIRS)
        return ch_error_set(err, CH_EUSAGE, "spool: between 1 and %d directories",
                            CH_SPOOL_MAX_DIRS);
    ch_spool *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    s->o = *o;
    if (s->o.rescan_ms == 0)
        s->o.rescan_ms = 10000;
    if (s->o.settle_ms == 0)
        s->o.settle_ms = 2000;
    if (s->o.max_chunk == 0)
        s->o.max_chunk = CH_SPOOL_DEFAULT_CHUNK;
    if (s->o.max_files == 0)
        s->o.max_files = CH_SPOOL_DEFAULT_MAX_FILES;
    s->ifd = -1;
    s->cap = 1024;
    s->gen = 1;
    s->tab = ch_calloc(s->cap, sizeof *s->tab);
    s->dirs = ch_calloc(o->ndirs, sizeof *s->dirs);
    ch_buf_init(&s->chunk, s->o.max_chunk + HEADER_MAX + 2);
    ch_buf_init(&s->origin, CH_SPOOL_DEFAULT_CHUNK);
    bool ok = s->tab != NULL && s->dirs != NULL;
    for (size_t i = 0; ok && i < o->ndirs; i++) {
        s->dirs[i] = ch_strdup(o->dirs[i]);
        ok = s->dirs[i] != NULL;
    }
    s->o.dirs = NULL;
    if (!ok) {
        ch_spool_free(s);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

void ch_spool_free(ch_spool *s)
{
    if (s == NULL)
        return;
    if (s->ifd >= 0)
        close(s->ifd);
    for (size_t i = 0; i < s->wd_cap; i++)
        ch_free(s->wd_path[i]);
    ch_free(s->wd_path);
    for (size_t i = 0; s->dirs != NULL && i < s->o.ndirs; i++)
        ch_free(s->dirs[i]);
    ch_free(s->dirs);
    ch_free(s->tab);
    ch_buf_free(&s->chunk);
    ch_buf_free(&s->origin);
    ch_free(s);
}

void ch_spool_set_log(ch_spool *s, ch_spool_log log, void *ud)
{
    s->log = log;
    s->log_ud = ud;
}

void ch_spool_rescan_soon(ch_spool *s) { s->rescan_now = true; }

void ch_spool_stats_get(const ch_spool *s, ch_spool_stats *st)
{
    *st = s->st;
    st->ledger_entries = s->n;
}

/* ---- ledger persistence --------------------------------------------------------------------- */

void ch_spool_ledger_note(ch_spool *s, const char *origin)
{
    unsigned long long dev, ino, end;
    unsigned fplen, fp;
    if (strncmp(origin, "spool:", 6) != 0 ||
        sscanf(origin + 6, "%llu:%llu:%u:%x:%llu:", &dev, &ino, &fplen, &fp, &end) != 5)
        return;
    lent *e = get(s, dev, ino);
    if (e == NULL) {
        s->st.ledger_full++;
        return;
    }
    if (e->fplen != fplen || e->fp != fp) {
        /* A new file under a reused inode: its own offsets start over. */
        e->fplen = (uint16_t)fplen;
        e->fp = fp;
        e->off = 0;
    }
    if (end > e->off)
        e->off = end;
}

int ch_spool_ledger_load(ch_spool *s, const char *path, char *pos_text, size_t cap, ch_error *err)
{
    pos_text[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        return ch_error_set(err, CH_EIO, "spool ledger %s: %s", path, strerror(errno));
    }
    char line[512];
    int rc = 0;
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        unsigned long long dev, ino, off;
        unsigned fplen, fp;
        char pos[128];
        if (lineno == 1) {
            if (strcmp(line, "coinhound-spool-ledger 1\n") != 0) {
                rc = ch_error_set(err, CH_EPARSE, "%s: not a spool ledger (version 1)", path);
                break;
            }
        } else if (lineno == 2) {
            if (sscanf(line, "position %127s", pos) != 1) {
                rc = ch_error_set(err, CH_EPARSE, "%s:2: no journal position", path);
                break;
            }
            snprintf(pos_text, cap, "%s", strcmp(pos, "-") == 0 ? "" : pos);
        } else if (sscanf(line, "%llu %llu %u %x %llu", &dev, &ino, &fplen, &fp, &off) == 5) {
            lent *e = get(s, dev, ino);
            if (e == NULL) {
                s->st.ledger_full++;
                continue;
            }
            e->fplen = (uint16_t)fplen;
            e->fp = fp;
            e->off = off;
        } else {
            rc = ch_error_set(err, CH_EPARSE, "%s:%u: bad ledger line", path, lineno);
            break;
        }
    }
    fclose(f);
    return rc;
}

int ch_spool_ledger_save(ch_spool *s, const char *path, const char *pos_text, ch_error *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return ch_error_set(err, CH_EIO, "spool ledger %s: %s", tmp, strerror(errno));
    fprintf(f, "coinhound-spool-ledger 1\nposition %s\n", pos_text && *pos_text ? pos_text : "-");
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i].used)
            fprintf(f, "%" PRIu64 " %" PRIu64 " %u %08x %" PRIu64 "\n", s->tab[i].dev,
                    s->tab[i].ino, (unsigned)s->tab[i].fplen, s->tab[i].fp, s->tab[i].off);
    bool ok = fflush(f) == 0 && fdatasync(fileno(f)) == 0;
    int e = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        if (ok)
            e = errno;
        unlink(tmp);
        return ch_error_set(err, CH_EIO, "spool ledger %s: %s", path, strerror(e));
    }
    /* The rename itself must survive a crash. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        int dfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

/* ---- reading files -------------------------------------------------------------------------- */

static ssize_t pread_all(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Does buf hold whole gzip members, the last one ended? */
static bool gzip_complete(const unsigned char *buf, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return false;
    unsigned char out[65536];
    z.next_in = (Bytef *)buf;
    z.avail_in = (uInt)len;
    bool done = false;
    for (;;) {
        z.next_out = out;
        z.avail_out = sizeof out;
        int zr = inflate(&z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0) {
                done = true;
                break;
            }
            if (inflateReset(&z) != Z_OK)
                break;
            continue;
        }
        if (zr != Z_OK)
            break;
    }
    inflateEnd(&z);
    return done;
}

enum { MODE_LINES, MODE_WHOLE };

static int file_mode(const unsigned char *head, size_t n)
{
    if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        return MODE_WHOLE;
    size_t i = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t'))
        i++;
    if (i < n && head[i] == '[')
        return MODE_WHOLE;
    if (i < n && head[i] == '{' && memmem(head + i, n - i, "\"Records\"", 9) != NULL &&
        memchr(head + i, '\n', n - i) == NULL)
        return MODE_WHOLE; /* a (possibly large) one-line {"Records":[...]} document */
    if (i < n && head[i] == '{') {
        /* Pretty-printed {"Records": [...]} spans lines: its first key says so. */
        size_t j = i + 1;
        while (j < n && (head[j] == ' ' || head[j] == '\n' || head[j] == '\r' || head[j] == '\t'))
            j++;
        if (n - j >= 9 && memcmp(head + j, "\"Records\"", 9) == 0)
            return MODE_WHOLE;
    }
    return MODE_LINES;
}

static int emit_chunk(ch_spool *s, const char *path, const struct stat *st, lent *e, uint64_t start,
                      uint64_t end)
{
    ch_buf_clear(&s->origin);
    if (ch_buf_printf(&s->origin, "spool:%llu:%llu:%u:%08x:%" PRIu64 ":",
                      (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
                      (unsigned)e->fplen, e->fp, end) < 0)
        return CH_ENOMEM;
    /* The path is for people; the journal caps the origin, so a very long path is cut. */
    size_t room = 4000 - s->origin.len;
    size_t pl = strlen(path);
    ch_buf_add(&s->origin, pl > room ? path + pl - room : path, pl > room ? room : pl);
    ch_spool_chunk c = {path, s->origin.data, s->chunk.data, s->chunk.len, start};
    int rc = s->emit(s->emit_ud, &c);
    if (rc == CH_ELIMIT) {
        s->paused = true;
        s->st.paused++;
        return rc;
    }
    if (rc < 0)
        return rc;
    e->off = end;
    s->st.chunks++;
    s->st.bytes += end - start;
    s->emitted++;
    return 0;
}

/* Read what is new in one file. closed: inotify said it was closed after writing or moved in. */
static int process_file(ch_spool *s, const char *path, bool closed)
{
    struct stat st;
    if (s->paused || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    lent *e = find(s, st.st_dev, st.st_ino);
    if (e != NULL)
        e->gen = s->gen;
    if (e != NULL && e->off == (uint64_t)st.st_size && e->verified)
        return 0; /* the common case on a rescan: nothing new, no open() */
    if (st.st_size == 0)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return 0;
    int rc = 0;
    unsigned char head[FP_MAX];
    ssize_t hn = pread_all(fd, head, sizeof head, 0);
    if (hn <= 0)
        goto out;
    if (e == NULL) {
        e = get(s, st.st_dev, st.st_ino);
        if (e == NULL) {
            if (s->st.ledger_full++ == 0)
                say(s,
                    "spool: the ledger holds %zu files, its cap; %s and later new files are "
                    "not read (raise spool_max_files or clear old files)",
                    s->n, path);
            goto out;
        }
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < e->off) {
        s->st.truncated++;
        say(s,
            "spool: %s shrank from %" PRIu64 " to %" PRIu64 " bytes (truncated in place); "
            "reading it again from the start",
            path, e->off, size);
        e->off = 0;
        e->fplen = 0;
    }
    if (e->fplen != 0 && (e->fplen > hn || (uint32_t)crc32(0L, head, e->fplen) != e->fp)) {
        /* The inode now holds another file: its offsets start over. */
        e->off = 0;
        e->fplen = 0;
    }
    if (e->fplen == 0) {
        e->fplen = (uint16_t)hn;
        e->fp = (uint32_t)crc32(0L, head, (uInt)hn);
    }
    e->verified = true;
    if (size == e->off)
        goto out;
    int64_t age_ms = (int64_t)time(NULL) * 1000 -
                     ((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
    bool settled = closed || age_ms >= (int64_t)s->o.settle_ms;
    ch_buf_clear(&s->chunk);
    if (file_mode(head, (size_t)hn) == MODE_WHOLE) {
        uint64_t start = e->off; /* > 0 only for gzip members appended later */
        if (size - start > s->o.max_chunk) {
            s->st.too_large++;
            say(s,
                "spool: %s: %" PRIu64 " bytes is over the %" PRIu64 " byte cap of one read; "
                "skipped (raise spool_max_chunk)",
                path, size - start, s->o.max_chunk);
            e->off = size;
            goto out;
        }
        if (ch_buf_reserve(&s->chunk, size - start) < 0 ||
            pread_all(fd, s->chunk.data, size - start, (off_t)start) != (ssize_t)(size - start))
            goto out;
        s->chunk.len = size - start;
        s->chunk.data[s->chunk.len] = '\0';
        bool gz = s->chunk.len >= 2 && (unsigned char)s->chunk.data[0] == 0x1f &&
                  (unsigned char)s->chunk.data[1] == 0x8b;
        bool complete =
            gz ? gzip_complete((const unsigned char *)s->chunk.data, s->chunk.len) : settled;
        if (!complete && gz && age_ms >= (int64_t)s->o.settle_ms * STALE_FACTOR) {
            say(s, "spool: %s: gzip stream still incomplete after %lld s; reading what is there",
                path, (long long)(age_ms / 1000));
            complete = true;
        }
        if (!complete)
            goto out;
        rc = emit_chunk(s, path, &st, e, start, size);
        if (rc == 0)
            s->st.files_done++;
        goto out;
    }
    /* Lines: whole lines only, a chunk at a time; a last line without a newline waits for the
     * settle time. */
    while (e->off < size && rc == 0) {
        uint64_t start = e->off;
        size_t want = (size_t)(size - start < s->o.max_chunk ? size - start : s->o.max_chunk);
        ch_buf_clear(&s->chunk);
        size_t hdr = 0;
        if (start > 0 && hn > 0 && !(head[0] == '{' || (head[0] >= '0' && head[0] <= '9'))) {
            /* A flow log header: carry it so the chunk parses with the right columns. */
            const unsigned char *nl = memchr(head, '\n', (size_t)hn);
            if (nl != NULL) {
                hdr = (size_t)(nl - head) + 1;
                ch_buf_add(&s->chunk, head, hdr);
            }
        }
        if (ch_buf_reserve(&s->chunk, want) < 0)
            break;
        ssize_t got = pread_all(fd, s->chunk.data + hdr, want, (off_t)start);
        if (got <= 0)
            break;
        s->chunk.len = hdr + (size_t)got;
        const char *body = s->chunk.data + hdr;
        const char *nl = memrchr(body, '\n', (size_t)got);
        size_t take;
        if (nl != NULL)
            take = (size_t)(nl - body) + 1;
        else if ((size_t)got >= s->o.max_chunk || (settled && start + (uint64_t)got == size))
            take = (size_t)got; /* an overlong line (the parser reports it) or a last line */
        else
            break;
        s->chunk.len = hdr + take;
        rc = emit_chunk(s, path, &st, e, start, start + take);
    }
out:
    close(fd);
    return rc == CH_ELIMIT ? 0 : rc;
}

/* ---- watching and walking ------------------------------------------------------------------- */

static void add_watch(ch_spool *s, const char *dir)
{
    if (s->ifd < 0)
        return;
    int wd = inotify_add_watch(s->ifd, dir,
                               IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR);
    if (wd < 0) {
        if (errno == ENOSPC && s->st.watches < CH_SPOOL_MAX_WATCHES)
            say(s,
                "spool: the inotify watch limit is reached at %s; rescans cover the rest "
                "(raise fs.inotify.max_user_watches)",
                dir);
        return;
    }
    if ((size_t)wd >= s->wd_cap) {
        if ((size_t)wd >= CH_SPOOL_MAX_WATCHES) {
            inotify_rm_watch(s->ifd, wd);
            return;
        }
        size_t nc = s->wd_cap ? s->wd_cap : 64;
        while (nc <= (size_t)wd)
            nc *= 2;
        char **np = ch_realloc(s->wd_path, nc * sizeof *np);
        if (np == NULL)
            return;
        memset(np + s->wd_cap, 0, (nc - s->wd_cap) * sizeof *np);
        s->wd_path = np;
        s->wd_cap = nc;
    }
    if (s->wd_path[wd] == NULL) {
        s->wd_path[wd] = ch_strdup(dir);
        s->st.watches++;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk dir: watch it and its sub-directories, read its files, in name order. */
static int walk(ch_spool *s, const char *dir, int depth)
{
    if (depth > MAX_DEPTH) {
        s->walk_incomplete = true;
        return 0;
    }
    add_watch(s, dir);
    DIR *d = opendir(dir);
    if (d == NULL) {
        s->walk_incomplete = true;
        return 0;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue; /* dotfiles: temporary files of copiers, and . and .. */
        if (n == cap) {
            char **nn = ch_grow(names, &cap, 64, sizeof *nn);
            if (nn == NULL)
                break;
            names = nn;
        }
        if ((names[n] = ch_strdup(de->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    char path[4096];
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                rc = walk(s, path, depth + 1);
            else
                rc = process_file(s, path, false);
        }
        ch_free(names[i]);
    }
    ch_free(names);
    return rc;
}

static int rescan(ch_spool *s)
{
    s->gen++;
    s->walk_incomplete = false;
    s->st.rescans++;
    int rc = 0;
    for (size_t i = 0; i < s->o.ndirs && rc == 0; i++) {
        struct stat st;
        if (stat(s->dirs[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
            s->walk_incomplete = true;
            continue;
        }
        rc = walk(s, s->dirs[i], 0);
    }
    /* Forget files that are gone, but only after a walk that saw everything (an unmounted
     * share must not make the ledger forget what it read there), and never while paused. */
    if (rc == 0 && !s->walk_incomplete && !s->paused)
        for (size_t i = 0; i < s->cap;) {
            if (s->tab[i].used && s->tab[i].gen != s->gen)
                del_at(s, i); /* slot i now holds a shifted entry: look at it again */
            else
                i++;
        }
    return rc;
}

int ch_spool_start(ch_spool *s, ch_error *err)
{
    if (!s->o.no_inotify) {
        s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (s->ifd < 0)
            say(s, "spool: inotify unavailable (%s); rescanning every %u ms instead",
                strerror(errno), s->o.rescan_ms);
    }
    for (size_t i = 0; i < s->o.ndirs; i++) {
        struct stat st;
        if (stat(s->dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
            return ch_error_set(err, CH_EIO, "spool directory %s: %s", s->dirs[i],
                                errno ? strerror(errno) : "not a directory");
    }
    s->rescan_now = true;
    return 0;
}

static int handle_events(ch_spool *s)
{
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    char path[4096];
    int rc = 0;
    for (;;) {
        ssize_t n = read(s->ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n && rc == 0;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                s->st.inotify_overflows++;
                s->rescan_now = true;
                continue;
            }
            if (ev->wd < 0 || (size_t)ev->wd >= s->wd_cap || s->wd_path[ev->wd] == NULL ||
                ev->len == 0 || ev->name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s", s->wd_path[ev->wd], ev->name);
            if (ev->mask & IN_ISDIR) {
                if (ev->mask & (IN_CREATE | IN_MOVED_TO))
                    rc = walk(s, path, 1);
                continue;
            }
            rc = process_file(s, path, (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0);
        }
    }
    return rc;
}

int ch_spool_poll(ch_spool *s, int timeout_ms, ch_spool_emit emit, void *ud, ch_error *err)
{
    s->emit = emit;
    s->emit_ud = ud;
    s->emitted = 0;
    s->paused = false;
    int64_t now = mono_ms();
    int rc = 0;
    if (s->rescan_now || now >= s->next_rescan) {
        s->rescan_now = false;
        s->next_rescan = now + s->o.rescan_ms;
        rc = rescan(s);
    } else {
        int64_t wait = s->next_rescan - now;
        if (wait > timeout_ms)
            wait = timeout_ms;
        if (s->ifd >= 0) {
            struct pollfd pfd = {s->ifd, POLLIN, 0};
            if (poll(&pfd, 1, (int)wait) > 0)
                rc = handle_events(s);
        } else if (wait > 0) {
            struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (s->paused) /* retry soon, not at once: the journal needs a checkpoint to make room */
        s->next_rescan = mono_ms() + 200;
    if (rc < 0)
        return ch_error_set(err, rc, "spool: the journal refused a chunk (%s)", ch_strerror(rc));
    return s->emitted;
}
