/*
 * inflate_bench.c - zlib, libdeflate and ISA-L igzip inflating the same gzip'd files, in one
 * invocation, so their ratios do not depend on what else the machine was doing in another run.
 *
 * The files are read into memory first; each round then inflates every file once with each
 * library in turn (the order rotates per round, so a burst of load from other processes is
 * spread over all three), and the best round of each is kept. zlib and igzip stream into a
 * 1 MiB window as src/ingest/input.c does (the window is overwritten, never grown); libdeflate
 * has no streaming interface, so it inflates a whole member into a buffer sized from the gzip
 * trailer (ISIZE), which is the memory cost the comparison has to weigh. Every library's output
 * is checked against zlib's byte count and CRC-32 in a first, untimed pass (a CRC in the timed
 * rounds would add the same cost to all three and flatten the ratios).
 *
 * Build: cc -O2 -o inflate_bench bench/inflate_bench.c -lz -ldeflate -lisal
 * Usage: inflate_bench [--rounds R] FILE.gz...
 */
#define _GNU_SOURCE
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define WINDOW (1u << 20)

typedef struct blob {
    unsigned char *p;
    size_t n;
} blob;

typedef struct result {
    uint64_t bytes;
    uint32_t crc;
    bool check; /* CRC the output (the untimed verification pass only) */
} result;

static void account(result *r, const unsigned char *p, size_t n)
{
    r->bytes += n;
    if (r->check)
        r->crc = (uint32_t)crc32(r->crc, p, (uInt)n);
}

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int inflate_zlib(const blob *b, unsigned char *win, result *r)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return -1;
    z.next_in = b->p;
    z.avail_in = (uInt)b->n;
    int zr = Z_OK;
    while (zr != Z_STREAM_END) {
        z.next_out = win;
        z.avail_out = WINDOW;
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            inflateEnd(&z);
            return -1;
        }
        account(r, win, WINDOW - z.avail_out);
        if (zr == Z_STREAM_END && z.avail_in > 0) { /* another member */
            inflateReset(&z);
            zr = Z_OK;
        }
    }
    inflateEnd(&z);
    return 0;
}

static int inflate_isal(const blob *b, unsigned char *win, result *r)
{
    struct inflate_state st;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_GZIP;
    st.next_in = b->p;
    st.avail_in = (uint32_t)b->n;
    for (;;) {
        st.next_out = win;
        st.avail_out = WINDOW;
        int rc = isal_inflate(&st);
        if (rc != ISAL_DECOMP_OK)
            return -1;
        size_t got = WINDOW - st.avail_out;
        account(r, win, got);
        if (st.block_state == ISAL_BLOCK_FINISH) {
            if (st.avail_in == 0)
                return 0;
            const uint8_t *next = st.next_in;
            uint32_t left = st.avail_in;
            isal_inflate_reset(&st);
            st.crc_flag = ISAL_GZIP;
            st.next_in = (uint8_t *)next;
            st.avail_in = left;
        } else if (got == 0 && st.avail_in == 0) {
            return -1; /* truncated */
        }
    }
}

static int inflate_libdeflate(struct libdeflate_decompressor *d, const blob *b, unsigned char **out,
                              size_t *cap, result *r)
{
    const unsigned char *p = b->p;
    size_t left = b->n;
    while (left > 0) {
        /* ISIZE of the last member is all a whole-buffer API can size by; members are
         * inflated one by one, each sized by trying and doubling. */
        size_t in_used = 0, got = 0;
        for (;;) {
            enum libdeflate_result lr =
                libdeflate_gzip_decompress_ex(d, p, left, *out, *cap, &in_used, &got);
            if (lr == LIBDEFLATE_SUCCESS)
                break;
            if (lr != LIBDEFLATE_INSUFFICIENT_SPACE)
                return -1;
            *cap *= 2;
            free(*out);
            *out = malloc(*cap);
            if (*out == NULL)
                return -1;
        }
        account(r, *out, got);
        p += in_used;
        left -= in_used;
    }
    return 0;
}

