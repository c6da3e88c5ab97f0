/*
 * What memcounter.c and pod-memcounter.c share: the checksum that tells a restored copy's memory from
 * the memory it was checkpointed with (FNV-1a over 8-byte words). Include after <stdint.h> and <string.h>.
 */
#ifndef STASIS_MEMSUM_H
#define STASIS_MEMSUM_H

static uint64_t memory_sum(const unsigned char *memory, size_t size)
{
	uint64_t sum = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < size; i += 8) {
		uint64_t x;
		memcpy(&x, memory + i, 8);
		sum = (sum ^ x) * 0x100000001b3ULL;
	}
	return sum;
}

#endif
