/* til_rng: xoshiro256** (Blackman and Vigna) seeded with splitmix64. */
#include "til_rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void til_rng_seed(til_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull + 0x8cb92ba72f3d8dd7ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t til_rng_u64(til_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t til_rng_below(til_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    if (n <= 0xffffffffull) {
        /* 32-bit Lemire: multiply-shift with rejection of the biased low range */
        uint32_t n32 = (uint32_t)n;
        uint64_t m = (uint64_t)(uint32_t)(til_rng_u64(r) >> 32) * n32;
        uint32_t lo = (uint32_t)m;
        if (lo < n32) {
            uint32_t thresh = (uint32_t)(-n32) % n32;
            while (lo < thresh) {
                m = (uint64_t)(uint32_t)(til_rng_u64(r) >> 32) * n32;
                lo = (uint32_t)m;
            }
        }
        return m >> 32;
    }
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = til_rng_u64(r);
    while (x >= lim);
    return x % n;
}

double til_rng_uniform(til_rng *r) { return (double)(til_rng_u64(r) >> 11) * 0x1.0p-53; }

double til_rng_normal(til_rng *r)
{
    double u1 = 1.0 - til_rng_uniform(r); /* (0, 1] */
    double u2 = til_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void til_rng_shuffle_u32(til_rng *r, uint32_t *a, uint64_t n)
{
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = til_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
