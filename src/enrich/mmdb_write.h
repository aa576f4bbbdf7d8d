/*
 * mmdb_write.h - write small MaxMind DB (.mmdb) files: networks to a country, for tests.
 *
 * The rule tests of a content pack need addresses that map to known countries, and the
 * installed GeoIP database changes under them (or is absent). So a pack carries a fixture of
 * `network,country[,name]` lines (tests/geoip.csv) and this module turns it into a real
 * MaxMind DB file, which the ordinary GeoIP enricher (enrich/geoip.h) then opens through
 * libmaxminddb: the rule tests exercise the same code as analyze, with pinned answers.
 *
 * What is written (MaxMind DB format 2.0, https://maxmind.github.io/MaxMind-DB/): an IPv6 tree
 * (ip_version 6) with IPv4 networks at ::a.b.c.d/96+len, as MaxMind and ip-location-db store
 * them; no aliases (::ffff:0:0/96 and 2002::/16 are not linked to the IPv4 subtree, so a raw
 * IPv4-mapped lookup misses: enrich/geoip.c looks IPv4 up as IPv4). Each network's record is
 * the map {country: {iso_code: "GB", names: {en: "United Kingdom"}}}, names only when given,
 * which is the MaxMind Country layout that enrich/geoip.c reads. The record size (24, 28 or 32
 * bits) is the smallest that holds the largest record value unless the caller picks one. The more
 * specific of two overlapping networks wins for the addresses it covers. Output is deterministic
 * (build_epoch is 1): the same entries give the same bytes.
 *
 * Caps: CH_MMDB_MAX_ENTRIES networks per database, which bounds the tree at 128 nodes per
 * network (2M nodes, 16 MiB in memory, at worst); CSV lines of at most CH_MMDB_MAX_LINE bytes in
 * a file of at most CH_MMDB_MAX_CSV bytes; names of at most CH_MMDB_MAX_NAME bytes.
 *
 * Ownership: ch_mmdb_writer_new allocates a writer, ch_mmdb_writer_free (NULL-safe) frees it
 * and everything it copied; the writer keeps no pointer into the caller's strings.
 */
#ifndef CH_ENRICH_MMDB_WRITE_H
#define CH_ENRICH_MMDB_WRITE_H

#include <stddef.h>

#include "core/error.h"

#define CH_MMDB_MAX_ENTRIES 16384u
#define CH_MMDB_MAX_NAME 128u
#define CH_MMDB_MAX_LINE 512u
#define CH_MMDB_MAX_CSV (4u << 20)

typedef struct ch_mmdb_writer ch_mmdb_writer;

/* database_type goes into the metadata (NULL: "coinhound-test-country"). CH_ENOMEM,
 * CH_EUSAGE for a type longer than CH_MMDB_MAX_NAME. */
int ch_mmdb_writer_new(ch_mmdb_writer **out, const char *database_type, ch_error *err);

/* Record size of the search tree: 24, 28 or 32 bits, or 0 (the default) for the smallest that
 * holds the largest record value. CH_EUSAGE for another size; CH_ELIMIT from
 * ch_mmdb_writer_write when the chosen size is too small for the database. */
int ch_mmdb_writer_set_record_size(ch_mmdb_writer *w, unsigned bits, ch_error *err);

/* Map network ("81.2.69.0/24", "2001:db8::/32"; a bare address is a /32 or /128) to the
 * two-letter country code (stored upper case) and, when name is neither NULL nor "", its
 * English name. The network must have no bits set past its prefix. CH_EPARSE for a bad
 * network, code or name (the message quotes it), CH_ELIMIT past CH_MMDB_MAX_ENTRIES,
 * CH_ENOMEM. A network given twice is found by ch_mmdb_writer_write. */
int ch_mmdb_writer_add(ch_mmdb_writer *w, const char *network, const char *country,
                       const char *name, ch_error *err);

/* Write the database to path (created or truncated). CH_EPARSE when a network was added twice
 * (both are named), CH_EIO ("PATH: reason") when the file cannot be written, CH_ENOMEM. The
 * writer can be written again or added to afterwards. */
int ch_mmdb_writer_write(ch_mmdb_writer *w, const char *path, ch_error *err);

void ch_mmdb_writer_free(ch_mmdb_writer *w);

/* Read csv_path and write its networks to out_path. The file: '#' comment lines and blank
 * lines anywhere; first a header line, `network,country` or `network,country,name`; then one
 * network per line, fields separated by commas (no quoting: a name cannot hold a comma),
 * spaces around a field ignored, the name column optional on every line. Errors name the file
 * and line: CH_EPARSE (bad header, line, network, code, a network given twice, no networks at
 * all), CH_ELIMIT (a cap), CH_ENOTFOUND / CH_EIO (reading or writing), CH_ENOMEM. */
int ch_mmdb_write_csv(const char *csv_path, const char *out_path, ch_error *err);

#endif
