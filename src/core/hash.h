/*
 * hash.h - the project's one 64-bit hash for strings and bytes, and its bit mixer.
 *
 * ch_hash_bytes is FNV-1a over the bytes followed by murmur3's 64-bit finalizer. FNV-1a alone
 * is cheap and good in its high bits, but its multiply only carries upward, so its low bits (the
 * ones a power-of-two table masks) depend only on the low bits of the input bytes: "user1" ..
 * "user9" would land in neighbouring slots. The finalizer (two multiplies, three shifts)
 * spreads every input bit over the word, so any slice of the result can index a table. The
 * cost is a byte a step: fine for the short keys hashed here (names, ids, index values, up to
 * a few hundred bytes); a table whose keys are long and hot should hash words (as refset does).
 *
 * ch_hash_fnv1a is exposed on its own for hashes built in pieces (a rule number, then a key)
 * and for values that are persisted or compared across runs (the engine's first_seen value
 * hashes): its results are fixed by the FNV-1a definition and must never change. Not a
 * cryptographic hash: inputs chosen by an attacker can collide, so tables keyed by it cap their
 * size and compare keys in full.
 *
 * Everything is static inline: the hot paths (offense chaining, engine state lookup) hash on
 * every hit and should not pay for a call.
 */
#ifndef CH_CORE_HASH_H
#define CH_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a's 64-bit offset basis: the starting value of a hash. */
#define CH_HASH_SEED 0xcbf29ce484222325ULL

/* FNV-1a of n bytes at p, continuing from h (CH_HASH_SEED to start). */
static inline uint64_t ch_hash_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* murmur3's fmix64: a bijection of the 64-bit words in which every input bit affects every
 * output bit; use it on a finished FNV-1a value (or any poorly mixed word) before masking. */
static inline uint64_t ch_hash_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The hash of n bytes at p, every bit usable (see the top of this file). */
static inline uint64_t ch_hash_bytes(const void *p, size_t n)
{
    return ch_hash_mix64(ch_hash_fnv1a(CH_HASH_SEED, p, n));
}

#endif
