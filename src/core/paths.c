/*
 * paths.c - the default data and content directories (see paths.h). The environment wins so
 * that an installed binary, a test and a service unit can each point elsewhere.
 */
#include "core/paths.h"

#include <stdio.h>
#include <stdlib.h>

const char *ch_data_dir(void)
{
    static char buf[4096];
    const char *home = getenv("COINHOUND_HOME");
    if (home != NULL && *home)
        return home;
    snprintf(buf, sizeof buf, "%s/data", CH_DATADIR_DEFAULT);
    return buf;
}

const char *ch_content_dir(void)
{
    static char buf[4096];
    const char *dir = getenv("COINHOUND_CONTENT");
    if (dir != NULL && *dir)
        return dir;
    snprintf(buf, sizeof buf, "%s/content", CH_DATADIR_DEFAULT);
    return buf;
}
