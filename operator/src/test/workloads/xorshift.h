/*
 * What memchurn.c and memcounter.c share: pseudo-random (incompressible) bytes from a xorshift64
 * generator, the same sequence on every run for one seed. Define XORSHIFT_SEED, then include after
 * <stdint.h> and <string.h>.
 */
#ifndef STASIS_XORSHIFT_H
#define STASIS_XORSHIFT_H

static uint64_t state = XORSHIFT_SEED;

static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static void fill(unsigned char *at, size_t bytes)
{
	for (size_t i = 0; i < bytes; i += 8) {
		uint64_t x = next();
		memcpy(at + i, &x, 8);
	}
}

#endif
