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
 * ch_hash_bytes_nocase is ch_hash_bytes of the ASCII-lowered bytes; ch_hash_words hashes eight
 * bytes a step for short keys on a per-event path (the engine's dispatch by event name).
 *
 * Everything is static inline: the hot paths (offense chaining, engine state lookup, dispatch)
 * hash on every hit or event and should not pay for a call.
 */
#ifndef CH_CORE_HASH_H
#define CH_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* The same of the bytes with ASCII letters lowered, for tables that compare without case
 * (`in [...]` lists of case-insensitive rules): "RunInstances" and "runinstances" agree. */
static inline uint64_t ch_hash_bytes_nocase(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = CH_HASH_SEED;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        h ^= c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
        h *= 0x100000001b3ULL;
    }
    return ch_hash_mix64(h);
}

/* A hash of n bytes eight at a time (the last word overlapping the one before), from a seed:
 * for short keys hashed on every event, such as event names (10 to 30 bytes), where FNV's byte
 * a step shows in profiles. Every input bit reaches the result through a multiply and a fold per
 * word; strong enough for a table that compares keys in full, and like the rest of this file
 * not for values that persist (a word at a time depends on the host's byte order). */
static inline uint64_t ch_hash_words(uint64_t seed, const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = seed ^ n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    if (i < n) {
        if (n >= 8) {
            memcpy(&w, s + n - 8, 8);
        } else {
            w = 0;
            for (size_t k = 0; k < n; k++)
                w = (w << 8) | s[k];
        }
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
    }
    return h;
}

#endif
