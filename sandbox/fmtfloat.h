/*
 * fmtfloat.h - float32 as JSON text, fast, and exact on the way back.
 */
#ifndef SBX_FMTFLOAT_H
#define SBX_FMTFLOAT_H

#include <stddef.h>

/* Longest text sbx_fmt_float writes, without a terminator: "-1.23456789e-45". */
#define SBX_FMT_FLOAT_MAX 15

/*
 * Writes finite x into buf (at least SBX_FMT_FLOAT_MAX bytes, no NUL) with
 * 9 significant digits, trailing zeros dropped, in the style of "%.9g":
 * strtof gives back exactly x.  Returns the length written.  NaN and the
 * infinities are not JSON and are the caller's to avoid.
 */
size_t sbx_fmt_float(char *buf, float x);

#endif
