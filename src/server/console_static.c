/*
 * console_static.c - serving the web console's files (see console_static.h for the rules).
 *
 * The name check comes first and is the security boundary: a path that passes it cannot name
 * anything above root (no "..", no dot files, no empty segments), so the file is opened
 * relative to root with O_NOFOLLOW on the last component and a realpath check that the
 * directories on the way are inside root too (install-web copies files, so the console never
 * needs a link). Reads are whole-file: the files are small and a browser caches them.
 */
#include "server/console_static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static const char *type_of(const char *path, size_t len)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t e = strlen(types[i].ext);
        if (len > e && memcmp(path + len - e, types[i].ext, e) == 0)
            return types[i].type;
    }
    return NULL;
}

int ch_console_path_ok(const char *path, size_t len)
{
    /* "/" alone is the index; otherwise "/" SEGMENT *( "/" SEGMENT ), each segment 1..100
     * name characters not starting with a dot, at most 8 deep and 256 bytes long. */
    if (len == 1 && path[0] == '/')
        return 1;
    if (len < 2 || len > 256 || path[0] != '/')
        return 0;
    unsigned depth = 0;
    size_t i = 1;
    while (i < len) {
        size_t start = i;
        if (path[i] == '.')
            return 0;
        while (i < len && path[i] != '/') {
            if (!name_char(path[i]))
                return 0;
            i++;
        }
        if (i == start || i - start > 100 || ++depth > 8)
            return 0;
        if (i < len) {
            i++; /* the slash */
            if (i == len)
                return 0; /* a trailing slash names a directory */
        }
    }
    return type_of(path, len) != NULL;
}

/* Every directory between root and the file resolves inside root. */
static bool inside(const char *root_real, const char *full)
{
    char dir[PATH_MAX];
    size_t n = strlen(full);
    if (n >= sizeof dir)
        return false;
    memcpy(dir, full, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    char real[PATH_MAX];
    if (realpath(dir, real) == NULL)
        return false;
    size_t r = strlen(root_real);
    return strncmp(real, root_real, r) == 0 && (real[r] == '\0' || real[r] == '/');
}

int ch_console_file_get(const char *root, const char *path, ch_buf *body, ch_console_file *out)
{
    size_t plen = strlen(path);
    if (root == NULL || root[0] == '\0' || !ch_console_path_ok(path, plen))
        return CH_ENOTFOUND;
    const char *rel = plen == 1 ? "/index.html" : path;
    char root_real[PATH_MAX], full[PATH_MAX];
    if (realpath(root, root_real) == NULL)
        return CH_ENOTFOUND;
    int w = snprintf(full, sizeof full, "%s%s", root_real, rel);
    if (w < 0 || (size_t)w >= sizeof full || !inside(root_real, full))
        return CH_ENOTFOUND;
    int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? CH_ENOTFOUND : CH_EIO;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = CH_EIO;
    } else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > CH_CONSOLE_FILE_MAX) {
        rc = CH_ENOTFOUND;
    } else if ((rc = ch_buf_reserve(body, (size_t)st.st_size + 1)) == 0) {
        size_t want = (size_t)st.st_size, got = 0;
        char tmp[16384];
        while (got < want) {
            ssize_t r = read(fd, tmp, sizeof tmp);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                rc = CH_EIO; /* shorter than fstat said: a file replaced under us */
                break;
            }
            if ((rc = ch_buf_add(body, tmp, (size_t)r)) != 0)
                break;
            got += (size_t)r;
        }
    }
    close(fd);
    if (rc != 0)
        return rc;
    out->content_type = type_of(rel, strlen(rel));
    /* The index names the other files; it must never be stale, while the rest is revalidated
     * after a minute, enough for one page load to reuse them. */
    out->cache_control =
        plen == 1 || strcmp(rel, "/index.html") == 0 ? "no-cache" : "private, max-age=60";
    return 0;
}
