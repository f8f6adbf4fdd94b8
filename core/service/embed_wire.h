/*
 * embed_wire.h - vectors as they travel: JSON numbers turned into float32
 * exactly as strtof would, strict base64 of little-endian float32, and the
 * walk that lifts every array of numbers out of a response body so that
 * cJSON only ever sees the small rest.  Internal to core/embed*.c; pure
 * functions, so unit tests and fuzz targets call them directly.
 */
#ifndef EMBFILL_EMBED_WIRE_H
#define EMBFILL_EMBED_WIRE_H

#include <stddef.h>

/*
 * Reads one JSON number (RFC 8259 grammar, nothing more) at s, before end,
 * into *out as the float32 nearest to it, ties to even, overflow to an
 * infinity: bit for bit what strtof gives in the "C" locale, whatever the
 * process's locale.  The number must end at a delimiter (blank, ',', ']',
 * '}' or end): "01", "1.", "1e", "+1", "1x", "1:" are malformed.  Returns
 * the length read, or 0 when s holds no well-formed number.
 */
size_t ef_wire_number(const char *s, const char *end, float *out);

/*
 * Strict base64 (RFC 4648, standard alphabet, padded): the length is a
 * multiple of 4, '=' only as the last one or two characters, and the bits
 * that padding leaves over are zero, so that one vector has one spelling.
 * ef_wire_base64_size gives the decoded size, or -1 when the length or the
 * padding is wrong; ef_wire_base64_decode writes exactly that many bytes
 * and returns 0, or -1 on a character outside the alphabet or stray bits.
 */
long ef_wire_base64_size(const char *s, size_t len);
int ef_wire_base64_decode(const char *s, size_t len, unsigned char *out);

/* Turns n little-endian float32, as decoded, into host floats in place. */
void ef_wire_floats_le_to_host(float *v, size_t n);

/* One array of numbers lifted out of a body: floats[off, off + len). */
struct ef_wire_span {
	size_t off, len;
};

/*
 * A body with its arrays of numbers taken out.  Every non-empty array whose
 * elements are all numbers becomes "[k]" in skel, k being its place in
 * rows, and its numbers go to floats in order; everything else is copied
 * as it is.  In skel an array holding exactly one number is therefore
 * always such a marker: the walk refuses what cJSON would tolerate and
 * could turn into a look-alike (control characters, numbers run into
 * other characters).
 */
struct ef_wire_scan {
	char *skel;                /* NUL-terminated */
	size_t skel_len;
	float *floats;             /* malloc'ed; the caller may take it */
	size_t nfloats, fcap;
	struct ef_wire_span *rows;
	size_t nrows, rcap;
};

enum ef_wire_rc {
	EF_WIRE_OK = 0,
	EF_WIRE_MALFORMED,         /* not JSON, for a reason cJSON might overlook */
	EF_WIRE_NOMEM,
};

/*
 * Walks body[0, len).  float_hint is the number of floats expected (to
 * size the buffer once), 0 if unknown.  On any return sc must be released
 * with ef_wire_scan_release.
 */
enum ef_wire_rc ef_wire_scan(const char *body, size_t len, size_t float_hint,
			     struct ef_wire_scan *sc);
void ef_wire_scan_release(struct ef_wire_scan *sc);

#endif
