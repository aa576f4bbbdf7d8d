/*
 * input.c - one input (file, stdin or memory) decompressed on the fly into a sliding window.
 *
 * The window is one heap buffer: bytes [start, end) are unconsumed, and CH_JSON_PADDING bytes
 * after `end` are always allocated and zeroed, so simdjson may read past any record in place.
 * Refilling first moves the unconsumed tail to the front (a memmove of at most one partial
 * record, since readers consume whole records before asking for more), then reads one chunk
 * (CH_INPUT_CHUNK, 1 MiB) with read(2) or inflates into the free space. The buffer grows by
 * doubling only while the unconsumed bytes need it and never past max_window, so memory is
 * bounded by the largest record, not by the file.
 *
 * gzip is sniffed from the first two bytes (1f 8b) whatever the name; members are inflated one
 * after another as `gzip -dc` does, trailing zero bytes (tape padding) are ignored, and any
 * other trailing bytes are an error. Failures are sticky and come after the data before them:
 * a refill that hits damage returns the bytes it produced, and the next refill returns
 * CH_EPARSE with the compressed offset. Plain files cost one read(2) per MiB and no copy; a
 * plain input holds about 1.1 MiB when its records are small, a gzip one 0.3 MiB more (the
 * compressed chunk and the inflater's state).
 *
 * By default (unless COINHOUND_INFLATE=zlib or igzip: ch_input_inflater), each member of a
 * gzip input that can be read again (memory, or a regular file of up to WHOLE_MAX_IN bytes,
 * then read into memory whole) is first inflated whole by libdeflate when it was built in
 * (about twice zlib's rate on CloudTrail: docs/BENCHMARKS.md sections 11, 33 and 37), straight
 * into the window, which grows to the member's size as the gzip trailer states it. The bytes
 * count only once libdeflate has checked the whole member, CRC-32 and length included, so
 * damage delivers nothing of it, and the member is then read by the streaming inflater below,
 * which says where the damage is as zlib does. What follows a whole member is looked at in the
 * same refill, as zlib's loop does (after_member), so the input fails or ends after the same
 * bytes; the one difference left, that a refill may end at another point (a whole member is
 * one refill, zlib fills 1 MiB at a time across members), is one no reader may depend on, and
 * tests/fuzz/fuzz_inflate.c checks that records, reports and lines are zlib's. A member larger
 * than WHOLE_MAX_OUT or than the window may grow, one whose header zlib checks more closely
 * (header_zlib_only), one the last 4 bytes of the input do not size (an earlier member of a
 * file bigger than its last, or one followed by zero padding), and pipes stream through zlib.
 * Whether a member fits is asked of the trailer before the file is read whole (member_size), so
 * a small window (the merge's peek at a file's first records), which an S3 object's member does
 * not fit, streams it from 32 KiB reads and reads a few KiB of it, not the whole object twice.
 * Through such a window a member larger than the window streams without its CRC-32, which the
 * peek never reaches the trailer to compare (crc_defer); one that ends there all the same is
 * inflated again from its start with the check, so the bytes and errors stay zlib's.
 *
 * The streaming inflater is zlib, or ISA-L's igzip when it was built in and
 * COINHOUND_INFLATE=igzip asks for it (twice zlib's rate on CloudTrail here, and it streams
 * into the same window). igzip and zlib find
 * damage at different points of a block, so on damage or truncation the member is inflated
 * again with zlib from its start and what was delivered already is dropped (gz_fallback).
 * That cannot take back bytes igzip handed out from a block zlib refuses outright (a dynamic
 * block whose code lengths zlib rejects before decoding anything: fuzz_input found one, kept
 * as the seed regress-igzip-invalid-distances), so igzip is opt-in until it matches zlib there.
 * A member whose header zlib refuses goes to zlib before igzip reads it (header_zlib_only).
 * igzip only where a member can be read again (memory, regular files); a pipe gets zlib.
 *
 * The line reader sits on the window: memchr from where the previous search stopped (so a
 * long line is searched once, not once per refill), and a too-long line is dropped chunk by
 * chunk while its end is looked for, so a 100 MB line costs no more memory than a short one.
 */
#include "ingest/input.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef COINHOUND_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif
#ifdef COINHOUND_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#include "core/json.h"
#include "core/leb.h"
#include "core/mem.h"

enum { SRC_FD, SRC_MEM };

/* Compressed bytes read at a time: CloudTrail inflates about tenfold, so this feeds a few
 * window refills. */
#define ZCHUNK (256u << 10)
/* ... and by a small window (the merge's peek at a file's first records, which refills a
 * quarter of its window at a time: ch_input_more), whose first refills need a few KiB of a
 * gzip'd S3 object, not all of it: reading the whole 200 KiB object for the peek and again for
 * the real pass cost as much kernel time as the baseline's only read (docs/BENCHMARKS.md
 * section 59). */
#define ZCHUNK_SMALL (32u << 10)

/* Whole-member inflation (the opening comment): a regular file is read into memory whole up to
 * this size (CloudTrail's S3 objects are a few MiB at most), and a member is inflated whole up to
 * this output; beyond either the member streams, so memory stays bounded whatever the file. */
#define WHOLE_MAX_IN (16u << 20)
#define WHOLE_MAX_OUT (64u << 20)

/* Where the inflater reads and writes, kept outside either library's state so the refill logic
 * below is written once for both (the step copies them in and out). */
typedef struct gz_io {
    unsigned char *next_in, *next_out;
    uint32_t avail_in, avail_out;
    const char *msg; /* the library's reason for the last failure */
} gz_io;

/* Which inflater a gzip input uses: zlib, or ISA-L's igzip when it was built in and
 * COINHOUND_INFLATE=igzip asks for it (about twice zlib's rate on CloudTrail, streaming into the
 * same window: docs/BENCHMARKS.md section 11; opt-in, see the file's opening comment). */
typedef enum gz_impl { GZI_ZLIB, GZI_ISAL } gz_impl;

/* Inflater state of a gzip input. */
typedef enum gz_state {
    GZ_MEMBER,  /* inside a member: input ending here is truncation */
    GZ_BETWEEN, /* a member just ended: another may follow */
} gz_state;

struct ch_input {
    char *name;
    int src;
    int fd;
    bool own_fd;
    const unsigned char *mem; /* SRC_MEM: the bytes and how many were handed out */
    size_t mem_len, mem_pos;

