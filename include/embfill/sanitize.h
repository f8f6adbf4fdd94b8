/*
 * sanitize.h - text that may reach a terminal.
 *
 * Collection names, titles, chunk text, model names and server messages
 * come from the database or the embedding service, and a terminal obeys
 * what they hold: ESC clears the screen or sets the window title, BEL
 * rings, a C1 CSI (U+009B) starts a control sequence, a bare newline forges
 * an output line.  Every printer passes what it prints through this module,
 * which writes such characters as visible escapes ("\x1b", "\u009b") and
 * bytes that are not UTF-8 as "\xNN", so the output is valid UTF-8 holding
 * no control character but the ones the printer itself meant.
 */
#ifndef EMBFILL_SANITIZE_H
#define EMBFILL_SANITIZE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 sequence at s (at most len bytes) with its code point
 * in *cp, or 0 when it is malformed, overlong, a surrogate or beyond
 * U+10FFFF. */
size_t ef_utf8_char(const unsigned char *s, size_t len, uint32_t *cp);

/* Flags of ef_sanitize(). */
#define EF_SAN_KEEP_LINES 1u /* \n and \t are the text's own and stay */
#define EF_SAN_JSON 2u       /* escapes as JSON writes them (\u001b, \ufffd for a bad byte),
				for JSON text whose control characters can only be inside
				strings */

/* The first len bytes of s with every C0 control character, DEL, C1 control
 * character (U+0080..U+009F) and byte that is not UTF-8 written as a
 * visible escape.  Newly allocated; NULL on allocation failure. */
char *ef_sanitize(const char *s, size_t len, unsigned flags);


#endif
