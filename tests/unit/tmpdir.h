/*
 * tmpdir.h - a scratch folder per test: made under $TMPDIR (or /tmp) and removed with its
 * contents afterwards, so that tests which write stores, journals and configs never share or
 * leave files behind.
 *
 * Removal walks the tree with nftw rather than running `rm -rf` through a shell, so a folder
 * name never reaches a shell and a failure to remove is reported by the test, not ignored.
 */
#ifndef CH_TESTS_TMPDIR_H
#define CH_TESTS_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Make a fresh folder named after tag into dir (cap bytes); 0, or -1 when it cannot. */
static inline int ch_test_tmpdir(char *dir, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(dir, cap, "%s/ch-%s-XXXXXX", base != NULL && *base ? base : "/tmp", tag);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static inline int ch_test__rm_one(const char *path, const struct stat *st, int flag,
                                  struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Remove dir and everything under it; 0, or -1 when something could not be removed. */
static inline int ch_test_rmdir(const char *dir)
{
    return nftw(dir, ch_test__rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* A cmocka fixture: a scratch folder (dir) and a database path in it (db, `rel` under dir, whose
 * folders the store itself must make). The state is the ch_test_tmpdb; the teardown removes the
 * folder and frees it. */
typedef struct ch_test_tmpdb {
    char dir[256];
    char db[384];
} ch_test_tmpdb;

static inline int ch_test_tmpdb_setup(void **state, const char *tag, const char *rel)
{
    ch_test_tmpdb *t = calloc(1, sizeof *t);
    if (t == NULL || ch_test_tmpdir(t->dir, sizeof t->dir, tag) < 0) {
        free(t);
        return -1;
    }
    snprintf(t->db, sizeof t->db, "%s/%s", t->dir, rel);
    *state = t;
    return 0;
}

static inline int ch_test_tmpdb_teardown(void **state)
{
    ch_test_tmpdb *t = *state;
    int rc = ch_test_rmdir(t->dir);
    free(t);
    return rc;
}

#endif
