/*
 * test_evstore_hot.c - hot segments (ch__segb_init_hot), which `analyze` and `serve` seal on the
 * ingest path and compaction rewrites cold: one is a format 3 segment without block-0
 * dictionaries that every reader accepts, verifies like a cold one, returns every event as
 * written, and answers every search (indexed lookups, counts from the index, scans of the
 * original records) exactly as the cold format 6 segment of the same events does; a damaged
 * hot segment is refused with the stream named. The same for `store hot raw`'s segments
 * (ch__segb_init_raw), whose frames are zstd frames of raw blocks made by segment.c: libzstd
 * decodes every one of them (one-shot and streaming, with the smallest window) to the bytes
 * the level-1 hot segment's frames hold. A raw builder that spills (the store's) holds no full
 * block in memory and writes the bytes of one that does not, and a sealed one leaves its original
 * frames out of the page cache.
 */
#define EVSTORE_TEST_TAG "hot"
#include "evstore_formats.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

/* The NEV events as a hot segment at path. */
static void write_hot(void)
{
    ch_seg_builder b;
    ch__segb_init_hot(&b, CH_DS_CLOUDTRAIL, 477048);
    write_events(&b, 0x40000000u);
}

/* The NEV events as a `store hot raw` segment at path. */
static void write_raw(void)
{
    ch_seg_builder b;
    ch__segb_init_raw(&b, CH_DS_CLOUDTRAIL, 477048);
    write_events(&b, 0x40000000u);
}

/* Every frame of the segment file buf (format 3: per block its typed and original frames, then
 * the index area as concatenated frames), decompressed, back to back into out. */
static void inflate_frames(const uint8_t *buf, size_t n, ch_buf *out)
{
    ch_buf_clear(out);
    uint32_t nb = ch_le_get32(buf + 56);
    const uint8_t *bt = buf + ch_le_get64(buf + 64);
    for (uint32_t k = 0; k < nb; k++)
        for (int st = 0; st < 2; st++) {
            const uint8_t *e = bt + (size_t)k * 48 + (st ? 28 : 8);
            uint64_t off =
                st ? ch_le_get64(bt + (size_t)k * 48 + 40) : ch_le_get64(bt + (size_t)k * 48);
            size_t zl = ch_le_get32(e), rl = ch_le_get32(e + 4);
            assert_true(off + zl <= n);
            assert_int_equal(ch_buf_reserve(out, rl), 0);
            assert_int_equal(ZSTD_decompress(out->data + out->len, rl, buf + off, zl), rl);
            out->len += rl;
        }
    uint64_t ix = ch_le_get64(buf + 72);
    size_t izl = ch_le_get32(buf + 80), irl = ch_le_get32(buf + 84);
    assert_int_equal(ch_buf_reserve(out, irl), 0);
    assert_int_equal(ZSTD_decompress(out->data + out->len, irl, buf + ix, izl), irl);
    out->len += irl;
}

static void test_raw_frame_is_a_zstd_frame_libzstd_decodes(void **state)
{
    (void)state;
    /* around the 128 KiB block size, empty, and several blocks */
    static const size_t sizes[] = {0, 1, 131071, 131072, 131073, 3 * 131072 + 5};
    uint8_t *src = malloc(3 * 131072 + 5);
    for (size_t i = 0; i < 3 * 131072 + 5; i++)
        src[i] = (uint8_t)(i * 2654435761u >> 13);
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        size_t n = sizes[t];
        uint8_t *z = malloc(ch__seg_raw_bound(n));
        uint8_t *back = malloc(n + 1);
        size_t zl = ch__seg_raw_frame(z, src, n);
        assert_true(zl <= ch__seg_raw_bound(n));
        assert_int_equal(ZSTD_getFrameContentSize(z, zl), n);
        assert_int_equal(ZSTD_findFrameCompressedSize(z, zl), zl);
        assert_int_equal(ZSTD_decompress(back, n + 1, z, zl), n);
        assert_memory_equal(back, src, n);
        /* a streaming decoder that allows only a 128 KiB window (zstd's own frames of a block
         * this size may ask more) */
        assert_false(ZSTD_isError(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters)));
        assert_false(ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 17)));
        ZSTD_inBuffer in = {z, zl, 0};
        ZSTD_outBuffer out = {back, n + 1, 0};
        size_t r;
        do
            r = ZSTD_decompressStream(dctx, &out, &in);
        while (!ZSTD_isError(r) && r != 0 && in.pos < in.size);
        assert_int_equal(r, 0);
        assert_int_equal(out.pos, n);
        assert_memory_equal(back, src, n);
        free(z);
        free(back);
    }
    ZSTD_freeDCtx(dctx);
    free(src);
}

