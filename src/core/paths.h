/*
 * paths.h - where coinhound keeps its data and finds its content packs by default.
 *
 * Every layer needs these defaults (the offense store's database, the GeoIP database, the
 * bundled pack), so they live in core rather than in the command line: a library module that
 * asked cli/ for them would point an arrow up the pipeline.
 *
 * Ownership: the returned strings are static (or the environment's) and must not be freed.
 */
#ifndef CH_CORE_PATHS_H
#define CH_CORE_PATHS_H

/* The data directory: $COINHOUND_HOME, else the build's source tree + "/data". */
const char *ch_data_dir(void);
/* Where content packs live: $COINHOUND_CONTENT, else the build's source tree + "/content". */
const char *ch_content_dir(void);

#endif
