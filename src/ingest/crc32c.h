/*
 * crc32c.h - CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and RocksDB's WAL) for the
 * journal's entry checksums.
 *
 * Chosen over zlib's CRC-32 because x86-64 computes it in hardware (SSE4.2's crc32
 * instruction; ISA-L runs three of them at once): the journal checksums every byte twice (append
 * and read), and with zlib's table-driven CRC-32 that was a quarter of the server's CPU per record
 * (docs/BENCHMARKS.md). Elsewhere a byte-wise table is used; all give the same values.
 */
#ifndef CH_INGEST_CRC32C_H
#define CH_INGEST_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC-32C over n bytes; start with crc = 0. The standard check value holds:
 * ch_crc32c(0, "123456789", 9) == 0xe3069283. */
uint32_t ch_crc32c(uint32_t crc, const void *p, size_t n);

/* The same by the byte-wise table, whatever the CPU and the build: the reference the tests hold
 * the fast paths to. */
uint32_t ch__crc32c_bytewise(uint32_t crc, const void *p, size_t n);

#endif