static void test_raw_hot_segment_stores_the_hot_segments_bytes_uncompressed(void **state)
{
    (void)state;
    write_hot();
    size_t hn, rn;
    uint8_t *hot = slurp(path, &hn);
    write_raw();
    uint8_t *raw = slurp(path, &rn);
    /* the same readable format, no dictionaries, the hot mark's reader path */
    assert_int_equal(ch_le_get32(raw + 8), CH_SEG_FORMAT_SPLIT);
    assert_int_equal(ch_le_get32(raw + 92), 0);
    /* stored, not compressed: larger than the record bytes it holds, and than the hot file */
    assert_true(rn > ch_le_get64(raw + 48));
    assert_true(rn > 2 * hn);
    ch_buf a, b;
    ch_buf_init(&a, (size_t)64 << 20);
    ch_buf_init(&b, (size_t)64 << 20);
    inflate_frames(hot, hn, &a);
    inflate_frames(raw, rn, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    ch_buf_free(&a);
    ch_buf_free(&b);
    ch_free(hot);
    ch_free(raw);
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), 0);
    assert_int_equal(ch__seg_meta(s)->nrec, NEV);
    ch__seg_close(s);
    unlink(path);
}

/* The events of write_events through a raw builder that spills to base, each full block taken
 * by ch__segb_compress as the store's writer thread takes it; the builder is left for the
 * caller to write or free. With pad > 0 each record's text is instead a JSON object of about
 * pad bytes. */
static void add_spilled(ch_seg_builder *b, const char *base, int pad)
{
    ch__segb_init_raw(b, CH_DS_CLOUDTRAIL, 477048);
    assert_int_equal(ch__segb_spill(b, base), 0);
    ch_error err = {0};
    char *big = pad > 0 ? ch_malloc((size_t)pad + 64) : NULL;
    assert_true(pad == 0 || big != NULL);
    for (int i = 0; i < NEV; i++) {
        ch_event ev;
        char id[32], json[256];
        make_event(&ev, i, id, json, sizeof json);
        if (pad > 0) {
            int n = snprintf(big, (size_t)pad + 64, "{\"n\":%d,\"pad\":\"%0*d\"}", i, pad, i);
            ev.raw_json = (ch_sv){big, (uint32_t)n};
        }
        assert_int_equal(ch__segb_add(b, &ev, (uint64_t)i + 1), 0);
        ch_seg_block *full = ch__segb_full(b);
        if (full != NULL)
            assert_int_equal(ch__segb_compress(full, NULL, &err), 0);
    }
    ch_free(big);
}

static bool exists(const char *base, const char *suffix)
{
    char p[128];
    snprintf(p, sizeof p, "%s%s", base, suffix);
    return access(p, F_OK) == 0;
}

static void test_raw_segment_holds_no_full_block_in_memory_and_writes_the_same_bytes(void **state)
{
    (void)state;
    write_raw();
    size_t mn, sn;
    uint8_t *mem = slurp(path, &mn);
    unlink(path);
    char base[64];
    snprintf(base, sizeof base, "/tmp/test_evstore_hot_spill_%d", (int)getpid());
    ch_seg_builder b;
    add_spilled(&b, base, 0);
    /* the two full blocks hold no record bytes: their frames are in the temporary files */
    assert_int_equal(b.nblocks, 3);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(b.blocks[k]->raw.cap, 0);
        assert_int_equal(b.blocks[k]->orig.cap, 0);
    }
    assert_true(b.blocks[2]->raw.len > 0);
    assert_true(exists(base, ".seg.tmp") && exists(base, "-t.seg.tmp"));
    assert_false(exists(path, ""));
    ch_error err = {0};
    assert_int_equal(ch__segb_write(&b, path, 5, 0x40000000u, NULL, NULL, &err), 0);
    ch__segb_free(&b);
    /* renamed to the segment's name, the typed frames' file removed, every byte the same */
    assert_false(exists(base, ".seg.tmp") || exists(base, "-t.seg.tmp"));
    uint8_t *sp = slurp(path, &sn);
    assert_int_equal(sn, mn);
    assert_memory_equal(sp, mem, mn);
    ch_free(sp);
    ch_free(mem);
    ch_seg *s = NULL;
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), 0);
    ch__seg_close(s);
    unlink(path);
    /* a builder freed unwritten (the store closing, or dropping a segment) leaves no file */
    add_spilled(&b, base, 0);
    assert_true(exists(base, ".seg.tmp"));
    ch__segb_free(&b);
    assert_false(exists(base, ".seg.tmp") || exists(base, "-t.seg.tmp"));
}