static blob slurp(const char *path)
{
    blob b = {0};
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    b.n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(b.n ? b.n : 1);
    if (b.p == NULL || fread(b.p, 1, b.n, f) != b.n) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(1);
    }
    fclose(f);
    return b;
}

int main(int argc, char **argv)
{
    int rounds = 5, first = 1;
    if (argc > 2 && strcmp(argv[1], "--rounds") == 0) {
        rounds = atoi(argv[2]);
        first = 3;
    }
    if (first >= argc || rounds < 1) {
        fprintf(stderr, "usage: inflate_bench [--rounds R] FILE.gz...\n");
        return 2;
    }
    size_t nf = (size_t)(argc - first);
    blob *files = calloc(nf, sizeof *files);
    size_t comp = 0;
    for (size_t i = 0; i < nf; i++) {
        files[i] = slurp(argv[first + (int)i]);
        comp += files[i].n;
    }
    unsigned char *win = malloc(WINDOW);
    size_t ld_cap = 4u << 20;
    unsigned char *ld_out = malloc(ld_cap);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    const char *names[3] = {"zlib", "libdeflate", "isal-igzip"};
    double best_cpu[3] = {1e30, 1e30, 1e30}, best_wall[3] = {1e30, 1e30, 1e30};
    /* Verification first, untimed: every library's output against zlib's length and CRC. */
    result ref = {.check = true};
    for (int impl = 0; impl < 3; impl++) {
        result r = {.check = true};
        for (size_t i = 0; i < nf; i++) {
            int rc = impl == 0   ? inflate_zlib(&files[i], win, &r)
                     : impl == 1 ? inflate_libdeflate(d, &files[i], &ld_out, &ld_cap, &r)
                                 : inflate_isal(&files[i], win, &r);
            if (rc != 0) {
                fprintf(stderr, "%s: %s failed\n", argv[first + (int)i], names[impl]);
                return 1;
            }
        }
        if (impl == 0)
            ref = r;
        else if (r.bytes != ref.bytes || r.crc != ref.crc) {
            fprintf(stderr, "%s: output differs from zlib's\n", names[impl]);
            return 1;
        }
    }
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < 3; k++) {
            int impl = (k + round) % 3;
            result r = {0};
            double c0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
            for (size_t i = 0; i < nf; i++) {
                int rc = impl == 0   ? inflate_zlib(&files[i], win, &r)
                         : impl == 1 ? inflate_libdeflate(d, &files[i], &ld_out, &ld_cap, &r)
                                     : inflate_isal(&files[i], win, &r);
                if (rc != 0) {
                    fprintf(stderr, "%s: %s failed\n", argv[first + (int)i], names[impl]);
                    return 1;
                }
            }
            double c = now(CLOCK_PROCESS_CPUTIME_ID) - c0, w = now(CLOCK_MONOTONIC) - w0;
            if (r.bytes != ref.bytes) {
                fprintf(stderr, "%s: output differs from zlib's\n", names[impl]);
                return 1;
            }
            if (c < best_cpu[impl])
                best_cpu[impl] = c;
            if (w < best_wall[impl])
                best_wall[impl] = w;
        }
    }
    printf("files=%zu compressed=%zu inflated=%llu rounds=%d\n", nf, comp,
           (unsigned long long)ref.bytes, rounds);
    for (int i = 0; i < 3; i++)
        printf("impl=%s cpu_s=%.3f wall_s=%.3f MBps_cpu=%.0f x_zlib_cpu=%.2f x_zlib_wall=%.2f "
               "peak_out_buf=%zu\n",
               names[i], best_cpu[i], best_wall[i], (double)ref.bytes / best_cpu[i] / 1e6,
               best_cpu[0] / best_cpu[i], best_wall[0] / best_wall[i],
               i == 1 ? ld_cap : (size_t)WINDOW);
    libdeflate_free_decompressor(d);
    free(ld_out);
    free(win);
    for (size_t i = 0; i < nf; i++)
        free(files[i].p);
    free(files);
    return 0;
}
