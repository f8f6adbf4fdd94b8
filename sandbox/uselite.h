/*
 * uselite.h - the "use-lite" backend: Universal Sentence Encoder Lite, run
 * by node as a child process of the server (sandbox/use-lite.js).
 */
#ifndef SBX_USELITE_H
#define SBX_USELITE_H

#include <stddef.h>

typedef struct sbx_uselite sbx_uselite;

/*
 * Starts node with use-lite.js and waits until the model is loaded.
 * node_modules may be NULL to search next to the program.  Returns NULL
 * with a message (and hint line) in err when node, the packages or the
 * script are missing or the model fails to load.
 */
sbx_uselite *sbx_uselite_start(const char *node_modules, char *err, size_t errsz);

/*
 * Embeds texts[0..n) into rows of out, row i at out + i * stride, 512
 * floats each.  One request at a time goes to the child; callers may be on
 * any thread.  Returns 0, or -1 with a message in err.
 */
int sbx_uselite_embed(sbx_uselite *ul, const char *const *texts, size_t n,
		      float *out, size_t stride, char *err, size_t errsz);

/* "use-lite/" and a digest of the script and the model package: what
 * this backend's vectors depend on besides their text. */
const char *sbx_uselite_fingerprint(const sbx_uselite *ul);

/* Closes the child's stdin, waits for it (then kills it), frees ul. */
void sbx_uselite_stop(sbx_uselite *ul);

#endif