static void test_hot_segment_is_format_3_without_dictionaries_and_reads_back(void **state)
{
    (void)state;
    write_hot();
    size_t n;
    uint8_t *buf = slurp(path, &n);
    assert_int_equal(ch_le_get32(buf + 8), CH_SEG_FORMAT_SPLIT); /* an older, readable format */
    assert_int_equal(ch_le_get32(buf + 92), 0);                  /* no block-0 dictionary */
    ch_free(buf);
    ch_seg *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch__seg_open(path, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), 0);
    assert_int_equal(ch__seg_meta(s)->nrec, NEV);
    ch_ev_decoded *d = malloc(sizeof *d);
    ch_buf a, b;
    ch_buf_init(&a, 1 << 20);
    ch_buf_init(&b, 1 << 20);
    for (int i = NEV - 1; i >= 0; i -= 7) {
        assert_int_equal(ch__seg_decode(s, (uint32_t)i, d, NULL, &err), 0);
        ch_event ev;
        char id[32], js[256];
        make_event(&ev, i, id, js, sizeof js);
        json_of(&ev, &a);
        json_of(&d->ev, &b);
        assert_string_equal(a.data, b.data);
        assert_true(d->ev.raw_json.n == ev.raw_json.n &&
                    memcmp(d->ev.raw_json.p, ev.raw_json.p, ev.raw_json.n) == 0);
    }
    /* The index is kept: alice's postings are exactly her records. */
    const ch_seg_term *t;
    size_t nt;
    assert_int_equal(ch__seg_terms(s, ch__ix_field("user.name"), &t, &nt, &err), 0);
    assert_int_equal(nt, 2);
    assert_true(t[0].term.n == 5 && memcmp(t[0].term.p, "alice", 5) == 0);
    assert_int_equal(t[0].npost, NEV / 100);
    ch_buf_free(&a);
    ch_buf_free(&b);
    free(d);
    ch__seg_close(s);
    unlink(path);
}

static void test_hot_and_cold_segments_answer_every_search_alike(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *count_by;
        bool no_index;
    } q[] = {
        {"user.name == \"alice\"", NULL, false},
        {"user.name == \"alice\"", NULL, true},
        {"user.name == \"alice\"", "event.action", false},
        {"user.name == \"alice\" or event.action == \"RunInstances\"", "user.name,event.action",
         false},
        {"event.action == \"RunInstances\" and source.ip in 198.51.0.0/16", NULL, false},
        {"user.name =~ \"ALICE\"", "event.action", false},
        {"requestParameters.instanceType == \"p3.16xlarge\"", NULL, true},
        {"event.outcome == \"failure\"", "user.name", true},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        outcome o[3];
        write_as(CH_SEG_FORMAT_CHUNKS, CH_SEG_TYPED_DICT | CH_SEG_ORIG_DICT); /* cold */
        run(q[i].expr, q[i].count_by, q[i].no_index, &o[0]);
        write_hot();
        run(q[i].expr, q[i].count_by, q[i].no_index, &o[1]);
        write_raw();
        run(q[i].expr, q[i].count_by, q[i].no_index, &o[2]);
        /* An indexed lookup of a hot segment reads the blocks its postings name, not all. */
        if (!q[i].no_index && q[i].count_by == NULL && strstr(q[i].expr, "alice")) {
            assert_non_null(strstr(o[1].explain, "index"));
            assert_non_null(strstr(o[2].explain, "index"));
        }
        expect_same_answers(o, 3);
    }
    unlink(path);
}

