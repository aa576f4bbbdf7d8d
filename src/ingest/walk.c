/*
 * walk.c - recursive, sorted expansion of input paths.
 *
 * A directory is listed whole (names and d_type), closed, sorted with strcmp, then its
 * entries are visited: one open directory at a time whatever the depth, so deep trees cannot
 * run out of descriptors, at the cost of holding one directory's names in memory (a CloudTrail
 * S3 day folder holds a few hundred). d_type spares a stat(2) per regular file; symlinks and
 * file systems without d_type cost one stat. Directories already descended are remembered in
 * an open-addressing set of (device, inode), so each is read once per walk: O(1) per
 * directory, and symlink loops end at their first repetition.
 */
#include "ingest/walk.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/mem.h"

typedef struct dir_key {
    dev_t dev;
    ino_t ino;
} dir_key;

typedef struct walk {
    ch_walk_file_cb on_file;
    ch_walk_missing_cb on_missing;
    void *ud;
    char path[PATH_MAX];
    dir_key *seen; /* open addressing; ino 0 marks a free slot (no directory has inode 0) */
    size_t seen_cap, seen_n;
} walk;

typedef struct entry {
    char *name;
    unsigned char type;
} entry;

static int missing(walk *w, const char *path, const char *reason)
{
    return w->on_missing ? w->on_missing(path, reason, w->ud) : 0;
}

static size_t key_hash(dir_key k, size_t mask)
{
    uint64_t h =
        ((uint64_t)k.ino * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)k.dev * 0xC2B2AE3D27D4EB4Full);
    return (size_t)(h ^ (h >> 29)) & mask;
}

/* Insert k; returns 1 if new, 0 if already there, CH_ENOMEM. */
static int seen_add(walk *w, dir_key k)
{
    if ((w->seen_n + 1) * 2 > w->seen_cap) {
        size_t ncap = w->seen_cap ? w->seen_cap * 2 : 64;
        dir_key *ns = ch_calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return CH_ENOMEM;
        for (size_t i = 0; i < w->seen_cap; i++) {
            if (w->seen[i].ino == 0)
                continue;
            size_t j = key_hash(w->seen[i], ncap - 1);
            while (ns[j].ino != 0)
                j = (j + 1) & (ncap - 1);
            ns[j] = w->seen[i];
        }
        ch_free(w->seen);
        w->seen = ns;
        w->seen_cap = ncap;
    }
    if (k.ino == 0)
        k.ino = (ino_t)-1; /* keep 0 as the free marker */
    size_t j = key_hash(k, w->seen_cap - 1);
    while (w->seen[j].ino != 0) {
        if (w->seen[j].ino == k.ino && w->seen[j].dev == k.dev)
            return 0;
        j = (j + 1) & (w->seen_cap - 1);
    }
    w->seen[j] = k;
    w->seen_n++;
    return 1;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static void free_entries(entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ch_free(v[i].name);
    ch_free(v);
}

/* List the visible entries of the directory at w->path, sorted. */
static int list_dir(walk *w, const struct stat *st, entry **out, size_t *nout, bool *skip)
{
    int rc = 0;
    entry *v = NULL;
    size_t n = 0, cap = 0;
    *skip = false;
    DIR *d = opendir(w->path);
    if (d == NULL)
        return missing(w, w->path, strerror(errno));
    struct stat dst;
    const struct stat *key_st = st;
    if (fstat(dirfd(d), &dst) == 0)
        key_st = &dst; /* the directory actually opened, should it have been swapped */
    rc = seen_add(w, (dir_key){key_st->st_dev, key_st->st_ino});
    if (rc == 0) {
        *skip = true;
        goto cleanup;
    }
    if (rc < 0)
        goto nomem;
    rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0)
                rc = missing(w, w->path, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.')
            continue; /* ".", ".." and dotfiles (.DS_Store, editor droppings, partial uploads) */
        if (n == cap) {
            entry *nv = ch_grow(v, &cap, 32, sizeof *nv);
            if (nv == NULL)
                goto nomem;
            v = nv;
        }
        v[n].name = ch_strdup(e->d_name);
        if (v[n].name == NULL)
            goto nomem;
        v[n].type = e->d_type;
        n++;
    }
    if (n > 1) /* an empty directory leaves v NULL, which qsort must not be given */
        qsort(v, n, sizeof *v, entry_cmp);
    goto cleanup;
nomem:
    missing(w, w->path, "out of memory listing the directory");
    rc = CH_ENOMEM;
cleanup:
    closedir(d);
    if (rc != 0) {
        free_entries(v, n);
        v = NULL;
        n = 0;
    }
    *out = v;
    *nout = n;
    return rc;
}

static int walk_dir(walk *w, const struct stat *st, int depth)
{
    if (depth > CH_WALK_MAX_DEPTH)
        return missing(w, w->path, "directory tree too deep");
    entry *v = NULL;
    size_t n = 0;
    bool skip = false;
    int rc = list_dir(w, st, &v, &n, &skip);
    if (rc != 0 || skip)
        return rc;
    size_t base = strlen(w->path);
    bool slash = base > 0 && w->path[base - 1] == '/';
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t nl = strlen(v[i].name);
        if (base + !slash + nl >= sizeof w->path) {
            rc = missing(w, v[i].name, "path too long");
            continue;
        }
        char *p = w->path + base;
        if (!slash)
            *p++ = '/';
        memcpy(p, v[i].name, nl + 1);
        struct stat cst;
        bool is_dir = false, is_file = false;
        if (v[i].type == DT_REG) {
            is_file = true;
        } else if (v[i].type == DT_DIR || v[i].type == DT_LNK || v[i].type == DT_UNKNOWN) {
            /* stat follows symlinks: a link to a file is a file, to a directory a directory. */
            if (stat(w->path, &cst) != 0) {
                rc = missing(w, w->path, strerror(errno));
            } else {
                is_file = S_ISREG(cst.st_mode);
                is_dir = S_ISDIR(cst.st_mode);
            }
        }
        if (is_file)
            rc = w->on_file(w->path, w->ud);
        else if (is_dir)
            rc = walk_dir(w, &cst, depth + 1);
        w->path[base] = '\0';
    }
    free_entries(v, n);
    return rc;
}

int ch_walk_paths(const char *const *paths, size_t n, ch_walk_file_cb on_file,
                  ch_walk_missing_cb on_missing, void *ud)
{
    int rc = 0;
    walk *w = ch_calloc(1, sizeof *w);
    if (w == NULL) {
        if (on_missing && n > 0)
            on_missing(paths[0], "out of memory", ud);
        return CH_ENOMEM;
    }
    w->on_file = on_file;
    w->on_missing = on_missing;
    w->ud = ud;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *p = paths[i];
        struct stat st;
        if (strcmp(p, "-") == 0) {
            rc = on_file(p, ud);
        } else if (stat(p, &st) != 0) {
            rc = missing(w, p, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (strlen(p) >= sizeof w->path) {
                rc = missing(w, p, "path too long");
                continue;
            }
            strcpy(w->path, p);
            rc = walk_dir(w, &st, 0);
        } else {
            rc = on_file(p, ud);
        }
    }
    ch_free(w->seen);
    ch_free(w);
    return rc;
}
