/*
 * vcache.c - the embedder's vector cache: an append-only file of fixed-size
 * records, loaded into an open-addressing hash table at start.
 *
 * A record is: magic "EFV1", the dimension, the 32-byte key, dim floats as
 * this machine stores them, and the first 8 bytes of the SHA-256 of all of
 * that.  Records have one size per file, so a record that fails its check
 * (a torn write at a crash, a flipped bit) is skipped without losing the
 * ones after it; a torn tail is cut off before anything is appended, under
 * an flock, so that the next record starts where a record should.  There is
 * no fsync: a record lost at a power cut is only computed again.
 *
 * In memory a vector costs its key and floats (32 + 4 x dim bytes) plus two
 * 4-byte index slots; nothing is ever evicted: the cache holds the corpus it
 * was shown.
 */
#include "vcache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC 0x31564645u		/* "EFV1" read as little-endian */
#define HEAD_BYTES 40			/* magic, dim, key */
#define CHECK_BYTES 8
#define READ_CHUNK ((size_t)1 << 20)

struct sbx_vcache {
	pthread_rwlock_t lock;		/* the table and the entries */
	pthread_mutex_t file_lock;	/* appends, in this process */
	int fd;
	int dim;
	size_t rec;			/* bytes of one record */
	uint8_t *entries;		/* key then floats, entry_bytes each */
	size_t entry_bytes, n, cap;
	uint32_t *slots;		/* entry number + 1; 0 is empty */
	size_t n_slots;			/* a power of two, at least twice n */
	char path[4096];
};

size_t sbx_vcache_record_bytes(int dim)
{
	return HEAD_BYTES + (size_t)dim * sizeof(float) + CHECK_BYTES;
}

int sbx_vcache_key(const char *fp, const char *model, int dim, const char *text,
		   uint8_t key[SBX_SHA256_LEN])
{
	struct sbx_sha256 h;
	char d[16];

	if (sbx_sha256_begin(&h) != 0)
		return -1;
	snprintf(d, sizeof(d), "%d", dim);
	sbx_sha256_add(&h, fp, strlen(fp) + 1);
	sbx_sha256_add(&h, model, strlen(model) + 1);
	sbx_sha256_add(&h, d, strlen(d) + 1);
	sbx_sha256_add(&h, text, strlen(text));
	sbx_sha256_end(&h, key);
	return 0;
}

/* --- the table ------------------------------------------------------------ */

static uint64_t slot_hash(const uint8_t *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));	/* a SHA-256 is spread evenly already */
	return h;
}