    char *buf; /* cap + CH_JSON_PADDING bytes */
    size_t cap, start, end;
    size_t max_window;
    uint64_t offset;    /* decompressed offset of buf[start] */
    uint64_t raw_bytes; /* bytes read from the source (compressed for gzip) */
    /* A range of a plain file (ch_input_open_range): where it starts, the bytes of it not read
     * yet, and the newlines delivered so far. */
    uint64_t origin;
    bool ranged;
    uint64_t range_left;
    uint64_t newlines;

    /* Bytes read while sniffing that a plain input has not delivered yet. */
    unsigned char *pending;
    size_t pending_len, pending_pos;

    bool gzip;
    bool rereadable; /* memory or a regular file: a member can be read again (gz_fallback) */
    bool z_ready;
    gz_state gz;
    gz_impl impl;
    gz_io g;
    z_stream z;
#ifdef COINHOUND_HAVE_ISAL
    struct inflate_state *iz; /* ~45 KiB: allocated only for a gzip input */
#endif
    uint64_t member_raw; /* compressed offset where the current member starts */
    uint64_t member_out; /* its bytes delivered so far */
    uint64_t skip;       /* after a switch to zlib: bytes of the member to inflate and drop */
#ifdef COINHOUND_HAVE_ISAL
    bool header_seen; /* the current member's fixed header was checked (header_zlib_only) */
#endif
    unsigned char *zin; /* compressed chunk (SRC_FD only; SRC_MEM inflates from mem) */
    /* Whole-member inflation: the file read into memory when it did not fit in zin (the input
     * is then a memory input over it). */
    unsigned char *wfile;
    bool member_tried; /* the current member was offered to whole-member inflation */
    /* zlib streams the current member without computing its CRC-32 (crc_defer): if it ends
     * all the same, it is inflated again from its start with the check (crc_restart). */
    bool crc_deferred;
    uint64_t isize_hint; /* the input's last 4 bytes as member_size read them: a member's size */
    bool whole_off;      /* this input streams every member */
    uint64_t whole_members;
#ifdef COINHOUND_HAVE_LIBDEFLATE
    struct libdeflate_decompressor *ld;
#endif

    bool src_eof; /* the source has no more raw bytes */
    bool eof;     /* no more decompressed bytes will come */
    int fail;     /* sticky failure code, 0 if none */
    char fail_msg[sizeof(((ch_error *)0)->msg)];

    /* line reader */
    uint64_t line_no;  /* lines returned or skipped so far */
    size_t line_taken; /* bytes of the last returned line (and its newline) to consume */
    size_t line_scan;  /* bytes at the window front already searched for '\n' */
    bool line_skip;    /* dropping the rest of a too-long line */
};

static void zero_padding(ch_input *in) { memset(in->buf + in->end, 0, CH_JSON_PADDING); }

/* A window small enough to be refilled a quarter at a time (ch_input_more). */
static bool small_window(const ch_input *in)
{
    return in->max_window < 4 * (size_t)CH_INPUT_CHUNK && in->max_window >= 64 * 1024;
}

/* Raw bytes one read(2) asks for (ZCHUNK_SMALL). */
static size_t zread_size(const ch_input *in) { return small_window(in) ? ZCHUNK_SMALL : ZCHUNK; }

/* read(2) from the page cache into an address that is a multiple of 64 cost this AMD EPYC
 * guest's kernel a third of what it cost into malloc's 16-byte-aligned buffers (a test program:
 * 60 MB in 10-15 ms against 33-42 ms), and the gzip'd S3 run's system time fell from 0.066 to
 * 0.041 s with it (docs/BENCHMARKS.md section 59), so the buffers read(2) and pread(2) fill
 * whole (the compressed chunk, a file read whole) are 64-byte aligned. The distance to the
 * allocation (1 to 64) is kept in the byte before. */
#define READ_ALIGN 64
static unsigned char *read_buf_alloc(size_t n)
{
    unsigned char *raw = ch_malloc(n + READ_ALIGN);
    if (raw == NULL)
        return NULL;
    unsigned char *p =
        (unsigned char *)(((uintptr_t)raw + READ_ALIGN) & ~(uintptr_t)(READ_ALIGN - 1));
    p[-1] = (unsigned char)(p - raw);
    return p;
}

static void read_buf_free(unsigned char *p)
{
    if (p != NULL)
        ch_free(p - p[-1]);
}

/* Buffers are kept for the next input instead of freed: both kinds are above glibc's mmap
 * threshold, so each input of a many-file run mapped and faulted in 1.3 MiB afresh and unmapped
 * it at the end (300 gzip'd S3 files: 28,800 page faults and a quarter of the run's CPU time in
 * the kernel; with the pool, 3,900). A window is kept with the capacity it grew to (a whole
 * gzip member is inflated into it, so an S3 file's window is the size of its records), up to
 * POOL_WINDOW_MAX; a compressed chunk is always ZCHUNK. A few of each are enough: the merge keeps
 * only the inputs whose times overlap open. Shared by serve's threads, hence the lock. */
#define STD_WINDOW (CH_INPUT_CHUNK + CH_INPUT_CHUNK / 16)
#define POOL_KEEP 4
#define POOL_WINDOW_MAX (16u << 20)
enum { POOL_WINDOW, POOL_ZCHUNK, POOL_KINDS };
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static void *pool[POOL_KINDS][POOL_KEEP];
static size_t pool_cap[POOL_KINDS][POOL_KEEP]; /* a window's capacity, padding not counted */
static int pool_n[POOL_KINDS];

/* A kept buffer of at least `min` and at most `max` bytes of capacity (*cap says which), or a new
 * one of `min`. */
static void *pool_get(int kind, size_t min, size_t max, size_t *cap)
{
    void *p = NULL;
    pthread_mutex_lock(&pool_mu);
    for (int i = pool_n[kind] - 1; i >= 0; i--) {
        if (pool_cap[kind][i] >= min && pool_cap[kind][i] <= max) {
            p = pool[kind][i];
            *cap = pool_cap[kind][i];
            pool[kind][i] = pool[kind][pool_n[kind] - 1];
            pool_cap[kind][i] = pool_cap[kind][pool_n[kind] - 1];
            pool_n[kind]--;
            break;
        }
    }
    pthread_mutex_unlock(&pool_mu);
    if (p != NULL)
        return p;
    *cap = min;
    return kind == POOL_WINDOW ? ch_malloc(min + CH_JSON_PADDING) : read_buf_alloc(min);
}

