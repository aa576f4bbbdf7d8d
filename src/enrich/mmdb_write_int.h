/*
 * mmdb_write_int.h - internals of the MaxMind DB writer, for its unit test only.
 *
 * The node layout is the one part of the format a reader cannot check from small databases:
 * with under 2^24 nodes and data bytes, the top bits of a 28- or 32-bit record are always zero.
 */
#ifndef CH_ENRICH_MMDB_WRITE_INT_H
#define CH_ENRICH_MMDB_WRITE_INT_H

#include <stddef.h>
#include <stdint.h>

/* The bytes of one search-tree node (two records of record_size bits: 24, 28 or 32) into out;
 * returns their count (6, 7 or 8). */
size_t ch__mmdb_node_bytes(unsigned record_size, uint32_t left, uint32_t right, uint8_t out[8]);

#endif
