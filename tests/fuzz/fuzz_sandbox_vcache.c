/*
 * fuzz_sandbox_vcache - the sandbox embedder's loading of a vector cache
 * file that a crash, a full disk or a bad disk left in any state.
 *
 * Input: the file's bytes.  Opening must succeed and keep only whole
 * records whose check matches; a vector put afterwards must be found again,
 * and the file must then hold whole records only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/vcache.h"

#define DIM 4

static char dir[64];

static void remove_dir(void)
{
	rmdir(dir);
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128], err[512];
	uint8_t key[1][SBX_SHA256_LEN];
	float vec[DIM] = {1, 2, 3, 4}, got[DIM];
	struct stat st;
	sbx_vcache *c;
	size_t before;

	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-vcache-XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
		atexit(remove_dir);
	}
	snprintf(path, sizeof(path), "%s/hash-d%d.vectors", dir, DIM);
	write_file(path, data, size);
	c = sbx_vcache_open(dir, "hash", DIM, err, sizeof(err));
	if (c == NULL)
		abort();
	before = sbx_vcache_count(c);
	if (before > size / sbx_vcache_record_bytes(DIM))
		abort();
	sbx_vcache_key("fuzz", "model", DIM, "a text no input holds \x01\x02", key[0]);
	if (sbx_vcache_put(c, (const uint8_t (*)[SBX_SHA256_LEN])key, vec, DIM, 1) != 0)
		abort();
	if (!sbx_vcache_get(c, key[0], got) || memcmp(got, vec, sizeof(vec)) != 0)
		abort();
	sbx_vcache_close(c);
	if (stat(path, &st) != 0 || (size_t)st.st_size % sbx_vcache_record_bytes(DIM) != 0)
		abort();
	unlink(path);
	return 0;
}