static void pool_put(int kind, void *p, size_t cap)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&pool_mu);
    if (pool_n[kind] < POOL_KEEP && cap <= POOL_WINDOW_MAX) {
        pool[kind][pool_n[kind]] = p;
        pool_cap[kind][pool_n[kind]++] = cap;
        p = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    if (kind == POOL_WINDOW)
        ch_free(p);
    else
        read_buf_free(p);
}

static void *zchunk_get(void)
{
    size_t cap;
    return pool_get(POOL_ZCHUNK, ZCHUNK, ZCHUNK, &cap);
}

static void zchunk_put(void *p) { pool_put(POOL_ZCHUNK, p, ZCHUNK); }

static void free_window(ch_input *in)
{
    if (in->cap >= STD_WINDOW)
        pool_put(POOL_WINDOW, in->buf, in->cap);
    else
        ch_free(in->buf);
}

static ch_input *input_new(const char *name, size_t max_window)
{
    ch_input *in = ch_calloc(1, sizeof *in);
    if (in == NULL)
        return NULL;
    in->fd = -1;
    in->max_window = max_window ? max_window : CH_INPUT_DEFAULT_MAX_WINDOW;
    /* Room for a chunk and a partial record of up to 64 KiB left behind: the steady state of
     * a reader of ordinary records, so that the buffer only grows for big ones. */
    size_t start_cap = STD_WINDOW;
    if (in->max_window < start_cap) {
        in->cap = in->max_window;
        in->buf = ch_malloc(in->cap + CH_JSON_PADDING);
    } else {
        in->buf = pool_get(POOL_WINDOW, start_cap, in->max_window, &in->cap);
    }
    in->name = ch_strdup(name);
    if (in->buf == NULL || in->name == NULL) {
        free_window(in);
        ch_free(in->name);
        ch_free(in);
        return NULL;
    }
    zero_padding(in);
    return in;
}