static void test_damaged_hot_segment_is_refused_with_the_stream_named(void **state)
{
    (void)state;
    for (int raw = 0; raw < 2; raw++) {
        if (raw)
            write_raw();
        else
            write_hot();
        size_t m, n;
        uint8_t *buf = slurp(path, &m);
        uint64_t off = frame_off(buf, 1, 1) + 9; /* inside block 1's original-record frame */
        ch_free(buf);
        buf = flip_on_disk(off, &n);
        ch_seg *s = NULL;
        ch_error err = {0};
        assert_int_equal(ch__seg_open_mem(buf, n, &s, &err), 0);
        assert_int_equal(ch__seg_verify(s, &err), CH_EPARSE);
        assert_non_null(strstr(err.msg, "original-record block 1"));
        ch__seg_close(s);
        ch_free(buf);
    }
    unlink(path);
}

/* A sealed raw segment's original frames leave the page cache (the store's ingest would otherwise
 * grow it by three quarters of every hot byte it writes, read again only to print a match), while
 * its typed frames, block table and index stay for the searches that read them. Records of 4 KB
 * make the original frames 2.8 MB, so that the page cache's folios at their two edges, which
 * advice cannot split, are a small part of them. The segment is written in the working
 * directory: a tmpfs /tmp keeps every page, and this test must not pass or skip there. */
static void test_raw_segment_leaves_its_original_frames_out_of_the_page_cache(void **state)
{
    (void)state;
    char here[64], base[64];
    snprintf(here, sizeof here, "test_evstore_hot_cache_%d.seg", (int)getpid());
    snprintf(base, sizeof base, "test_evstore_hot_cache_%d", (int)getpid());
    ch_seg_builder b;
    add_spilled(&b, base, 4000);
    ch_error err = {0};
    assert_int_equal(ch__segb_write(&b, here, 5, 0x40000000u, NULL, NULL, &err), 0);
    ch__segb_free(&b);
    int fd = open(here, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t h[CH_SEG_HEADER], ent[8];
    assert_int_equal(pread(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    assert_int_equal(pread(fd, ent, sizeof ent, (off_t)ch_le_get64(h + 64)), (ssize_t)sizeof ent);
    uint64_t typed = ch_le_get64(ent); /* block 0's typed frame: the original frames end there */
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), npg = ((size_t)st.st_size + pg - 1) / pg;
    size_t norig = (size_t)typed / pg;
    assert_true(norig > 600);
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    unsigned char *vec = ch_malloc(npg);
    assert_non_null(vec);
    assert_int_equal(mincore(m, (size_t)st.st_size, vec), 0);
    size_t kept = 0;
    for (size_t i = 0; i < norig; i++)
        kept += vec[i] & 1;
    assert_true(kept * 4 < norig);
    assert_int_equal(vec[npg - 1] & 1, 1); /* the index's last page */
    ch_free(vec);
    munmap(m, (size_t)st.st_size);
    close(fd);
    /* and the segment still reads whole */
    ch_seg *s = NULL;
    assert_int_equal(ch__seg_open(here, &s, &err), 0);
    assert_int_equal(ch__seg_verify(s, &err), 0);
    assert_int_equal(ch__seg_meta(s)->nrec, NEV);
    ch__seg_close(s);
    unlink(here);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_segment_is_format_3_without_dictionaries_and_reads_back),
        cmocka_unit_test(test_hot_and_cold_segments_answer_every_search_alike),
        cmocka_unit_test(test_damaged_hot_segment_is_refused_with_the_stream_named),
        cmocka_unit_test(test_raw_frame_is_a_zstd_frame_libzstd_decodes),
        cmocka_unit_test(test_raw_hot_segment_stores_the_hot_segments_bytes_uncompressed),
        cmocka_unit_test(test_raw_segment_holds_no_full_block_in_memory_and_writes_the_same_bytes),
        cmocka_unit_test(test_raw_segment_leaves_its_original_frames_out_of_the_page_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