static uint8_t *entry(const sbx_vcache *c, uint32_t no)
{
	return c->entries + (size_t)no * c->entry_bytes;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find_slot(const sbx_vcache *c, const uint8_t *key)
{
	size_t mask = c->n_slots - 1, i = (size_t)slot_hash(key) & mask;

	while (c->slots[i] != 0 && memcmp(entry(c, c->slots[i] - 1), key, SBX_SHA256_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

static int grow_slots(sbx_vcache *c)
{
	size_t n = c->n_slots ? c->n_slots * 2 : 1024;
	uint32_t *old = c->slots;
	size_t old_n = c->n_slots;

	c->slots = calloc(n, sizeof(*c->slots));
	if (c->slots == NULL) {
		c->slots = old;
		return -1;
	}
	c->n_slots = n;
	for (size_t i = 0; i < old_n; i++)
		if (old[i] != 0)
			c->slots[find_slot(c, entry(c, old[i] - 1))] = old[i];
	free(old);
	return 0;
}

static int grow_entries(sbx_vcache *c)
{
	size_t cap = c->cap ? c->cap * 2 : 256;
	uint8_t *ne = realloc(c->entries, cap * c->entry_bytes);

	if (ne == NULL)
		return -1;
	c->entries = ne;
	c->cap = cap;
	return 0;
}

/* Adds key and vec unless key is there; 1 when added, 0 when known, -1
 * out of memory.  The caller holds the write lock. */
static int insert(sbx_vcache *c, const uint8_t *key, const float *vec)
{
	size_t i;

	if ((c->n + 1) * 2 > c->n_slots && grow_slots(c) != 0)
		return -1;
	i = find_slot(c, key);
	if (c->slots[i] != 0)
		return 0;
	if (c->n == c->cap && grow_entries(c) != 0)
		return -1;
	memcpy(entry(c, (uint32_t)c->n), key, SBX_SHA256_LEN);
	memcpy(entry(c, (uint32_t)c->n) + SBX_SHA256_LEN, vec, (size_t)c->dim * sizeof(float));
	c->slots[i] = (uint32_t)(++c->n);
	return 1;
}

/* --- records -------------------------------------------------------------- */

static void encode(const sbx_vcache *c, uint8_t *rec, const uint8_t *key, const float *vec)
{
	uint32_t head[2] = {MAGIC, (uint32_t)c->dim};
	size_t body = c->rec - CHECK_BYTES;
	uint8_t sum[SBX_SHA256_LEN];

	memcpy(rec, head, sizeof(head));
	memcpy(rec + 8, key, SBX_SHA256_LEN);
	memcpy(rec + HEAD_BYTES, vec, (size_t)c->dim * sizeof(float));
	sbx_sha256(rec, body, sum);
	memcpy(rec + body, sum, CHECK_BYTES);
}

static bool intact(const sbx_vcache *c, const uint8_t *rec)
{
	uint32_t head[2];
	size_t body = c->rec - CHECK_BYTES;
	uint8_t sum[SBX_SHA256_LEN];

	memcpy(head, rec, sizeof(head));
	if (head[0] != MAGIC || head[1] != (uint32_t)c->dim)
		return false;
	return sbx_sha256(rec, body, sum) == 0 && memcmp(sum, rec + body, CHECK_BYTES) == 0;
}

/* Cuts a torn last record off, so that appends stay aligned.  The caller
 * holds the flock. */
static int realign(sbx_vcache *c)
{
	struct stat st;

	if (fstat(c->fd, &st) != 0)
		return -1;
	if ((size_t)st.st_size % c->rec == 0)
		return 0;
	return ftruncate(c->fd, st.st_size - (off_t)((size_t)st.st_size % c->rec));
}

static int load(sbx_vcache *c)
{
	size_t per = READ_CHUNK / c->rec + 1, have = 0;
	uint8_t *buf = malloc(per * c->rec);
	ssize_t got;
	int rc = 0;

	if (buf == NULL)
		return -1;
	while ((got = read(c->fd, buf + have, per * c->rec - have)) > 0 || (got < 0 && errno == EINTR)) {
		size_t whole;
		if (got < 0)
			continue;
		have += (size_t)got;
		whole = have / c->rec;
		for (size_t i = 0; i < whole && rc == 0; i++)
			if (intact(c, buf + i * c->rec) && insert(c, buf + i * c->rec + 8,
				(const float *)(const void *)(buf + i * c->rec + HEAD_BYTES)) < 0)
				rc = -1;
		memmove(buf, buf + whole * c->rec, have - whole * c->rec);
		have -= whole * c->rec;
	}
	free(buf);
	return got < 0 ? -1 : rc;
}

static int make_dirs(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return -1;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static sbx_vcache *alloc_cache(int dim)
{
	sbx_vcache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = -1;
	c->dim = dim;
	c->rec = sbx_vcache_record_bytes(dim);
	c->entry_bytes = SBX_SHA256_LEN + (size_t)dim * sizeof(float);
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->file_lock, NULL);
	return c;
}

sbx_vcache *sbx_vcache_open(const char *dir, const char *name, int dim, char *err, size_t errsz)
{
	sbx_vcache *c = alloc_cache(dim);
	int n;

	if (c == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	n = snprintf(c->path, sizeof(c->path), "%s/%s-d%d.vectors", dir, name, dim);
	if (n < 0 || (size_t)n >= sizeof(c->path) || make_dirs(dir) != 0 ||
	    (c->fd = open(c->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, errsz, "--cache-dir \"%s\": cannot create or open \"%s\": %s\n"
			 "hint: pick a directory you can write to, or leave --cache-dir out",
			 dir, c->path, strerror(errno));
		sbx_vcache_close(c);
		return NULL;
	}
	if (flock(c->fd, LOCK_EX) != 0 || realign(c) != 0 || load(c) != 0) {
		snprintf(err, errsz, "--cache-dir \"%s\": cannot read \"%s\": %s\n"
			 "hint: remove the file; it is only a cache", dir, c->path, strerror(errno));
		sbx_vcache_close(c);
		return NULL;
	}
	flock(c->fd, LOCK_UN);
	return c;
}

void sbx_vcache_close(sbx_vcache *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	pthread_rwlock_destroy(&c->lock);
	pthread_mutex_destroy(&c->file_lock);
	free(c->entries);
	free(c->slots);
	free(c);
}

bool sbx_vcache_get(sbx_vcache *c, const uint8_t key[SBX_SHA256_LEN], float *out)
{
	bool hit = false;
	size_t i;

	pthread_rwlock_rdlock(&c->lock);
	if (c->n_slots > 0) {
		i = find_slot(c, key);
		if (c->slots[i] != 0) {
			memcpy(out, entry(c, c->slots[i] - 1) + SBX_SHA256_LEN,
			       (size_t)c->dim * sizeof(float));
			hit = true;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return hit;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One write per batch under an flock: another embedder on the same
 * directory never interleaves its records with these. */
static int append(sbx_vcache *c, const uint8_t *recs, size_t len)
{
	int rc;

	pthread_mutex_lock(&c->file_lock);
	rc = flock(c->fd, LOCK_EX);
	if (rc == 0) {
		rc = realign(c) == 0 ? write_all(c->fd, recs, len) : -1;
		flock(c->fd, LOCK_UN);
	}
	pthread_mutex_unlock(&c->file_lock);
	return rc;
}

int sbx_vcache_put(sbx_vcache *c, const uint8_t (*keys)[SBX_SHA256_LEN], const float *vecs,
		   size_t stride, size_t n)
{
	uint8_t *recs = malloc(n * c->rec + 1);
	size_t fresh = 0;
	int rc = 0;

	if (recs == NULL)
		return -1;
	pthread_rwlock_wrlock(&c->lock);
	for (size_t i = 0; i < n && rc == 0; i++) {
		int added = insert(c, keys[i], vecs + i * stride);
		if (added > 0)
			encode(c, recs + fresh++ * c->rec, keys[i], vecs + i * stride);
		rc = added < 0 ? -1 : 0;
	}
	pthread_rwlock_unlock(&c->lock);
	if (fresh > 0 && append(c, recs, fresh * c->rec) != 0)
		rc = -1;
	free(recs);
	return rc;
}

size_t sbx_vcache_count(sbx_vcache *c)
{
	size_t n;

	pthread_rwlock_rdlock(&c->lock);
	n = c->n;
	pthread_rwlock_unlock(&c->lock);
	return n;
}

const char *sbx_vcache_path(const sbx_vcache *c)
{
	return c->path;
}