/* Read up to n raw bytes from the source; 0 at its end, CH_EIO on failure. */
static long src_read(ch_input *in, void *dst, size_t n, ch_error *err)
{
    if (in->src == SRC_MEM) {
        size_t k = in->mem_len - in->mem_pos;
        if (k > n)
            k = n;
        if (k > 0)
            memcpy(dst, in->mem + in->mem_pos, k);
        in->mem_pos += k;
        in->raw_bytes += k;
        return (long)k;
    }
    if (in->ranged && n > in->range_left)
        n = (size_t)in->range_left;
    if (n == 0)
        return 0;
    for (;;) {
        ssize_t r = read(in->fd, dst, n);
        if (r >= 0) {
            in->raw_bytes += (uint64_t)r;
            if (in->ranged)
                in->range_left -= (uint64_t)r;
            return (long)r;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* A non-blocking stdin: wait for it rather than mistake it for an error. */
            struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        return ch_error_set(err, CH_EIO, "%s: read failed: %s", in->name, strerror(errno));
    }
}

const char *ch_input_inflater(void)
{
    const char *want = getenv("COINHOUND_INFLATE");
    if (want != NULL && strcmp(want, "igzip") == 0) {
#ifdef COINHOUND_HAVE_ISAL
        return "igzip";
#else
        return "zlib"; /* a streaming inflater was asked for */
#endif
    }
#ifdef COINHOUND_HAVE_LIBDEFLATE
    /* The default: fuzz_inflate checks that it gives what zlib gives, records and errors. */
    if (want == NULL || strcmp(want, "zlib") != 0)
        return "libdeflate";
#endif
    return "zlib";
}

static int init_zlib(ch_input *in, ch_error *err)
{
    memset(&in->z, 0, sizeof in->z);
    in->gz = GZ_MEMBER;
#ifdef COINHOUND_HAVE_ISAL
    if (in->rereadable && strcmp(ch_input_inflater(), "igzip") == 0) {
        in->iz = ch_malloc(sizeof *in->iz);
        if (in->iz == NULL)
            return ch_error_set(err, CH_ENOMEM, "%s: out of memory", in->name);
        isal_inflate_init(in->iz);
        in->iz->crc_flag = ISAL_GZIP; /* header and trailer (CRC-32, size) checked */
        in->header_seen = false;
        in->impl = GZI_ISAL;
        in->z_ready = true;
        return 0;
    }
#endif
    /* 16 + MAX_WBITS: gzip wrapper only; the magic was checked already. */
    if (inflateInit2(&in->z, 16 + MAX_WBITS) != Z_OK)
        return ch_error_set(err, CH_ENOMEM, "%s: cannot initialise zlib", in->name);
    in->impl = GZI_ZLIB;
    in->z_ready = true;
    return 0;
}

static long feed_zlib(ch_input *in, ch_error *err);

/* gz_step's answer when it switched from igzip to zlib: go round again. */
#define GZ_AGAIN 100

/* One zlib step over in->g. After a switch from igzip (skip > 0), the bytes of the member
 * that were delivered already are inflated into the free space and dropped first. */
static int zlib_step(ch_input *in)
{
    for (;;) {
        uint32_t room = in->g.avail_out;
        if (in->skip > 0 && room > in->skip)
            room = (uint32_t)in->skip;
        in->z.next_in = in->g.next_in;
        in->z.avail_in = in->g.avail_in;
        in->z.next_out = in->g.next_out;
        in->z.avail_out = room;
        int zr = inflate(&in->z, Z_NO_FLUSH);
        uint32_t got = room - in->z.avail_out;
        in->g.next_in = in->z.next_in;
        in->g.avail_in = in->z.avail_in;
        in->g.msg = in->z.msg;
        if (in->skip == 0) {
            in->g.next_out += got;
            in->g.avail_out -= got;
            in->member_out += got;
            return zr;
        }
        in->skip -= got;
        if (zr == Z_STREAM_END)
            in->skip = 0;
        if (zr != Z_OK || (in->skip > 0 && in->g.avail_in == 0))
            return zr; /* damage sooner than igzip saw it, the end, or more input needed */
        if (in->skip == 0)
            return Z_OK;
    }
}

/* Read the current member again from its first compressed byte, dropping the `skip` bytes of
 * it that were delivered already (zlib_step): for gz_fallback and crc_restart, which only run
 * where the input can be read again (memory, regular files). Returns GZ_AGAIN, or Z_DATA_ERROR
 * with in->g.msg when the file cannot be read again. */
static int gz_reread(ch_input *in)
{
    in->skip = in->member_out;
    in->member_out = 0;
    if (in->src == SRC_MEM) {
        in->mem_pos = (size_t)in->member_raw;
        in->raw_bytes = in->member_raw;
        in->g.avail_in = 0;
        ch_error e = {0};
        feed_zlib(in, &e);
        return GZ_AGAIN;
    }
    if (lseek(in->fd, (off_t)in->member_raw, SEEK_SET) < 0) {
        in->g.msg = "cannot read the member again";
        return Z_DATA_ERROR;
    }
    in->raw_bytes = in->member_raw;
    in->src_eof = false;
    in->g.avail_in = 0;
    return GZ_AGAIN; /* the refill loop feeds zlib from the member's start */
}

/* A member streamed without its CRC-32 ended: inflate it again with the check (crc_defer). */
static int crc_restart(ch_input *in)
{
    in->crc_deferred = false;
    inflateReset(&in->z);
    if (inflateValidate(&in->z, 1) != Z_OK) {
        in->g.msg = "cannot initialise zlib";
        return Z_MEM_ERROR;
    }
    return gz_reread(in);
}

#ifdef COINHOUND_HAVE_ISAL
/* igzip met damage. Where a damaged stream stops is each library's own (igzip hands out a few
 * bytes zlib's checks would have refused, and drops some it decoded ahead into a small window),
 * so the member is inflated again with zlib from its start, dropping what was delivered:
 * what comes before damage, and the reason given, are zlib's, whatever the window. Only inputs
 * that can be read again (memory, regular files) use igzip. */
static int gz_fallback(ch_input *in)
{
    ch_free(in->iz);
    in->iz = NULL;
    in->impl = GZI_ZLIB;
    in->z_ready = false;
    memset(&in->z, 0, sizeof in->z);
    if (inflateInit2(&in->z, 16 + MAX_WBITS) != Z_OK) {
        in->g.msg = "cannot initialise zlib";
        return Z_MEM_ERROR;
    }
    in->z_ready = true;
    return gz_reread(in);
}
#endif

#if defined(COINHOUND_HAVE_ISAL) || defined(COINHOUND_HAVE_LIBDEFLATE)
/* A member whose fixed header zlib refuses or checks more closely than igzip (a compression
 * method other than deflate, reserved flag bits, a header CRC) is read by zlib from its first
 * byte: igzip would hand out data before zlib's refusal, and gz_fallback cannot take delivered
 * bytes back; libdeflate skips a header CRC unchecked. Looked at once per member, before igzip
 * or libdeflate reads it. */
static bool header_zlib_only(const ch_input *in)
{
    unsigned char h[4];
    if (in->src == SRC_MEM) {
        if (in->member_raw + sizeof h > in->mem_len)
            return false; /* a cut header: neither library delivers anything */
        memcpy(h, in->mem + in->member_raw, sizeof h);
    } else if (pread(in->fd, h, sizeof h, (off_t)in->member_raw) != (ssize_t)sizeof h) {
        return false;
    }
    return h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || (h[3] & 0xe2) != 0;
}
#endif

#ifdef COINHOUND_HAVE_LIBDEFLATE
/* A small window (the merge's peek at a file's first records: ch_input_more refills it a quarter
 * at a time) stops long before the end of a member that is larger than the window, so the
 * CRC-32 zlib computes over everything it inflates there is never compared with the trailer:
 * it was over a quarter of the peek's zlib instructions on gzip'd S3 objects (docs/BENCHMARKS.md
 * section 62).
 * Such a member, when its trailer (the input's last 4 bytes: member_size) says it is larger
 * than the window, streams without the check, unless its header has a CRC of its own (zlib
 * checks that one only with the check on). Should it end after all (a peek that needs more of
 * the file, a multi-member file the last 4 bytes do not size), or be cut short (zlib with the
 * check on fails a wrong CRC-32 before it misses the length after it), it is inflated again
 * from its start with the check on, its delivered bytes dropped (crc_restart), so the bytes and
 * the failure (reason, compressed offset) are zlib's with the check throughout. */
static void crc_defer(ch_input *in)
{
    if (in->impl != GZI_ZLIB || !in->rereadable || !small_window(in) ||
        in->isize_hint <= in->max_window || in->member_out > 0 || header_zlib_only(in) ||
        inflateValidate(&in->z, 0) != Z_OK) /* header_zlib_only: also a header CRC (FHCRC) */
        return;
    in->crc_deferred = true;
}
#endif

/* One inflate step over in->g, with zlib's return codes whichever library runs it: Z_OK
 * (progress), Z_STREAM_END (the member and its trailer are done), Z_BUF_ERROR (no progress
 * possible without more input or room), Z_DATA_ERROR (damage; in->g.msg says why). */
static int gz_step(ch_input *in)
{
#ifdef COINHOUND_HAVE_ISAL
    if (in->impl == GZI_ISAL) {
        if (!in->header_seen) {
            in->header_seen = true;
            if (header_zlib_only(in))
                return gz_fallback(in); /* nothing of the member was delivered: skip is 0 */
        }
        struct inflate_state *s = in->iz;
        uint32_t in0 = in->g.avail_in, out0 = in->g.avail_out;
        s->next_in = in->g.next_in;
        s->avail_in = in->g.avail_in;
        s->next_out = in->g.next_out;
        s->avail_out = in->g.avail_out;
        int rc = isal_inflate(s);
        if (rc < 0)
            return gz_fallback(in); /* this step's output is decoded again by zlib */
        in->g.next_in = s->next_in;
        in->g.avail_in = s->avail_in;
        in->g.next_out = s->next_out;
        in->g.avail_out = s->avail_out;
        in->member_out += out0 - in->g.avail_out;
        if (s->block_state == ISAL_BLOCK_FINISH)
            return Z_STREAM_END;
        return in->g.avail_in == in0 && in->g.avail_out == out0 ? Z_BUF_ERROR : Z_OK;
    }
#endif
    int zr = zlib_step(in);
    if (zr == Z_STREAM_END && in->crc_deferred)
        return crc_restart(in);
    return zr;
}

/* Start the next member, which begins at the current input position. */
static uint64_t z_offset(const ch_input *in);
static void gz_reset(ch_input *in)
{
    in->member_raw = z_offset(in);
    in->member_out = 0;
    in->member_tried = false;
#ifdef COINHOUND_HAVE_ISAL
    if (in->impl == GZI_ISAL) {
        isal_inflate_reset(in->iz);
        in->iz->crc_flag = ISAL_GZIP;
        in->header_seen = false;
        return;
    }
#endif
    inflateReset(&in->z);
    if (in->crc_deferred) { /* inflateReset keeps the check switched off */
        inflateValidate(&in->z, 1);
        in->crc_deferred = false;
    }
}

static void gz_end(ch_input *in)
{
#ifdef COINHOUND_HAVE_ISAL
    if (in->impl == GZI_ISAL) {
        ch_free(in->iz);
        in->iz = NULL;
        return;
    }
#endif
    inflateEnd(&in->z);
}

/* Read the first bytes and decide between gzip and plain. */
static int sniff(ch_input *in, ch_error *err)
{
    if (in->src == SRC_MEM) {
        in->gzip = in->mem_len >= 2 && in->mem[0] == 0x1f && in->mem[1] == 0x8b;
        if (in->gzip) {
            int rc = init_zlib(in, err);
            if (rc < 0)
                return rc;
            in->g.next_in = (unsigned char *)in->mem;
            in->g.avail_in = in->mem_len > UINT32_MAX ? UINT32_MAX : (uint32_t)in->mem_len;
            in->mem_pos = in->g.avail_in;
            in->raw_bytes = in->g.avail_in;
        }
        return 0;
    }
    in->zin = zchunk_get();
    if (in->zin == NULL)
        return ch_error_set(err, CH_ENOMEM, "%s: out of memory", in->name);
    size_t got = 0;
    while (got < 2) { /* a pipe may deliver one byte at a time */
        long r = src_read(in, in->zin + got, zread_size(in) - got, err);
        if (r < 0)
            return (int)r;
        if (r == 0) {
            in->src_eof = true;
            break;
        }
        got += (size_t)r;
    }
    in->gzip = got >= 2 && in->zin[0] == 0x1f && in->zin[1] == 0x8b;
    if (in->gzip) {
        int rc = init_zlib(in, err);
        if (rc < 0)
            return rc;
        in->g.next_in = in->zin;
        in->g.avail_in = (uint32_t)got;
    } else {
        /* Plain: what was read is delivered by the first refill, then the chunk is freed. */
        in->pending = in->zin;
        in->pending_len = got;
        in->zin = NULL;
        if (got == 0) {
            zchunk_put(in->pending);
            in->pending = NULL;
        }
    }
    return 0;
}

int ch_input_open(ch_input **out, const char *path, size_t max_window, ch_error *err)
{
    int rc = 0;
    bool is_stdin = strcmp(path, "-") == 0;
    ch_input *in = NULL;
    *out = NULL;
    in = input_new(is_stdin ? "<stdin>" : path, max_window);
    if (in == NULL)
        return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
    in->src = SRC_FD;
    if (is_stdin) {
        in->fd = STDIN_FILENO;
    } else {
        in->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (in->fd < 0) {
            rc = ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
            goto cleanup;
        }
        in->own_fd = true;
        struct stat st;
        if (fstat(in->fd, &st) != 0) {
            rc = ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
            goto cleanup;
        }
        /* open(2) accepts a directory; reading it fails with EISDIR. Say so now. */
        if (S_ISDIR(st.st_mode)) {
            rc = ch_error_set(err, CH_EIO, "%s: %s", path, strerror(EISDIR));
            goto cleanup;
        }
        if (S_ISREG(st.st_mode)) {
            (void)posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
            in->rereadable = true;
        }
    }
    rc = sniff(in, err);
    if (rc < 0)
        goto cleanup;
    *out = in;
    in = NULL;
cleanup:
    ch_input_close(in);
    return rc;
}

int ch_input_open_mem(ch_input **out, const char *name, const void *data, size_t len,
                      size_t max_window, ch_error *err)
{
    *out = NULL;
    ch_input *in = input_new(name ? name : "<memory>", max_window);
    if (in == NULL)
        return ch_error_set(err, CH_ENOMEM, "%s: out of memory", name ? name : "<memory>");
    in->src = SRC_MEM;
    in->rereadable = true;
    in->mem = data;
    in->mem_len = data ? len : 0;
    int rc = sniff(in, err);
    if (rc < 0) {
        ch_input_close(in);
        return rc;
    }
    *out = in;
    return 0;
}

int ch_input_open_range(ch_input **out, const char *path, uint64_t start, uint64_t end,
                        size_t max_window, ch_error *err)
{
    *out = NULL;
    ch_input *in = input_new(path, max_window);
    if (in == NULL)
        return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
    in->src = SRC_FD;
    in->fd = open(path, O_RDONLY | O_CLOEXEC);
    in->own_fd = in->fd >= 0;
    if (in->fd < 0 || lseek(in->fd, (off_t)start, SEEK_SET) != (off_t)start) {
        int rc = ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
        ch_input_close(in);
        return rc;
    }
    (void)posix_fadvise(in->fd, (off_t)start, (off_t)(end - start), POSIX_FADV_SEQUENTIAL);
    in->ranged = true;
    in->origin = in->offset = start;
    in->range_left = end > start ? end - start : 0;
    *out = in;
    return 0;
}

uint64_t ch_input_origin(const ch_input *in) { return in->origin; }
uint64_t ch_input_newlines(const ch_input *in) { return in->newlines; }

void ch_input_close(ch_input *in)
{
    if (in == NULL)
        return;
    if (in->own_fd && in->fd >= 0)
        close(in->fd);
    if (in->z_ready)
        gz_end(in);
    zchunk_put(in->zin);
    zchunk_put(in->pending); /* the sniffed chunk of a plain input */
    read_buf_free(in->wfile);
#ifdef COINHOUND_HAVE_LIBDEFLATE
    if (in->ld != NULL)
        libdeflate_free_decompressor(in->ld);
#endif
    free_window(in);
    ch_free(in->name);
    ch_free(in);
}

const char *ch_input_name(const ch_input *in) { return in->name; }
bool ch_input_is_gzip(const ch_input *in) { return in->gzip; }
size_t ch_input_max_window(const ch_input *in) { return in->max_window; }
uint64_t ch_input_raw_bytes(const ch_input *in) { return in->raw_bytes; }
uint64_t ch_input_whole_members(const ch_input *in) { return in->whole_members; }

const char *ch_input_data(const ch_input *in, size_t *len)
{
    *len = in->end - in->start;
    return in->buf + in->start;
}

uint64_t ch_input_offset(const ch_input *in) { return in->offset; }
uint64_t ch_input_bytes(const ch_input *in) { return in->offset + (in->end - in->start); }
bool ch_input_eof(const ch_input *in) { return in->eof; }
bool ch_input_failed(const ch_input *in) { return in->fail != 0; }

void ch_input_consume(ch_input *in, size_t n)
{
    size_t have = in->end - in->start;
    if (n > have)
        n = have;
    in->start += n;
    in->offset += n;
    /* Another reader moved the window under the line reader: its memory of it is void. */
    in->line_scan = 0;
    in->line_taken = 0;
    if (in->start == in->end) {
        in->start = in->end = 0; /* empty: restart at the front without a memmove */
        zero_padding(in);
    }
}

static int set_fail(ch_input *in, int code, ch_error *src)
{
    in->fail = code;
    in->eof = true;
    snprintf(in->fail_msg, sizeof in->fail_msg, "%s", src->msg);
    return code;
}

/* Plain input: pending sniffed bytes first, then the source itself. */
static long fill_plain(ch_input *in, char *dst, size_t want, ch_error *err)
{
    if (in->pending != NULL) {
        size_t k = in->pending_len - in->pending_pos;
        if (k > want)
            k = want;
        memcpy(dst, in->pending + in->pending_pos, k);
        in->pending_pos += k;
        if (in->pending_pos == in->pending_len) {
            zchunk_put(in->pending);
            in->pending = NULL;
        }
        return (long)k;
    }
    if (in->src_eof)
        return 0;
    long r = src_read(in, dst, want, err);
    if (r == 0)
        in->src_eof = true;
    return r;
}

/* Compressed offset of the next byte zlib would read. */
static uint64_t z_offset(const ch_input *in) { return in->raw_bytes - in->g.avail_in; }

/* Get more compressed input into zlib. Returns > 0, 0 at the source's end, or a failure. */
static long feed_zlib(ch_input *in, ch_error *err)
{
    if (in->src == SRC_MEM) {
        /* Inputs over 4 GiB are fed in UINT32_MAX slices (avail_in is 32-bit). */
        size_t k = in->mem_len - in->mem_pos;
        if (k > UINT32_MAX)
            k = UINT32_MAX;
        in->g.next_in = (unsigned char *)in->mem + in->mem_pos;
        in->g.avail_in = (uint32_t)k;
        in->mem_pos += k;
        in->raw_bytes += k;
        return (long)k;
    }
    if (in->src_eof)
        return 0;
    long r = src_read(in, in->zin, zread_size(in), err);
    if (r == 0)
        in->src_eof = true;
    if (r > 0) {
        in->g.next_in = in->zin;
        in->g.avail_in = (uint32_t)r;
    }
    return r;
}

/*
 * Inflate up to `want` bytes into dst. Returns bytes produced (>= 0); a failure met on the way
 * is recorded as sticky (in->fail) and reported by the next refill, so the bytes before it are
 * delivered first. Stops as soon as something was produced and zlib needs more input: a pipe
 * then delivers what it has instead of blocking for a full chunk.
 */
static size_t fill_gzip(ch_input *in, char *dst, size_t want)
{
    ch_error e = {0};
    in->g.next_out = (unsigned char *)dst;
    in->g.avail_out = (uint32_t)want;
    while (in->g.avail_out > 0) {
        if (in->g.avail_in == 0) {
            if (in->g.avail_out < want)
                break;
            long r = feed_zlib(in, &e);
            if (r < 0) {
                set_fail(in, (int)r, &e);
                break;
            }
            if (r == 0) {
                if (in->gz == GZ_MEMBER) {
                    /* zlib may still hold output that did not fit when the last call filled
                     * dst (the rest of a match, codes already taken from the input), and even
                     * the member's end: drain it before calling the stream truncated. Without
                     * this, a byte or more before the damage was lost, or a whole member
                     * reported truncated, depending on where the window ended (fuzz_input). */
                    uint32_t before = in->g.avail_out;
                    int zr = gz_step(in);
                    if (zr == GZ_AGAIN)
                        continue;
                    if (zr == Z_STREAM_END) {
                        in->gz = GZ_BETWEEN;
                        continue;
                    }
                    if (zr == Z_OK && in->g.avail_out < before)
                        continue;
#ifdef COINHOUND_HAVE_ISAL
                    /* Truncated: how much comes out before the cut is zlib's to say too. */
                    if (in->impl == GZI_ISAL && gz_fallback(in) == GZ_AGAIN)
                        continue;
#endif
                    /* Cut in a member streamed without its CRC-32: zlib with the check on may
                     * fail the check before it misses the length that follows (fuzz_inflate),
                     * so the end is its to say. */
                    if (in->crc_deferred && crc_restart(in) == GZ_AGAIN)
                        continue;
                    if (zr != Z_OK && zr != Z_BUF_ERROR)
                        ch_error_set(&e, CH_EPARSE, "gzip data error at compressed offset %llu: %s",
                                     (unsigned long long)z_offset(in),
                                     in->g.msg ? in->g.msg : "corrupt");
                    else
                        ch_error_set(&e, CH_EPARSE,
                                     "gzip stream truncated at compressed offset %llu",
                                     (unsigned long long)in->raw_bytes);
                    set_fail(in, CH_EPARSE, &e);
                } else {
                    in->eof = true;
                }
                break;
            }
        }
        if (in->gz == GZ_BETWEEN) {
            /* What follows a member: another member, zero padding, or garbage. */
            if (in->g.next_in[0] == 0) {
                while (in->g.avail_in > 0 && in->g.next_in[0] == 0) {
                    in->g.next_in++;
                    in->g.avail_in--;
                }
                if (in->g.avail_in == 0)
                    continue;
            }
            if (in->g.next_in[0] != 0x1f) {
                ch_error_set(&e, CH_EPARSE,
                             "trailing garbage after gzip member at compressed offset %llu",
                             (unsigned long long)z_offset(in));
                set_fail(in, CH_EPARSE, &e);
                break;
            }
            gz_reset(in);
            in->gz = GZ_MEMBER;
            if (!in->whole_off)
                break; /* ch_input_more offers the member to whole_member first */
        }
        int zr = gz_step(in);
        if (zr == GZ_AGAIN)
            continue;
        if (zr == Z_STREAM_END) {
            in->gz = GZ_BETWEEN;
        } else if (zr == Z_BUF_ERROR && in->g.avail_in == 0) {
            /* No progress without more input: the loop feeds it. */
        } else if (zr != Z_OK) {
            ch_error_set(&e, CH_EPARSE, "gzip data error at compressed offset %llu: %s",
                         (unsigned long long)z_offset(in), in->g.msg ? in->g.msg : "corrupt");
            set_fail(in, CH_EPARSE, &e);
            break;
        }
    }
    return want - in->g.avail_out;
}

/* Make room for `want` more bytes after the unconsumed ones. */
static int make_room(ch_input *in, size_t want, ch_error *err)
{
    size_t have = in->end - in->start;
    if (in->start > 0) {
        memmove(in->buf, in->buf + in->start, have);
        in->start = 0;
        in->end = have;
        zero_padding(in); /* stale bytes now follow the data */
    }
    if (in->cap - in->end >= want)
        return 0;
    size_t ncap = in->cap;
    while (ncap - have < want)
        ncap = ncap > in->max_window / 2 ? in->max_window : ncap * 2;
    char *nb = ch_realloc(in->buf, ncap + CH_JSON_PADDING);
    if (nb == NULL)
        return ch_error_set(err, CH_ENOMEM, "%s: out of memory growing the window to %zu bytes",
                            in->name, ncap);
    in->buf = nb;
    in->cap = ncap;
    return 0;
}

#ifdef COINHOUND_HAVE_LIBDEFLATE
/* A member was inflated whole: look at what follows it now, as zlib's loop in fill_gzip does
 * in the refill that ends a member (zero padding is skipped, and garbage fails the input with
 * the member's bytes, not one refill later); the end of the input and another member are left
 * to the next refill, as zlib leaves them once it has produced something. The same state after
 * the same bytes as zlib: tests/fuzz/fuzz_inflate.c compares the two. */
static void after_member(ch_input *in)
{
    while (in->g.avail_in > 0 && in->g.next_in[0] == 0) {
        in->g.next_in++;
        in->g.avail_in--;
    }
    if (in->g.avail_in > 0 && in->g.next_in[0] != 0x1f) {
        ch_error e = {0};
        ch_error_set(&e, CH_EPARSE, "trailing garbage after gzip member at compressed offset %llu",
                     (unsigned long long)z_offset(in));
        set_fail(in, CH_EPARSE, &e);
    }
}

/* Bring a regular file into memory whole, once, so that each of its members can be inflated
 * whole and, on damage, again by the streaming inflater; the input goes on as a memory input.
 * A file that fitted in the sniffed chunk (most S3 objects) is there already. False when the
 * file is too big, is still growing or cannot be read: it streams as before. */
static bool whole_file(ch_input *in)
{
    if (in->src == SRC_MEM)
        return in->mem_len <= UINT32_MAX && in->mem_pos == in->mem_len;
    struct stat st;
    if (fstat(in->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > WHOLE_MAX_IN)
        return false;
    size_t size = (size_t)st.st_size;
    uint64_t at = z_offset(in);
    unsigned char one;
    if (at > size || pread(in->fd, &one, 1, (off_t)size) != 0)
        return false; /* still growing (or unreadable): what streams is what is there */
    unsigned char *buf = in->zin;
    if (in->raw_bytes != size || size > ZCHUNK || in->g.next_in != in->zin + at) {
        buf = read_buf_alloc(size);
        size_t got = 0;
        while (buf != NULL && got < size) {
            ssize_t r = pread(in->fd, buf + got, size - got, (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (buf == NULL || got != size) {
            read_buf_free(buf);
            return false;
        }
        in->wfile = buf;
    }
    in->src = SRC_MEM;
    in->mem = buf;
    in->mem_len = size;
    in->mem_pos = size;
    in->raw_bytes = size;
    in->g.next_in = buf + at;
    in->g.avail_in = (uint32_t)(size - at);
    return true;
}

/* The size the member that starts here inflates to, if it may be inflated whole into this
 * window: the gzip trailer's, the input's last 4 bytes, exact for the last member (an S3
 * object has one); an earlier, bigger member of a multi-member file streams. 0 when the member
 * streams; -1 when no member of this input can be read whole. A file not read whole yet is
 * asked with one pread(2) before whole_file reads it: a small window (the merge's peek), which
 * an S3 object never fits, then reads only the few KiB it streams. */
static long long member_size(ch_input *in)
{
    uint64_t at = z_offset(in), len;
    unsigned char t[4];
    in->isize_hint = 0; /* not known (yet) for this member */
    if (in->src == SRC_MEM) {
        len = in->mem_len;
        if (len < at + 18)
            return 0;
        memcpy(t, in->mem + len - 4, sizeof t);
    } else {
        struct stat st;
        if (fstat(in->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
            (uint64_t)st.st_size > WHOLE_MAX_IN)
            return -1; /* as whole_file would find */
        len = (uint64_t)st.st_size;
        if (len < at + 18)
            return 0;
        if (in->raw_bytes == len && in->g.next_in == in->zin + at && len <= ZCHUNK)
            memcpy(t, in->zin + len - 4, sizeof t); /* the whole file is in the first chunk */
        else if (pread(in->fd, t, sizeof t, (off_t)(len - 4)) != (ssize_t)sizeof t)
            return -1;
    }
    size_t isize = ch_le_get32(t);
    in->isize_hint = isize;
    size_t have = in->end - in->start;
    if (isize == 0 || isize > WHOLE_MAX_OUT || have + isize > in->max_window)
        return 0;
    return (long long)isize;
}

/* Inflate the member that starts here whole, straight into the window, with libdeflate (the
 * opening comment). Its output counts only when libdeflate checked all of it; otherwise nothing
 * was delivered and the streaming inflater reads the member. Returns the bytes added, 0 when the
 * member streams. */
static size_t whole_member(ch_input *in)
{
    in->member_tried = true;
    if (in->whole_off)
        return 0;
    long long fits = -1;
    if (!in->rereadable || in->impl != GZI_ZLIB || strcmp(ch_input_inflater(), "libdeflate") != 0 ||
        (fits = member_size(in)) < 0 || (fits > 0 && !whole_file(in))) {
        in->whole_off = true;
        return 0;
    }
    if (fits == 0) {
        crc_defer(in); /* it streams: through a small window, without its CRC */
        return 0;
    }
    if (header_zlib_only(in))
        return 0;
    if (in->ld == NULL && (in->ld = libdeflate_alloc_decompressor()) == NULL) {
        in->whole_off = true;
        return 0;
    }
    size_t at = (size_t)z_offset(in);
    const unsigned char *src = in->mem + at;
    size_t n = in->mem_len - at;
    size_t isize = (size_t)fits;
    ch_error e = {0};
    if (make_room(in, isize, &e) < 0)
        return 0;
    size_t used = 0, out = 0;
    if (libdeflate_gzip_decompress_ex(in->ld, src, n, in->buf + in->end, in->cap - in->end, &used,
                                      &out) != LIBDEFLATE_SUCCESS)
        return 0;
    in->member_out = out;
    in->whole_members++;
    in->g.next_in = (unsigned char *)src + used;
    in->g.avail_in = (uint32_t)(n - used);
    in->gz = GZ_BETWEEN;
    after_member(in);
    return out;
}
#endif

int ch_input_more(ch_input *in, ch_error *err)
{
    if (in->fail) {
        ch_error_set(err, in->fail, "%s", in->fail_msg);
        return in->fail;
    }
    if (in->eof)
        return 0;
    size_t have = in->end - in->start;
    if (have >= in->max_window)
        return ch_error_set(err, CH_ELIMIT, "%s: window full (%zu bytes unconsumed)", in->name,
                            have);
    /* A small window (a peek at a file's first records: src/parse/merge.c) refills a quarter at
     * a time, so that no more of a gzip'd file is inflated than is read; a peek at each of 30 S3
     * objects had inflated 256 KiB of each, 10% of a run's instructions. */
    size_t step = small_window(in) ? in->max_window / 4 : CH_INPUT_CHUNK;
    size_t want = in->max_window - have;
    if (want > step)
        want = step;
    /* Read a little less rather than grow the buffer while there is half a chunk of room. */
    size_t room = in->cap - have;
    if (room < want && room >= CH_INPUT_CHUNK / 2)
        want = room;
    int rc = make_room(in, want, err);
    if (rc < 0)
        return rc;
    /* A refill that produced nothing but did not end the input (gzip header bytes only, a
     * member boundary) simply goes round again. */
    for (;;) {
        size_t got = 0;
        if (in->gzip) {
#ifdef COINHOUND_HAVE_LIBDEFLATE
            if (in->gz == GZ_MEMBER && !in->member_tried)
                got = whole_member(in);
            if (got == 0)
#endif
                got = fill_gzip(in, in->buf + in->end, want);
        } else {
            ch_error e = {0};
            long r = fill_plain(in, in->buf + in->end, want, &e);
            if (r < 0) {
                set_fail(in, (int)r, &e);
                got = 0;
            } else {
                got = (size_t)r;
                if (r == 0)
                    in->eof = true;
            }
        }
        if (got > 0) {
            if (in->ranged) /* memchr runs at memory speed: a few us per MiB */
                for (const char *q = in->buf + in->end, *e = q + got;
                     (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++)
                    in->newlines++;
            in->end += got;
            zero_padding(in);
            return (int)got;
        }
        if (in->fail) {
            ch_error_set(err, in->fail, "%s", in->fail_msg);
            return in->fail;
        }
        if (in->eof)
            return 0;
    }
}

long ch_input_fill(ch_input *in, size_t n, ch_error *err)
{
    while (in->end - in->start < n) {
        int r = ch_input_more(in, err);
        if (r == 0 || r == CH_ELIMIT)
            break;
        if (r < 0) {
            if (in->end > in->start)
                break; /* the failure comes again on the next refill */
            return r;
        }
    }
    return (long)(in->end - in->start);
}

int ch_input_line(ch_input *in, size_t max_line, const char **line, size_t *len, uint64_t *line_no,
                  ch_error *err)
{
    if (in->line_taken > 0) {
        size_t n = in->line_taken;
        ch_input_consume(in, n);
    }
    for (;;) {
        size_t have = in->end - in->start;
        const char *base = in->buf + in->start;
        const char *nl = NULL;
        if (in->line_scan < have)
            nl = memchr(base + in->line_scan, '\n', have - in->line_scan);
        if (nl != NULL) {
            size_t n = (size_t)(nl - base);
            size_t content = n > 0 && base[n - 1] == '\r' ? n - 1 : n;
            in->line_scan = 0;
            if (in->line_skip || content > max_line) {
                bool was_skipping = in->line_skip;
                in->line_skip = false;
                ch_input_consume(in, n + 1);
                if (!was_skipping)
                    in->line_no++;
                *line_no = in->line_no;
                return ch_error_set(err, CH_ELIMIT, "%s:%llu: line longer than %zu bytes", in->name,
                                    (unsigned long long)in->line_no, max_line);
            }
            in->line_no++;
            *line = base;
            *len = content;
            *line_no = in->line_no;
            in->line_taken = n + 1;
            return 1;
        }
        /* No newline in the window. A line already too long (one byte of slack for a '\r'
         * that may precede the newline) is dropped as it streams by. */
        if (!in->line_skip && have > max_line + 1) {
            in->line_skip = true;
            in->line_no++;
        }
        if (in->line_skip) {
            ch_input_consume(in, have);
        } else {
            in->line_scan = have;
        }
        int r = ch_input_more(in, err);
        if (r > 0)
            continue;
        if (r == CH_ELIMIT) {
            /* The window is full of one line shorter than max_line: too long all the same. */
            in->line_skip = true;
            in->line_no++;
            ch_input_consume(in, in->end - in->start);
            continue;
        }
        if (r < 0)
            return r;
        /* End of input. */
        have = in->end - in->start;
        in->line_scan = 0;
        if (!in->line_skip && have > max_line) {
            in->line_skip = true;
            in->line_no++;
        }
        if (in->line_skip) {
            in->line_skip = false;
            ch_input_consume(in, have);
            *line_no = in->line_no;
            return ch_error_set(err, CH_ELIMIT, "%s:%llu: line longer than %zu bytes", in->name,
                                (unsigned long long)in->line_no, max_line);
        }
        if (have == 0)
            return 0;
        in->line_no++;
        *line = in->buf + in->start;
        *len = have;
        *line_no = in->line_no;
        in->line_taken = have;
        return 1;
    }
}
