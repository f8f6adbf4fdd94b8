/*
 * settings.c - defaults < settings file < environment < flags.
 *
 * Values are kept as strings with their origin until ef_settings_finish(),
 * which validates the winning value of every key once.  Validating late
 * means a bad value in the file that the environment overrides does not
 * stop anyone, and every message can name the source that actually won.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "embfill/ident.h"
#include "embfill/redact.h"
#include "embfill/settings.h"
#include "embfill/strbuf.h"
#include "embfill/urllist.h"

enum ktype {
	T_DSN,      /* libpq connection string or URI, may be empty */
	T_ENUM,     /* one of a list */
	T_URL,      /* http or https URL */
	T_TEXT,     /* non-empty free text */
	T_INT,      /* whole number within [min, max] */
	T_FRACTION, /* decimal number from 0 to 1 */
	T_SECRET,   /* environment only, may be empty */
	T_FILE,     /* readable file, may be empty */
	T_PATH,     /* non-empty path, need not exist yet */
	T_TABLE,    /* identifier, may be schema-qualified */
	T_COLUMN,   /* identifier */
	T_COLUMN_OPT, /* identifier or empty (column absent) */
	T_TABLE_OPT,  /* qualified identifier or empty (table absent) */
	T_COLUMN_LIST, /* one or two identifiers, "id" or "id,seq" */
	T_CITE,     /* empty, a column, or "column->key" of a json/jsonb column */
	T_NAME_OPT, /* a collection name, or empty */
	T_SCHEMA,   /* identifier, unqualified */
	T_INT_OPT,  /* empty, or a whole number within [min, max] */
	T_PREFIX,   /* text put before others: any printable text, may be empty */
	T_SHARE,    /* a number from 0 to 1 */
};

struct keydef {
	const char *name;
	enum ktype type;
	long min, max;
	const char *choices; /* T_ENUM: "a|b|c" */
	const char *help;
};

#define KD(key, t, lo, hi, ch, hl) [EF_K_##key] = { #key, t, lo, hi, ch, hl }

static struct keydef keys[EF_K__COUNT] = {
	KD(DATABASE_URL, T_DSN, 0, 0, NULL,
	   "PostgreSQL connection string or URI (else libpq's PG* variables); flag --dsn"),
	KD(EMBED_PROVIDER, T_ENUM, 0, 0, "ollama|openai|tei",
	   "API of the embedding service: ollama, openai (OpenAI-compatible) or tei"),
	KD(EMBED_URL, T_URL, 0, 0, NULL,
	   "base URL of the embedding service (http or https); several endpoints of one "
	   "service and model separated by commas"),
	KD(EMBED_MODEL, T_TEXT, 0, 0, NULL, "model name sent to the service and recorded per vector"),
	KD(EMBED_DIM, T_INT, 1, 16000, NULL, "dimension of the model's vectors"),
	KD(EMBED_API_KEY, T_SECRET, 0, 0, NULL,
	   "API key (environment only, never a file or flag); prefer EMBED_API_KEY_FILE"),
	KD(EMBED_API_KEY_FILE, T_FILE, 0, 0, NULL, "file holding the API key (mode 600)"),
	KD(EMBED_CA_FILE, T_FILE, 0, 0, NULL,
	   "extra CA certificates (PEM) to trust for the service; verification stays on"),
	KD(EMBED_TIMEOUT_S, T_INT, 1, 3600, NULL, "seconds one embedding request may take"),
	KD(EMBED_CONNECT_TIMEOUT_S, T_INT, 1, 600, NULL, "seconds to connect to the service"),
	KD(EMBED_MAX_ATTEMPTS, T_INT, 1, 100, NULL,
	   "attempts per request for an answer that came but cannot be used; outside runs, "
	   "for every transient failure"),
	KD(EMBED_RETRY_BUDGET_S, T_INT, 1, 604800, NULL,
	   "seconds a run waits out an unreachable or failing service (every endpoint) "
	   "before it stops with exit 4"),
	KD(EMBED_CONCURRENCY, T_INT, 1, 64, NULL, "embedding requests in flight at once, per endpoint"),
	KD(EMBED_DOCUMENT_PREFIX, T_PREFIX, 0, 0, NULL,
	   "put before every document's text (\"search_document: \"); known models get their "
	   "documented prefix by default; quote it to keep a trailing blank"),
	KD(EMBED_QUERY_PREFIX, T_PREFIX, 0, 0, NULL,
	   "put before every query (spot-check, the swap gate); known models get theirs by "
	   "default"),
	KD(EMBED_DIMENSIONS, T_INT_OPT, 1, 16000, NULL,
	   "dimensions asked of a model that can shorten its vectors (openai, ollama); equal "
	   "to EMBED_DIM; empty: not asked"),
	KD(EMBED_TRUNCATE, T_ENUM, 0, 0, "false|true",
	   "let the service cut a text longer than the model's context (ollama, tei); false "
	   "refuses it, and the chunk is quarantined"),
	KD(EMBED_NORMALIZE, T_ENUM, 0, 0, "|true|false",
	   "tei: normalise vectors (empty: the service's default, which normalises)"),
	KD(PROVENANCE_MIN_COSINE, T_SHARE, 0, 0, NULL,
	   "verify --provenance: the cosine a stored vector needs with its re-embedding"),
	KD(INDEX_BUILD_MEMORY_MB, T_INT, 1, 2097151, NULL,
	   "maintenance_work_mem, in MB, of the session that builds a vector index after a "
	   "load (a graph that does not fit builds far slower)"),
	KD(INDEX_BUILD_WORKERS, T_INT, 0, 64, NULL,
	   "parallel workers of a vector index build (max_parallel_maintenance_workers)"),
	KD(EMBED_ENCODING, T_ENUM, 0, 0, "auto|base64|float",
	   "how vectors travel: auto (base64 from openai, and from tei's OpenAI route when it "
	   "gives /embed's vectors; else numbers), base64 or float"),
	KD(BATCH_SIZE, T_INT, 1, 10000, NULL, "chunks per embedding request"),
	KD(MAX_CHUNK_SIZE, T_INT, 16, 1000000, NULL, "largest chunk, in characters"),
	KD(CHUNK_OVERLAP, T_INT, 0, 999999, NULL,
	   "characters shared by neighbouring chunks (below MAX_CHUNK_SIZE)"),
	KD(HISTORYLOG, T_PATH, 0, 0, NULL, "the historylog file, newest entry first"),
	KD(LEASE_CHUNKS, T_INT, 1, 100000000, NULL,
	   "chunks per key-range lease of a run, the unit workers of one run share"),
	KD(LEASE_TIMEOUT_S, T_INT, 2, 86400, NULL,
	   "seconds without a heartbeat after which another worker takes a lease over"),
	KD(SCHEMA_LAYOUT, T_ENUM, 0, 0, "separate|inline",
	   "separate: embeddings in their own table; inline: embedding column on the chunk table"),
	KD(COLLECTION_MODE, T_ENUM, 0, 0, "column|lookup|table",
	   "column: collection name on each row; lookup: a key into COLLECTIONS_TABLE; table: "
	   "no collection column, the table is one collection"),
	KD(EMBFILL_SCHEMA, T_SCHEMA, 0, 0, NULL, "schema of embfill's own tables"),
	KD(DOCUMENTS_TABLE, T_TABLE_OPT, 0, 0, NULL,
	   "documents table (empty: none; citations then come from CITATION_*)"),
	KD(DOCUMENTS_ID_COLUMN, T_COLUMN, 0, 0, NULL, "documents: key column"),
	KD(DOCUMENTS_COLLECTION_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "documents: collection column (empty in table mode)"),
	KD(DOCUMENTS_TITLE_COLUMN, T_COLUMN_OPT, 0, 0, NULL, "documents: title column"),
	KD(DOCUMENTS_SOURCE_COLUMN, T_COLUMN_OPT, 0, 0, NULL, "documents: source URI column"),
	KD(DOCUMENTS_BODY_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "documents: full text column (`chunk` needs it)"),
	KD(CHUNKS_TABLE, T_TABLE, 0, 0, NULL, "chunk table"),
	KD(CHUNKS_ID_COLUMN, T_COLUMN_LIST, 0, 0, NULL,
	   "chunks: unique key, one column or two (\"id,chunk_seq\"); integer, text or uuid"),
	KD(CHUNKS_DOCUMENT_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "chunks: document key column (empty: no documents)"),
	KD(CHUNKS_COLLECTION_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "chunks: collection column (empty in table mode)"),
	KD(CHUNKS_INDEX_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "chunks: position within the document (empty: none)"),
	KD(CHUNKS_CONTENT_COLUMN, T_COLUMN, 0, 0, NULL, "chunks: text column"),
	KD(EMBEDDINGS_TABLE, T_TABLE, 0, 0, NULL, "embedding table (separate layout)"),
	KD(EMBEDDINGS_CHUNK_COLUMN, T_COLUMN_LIST, 0, 0, NULL,
	   "embeddings: chunk key column(s), as many as CHUNKS_ID_COLUMN"),
	KD(EMBEDDINGS_COLLECTION_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "embeddings: collection column (empty in table mode)"),
	KD(EMBEDDINGS_MODEL_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "embeddings: model name column (empty: kept in embfill's bookkeeping)"),
	KD(EMBEDDINGS_DIM_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "embeddings: dimension column (empty: none)"),
	KD(EMBEDDINGS_HASH_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "embeddings: SHA-256 of the embedded content, bytea or hex text (empty: kept in "
	   "embfill's bookkeeping)"),
	KD(EMBEDDINGS_VECTOR_COLUMN, T_COLUMN, 0, 0, NULL,
	   "embeddings: the vector column: vector, halfvec, real[] or double precision[]"),
	KD(EMBEDDINGS_AT_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "embeddings: time of embedding column (empty: none)"),
	KD(EMBEDDINGS_RUN_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "embeddings: embfill run id column (empty: none)"),
	KD(EMBEDDINGS_RECIPE_COLUMN, T_COLUMN_OPT, 0, 0, NULL,
	   "embeddings: the recipe's fingerprint, text (empty, or absent while left at its "
	   "default: kept in embfill's bookkeeping)"),
	KD(COLLECTIONS_TABLE, T_TABLE, 0, 0, NULL, "collection lookup table (lookup mode)"),
	KD(COLLECTIONS_KEY_COLUMN, T_COLUMN, 0, 0, NULL, "lookup: key column"),
	KD(COLLECTIONS_NAME_COLUMN, T_COLUMN, 0, 0, NULL, "lookup: collection name column"),
	KD(COLLECTION_NAME, T_NAME_OPT, 0, 0, NULL,
	   "table mode: the collection's name (empty: the chunk table's name)"),
	KD(CITATION_TITLE, T_CITE, 0, 0, NULL,
	   "citations' title: a chunk table column, or \"column->key\" of a json/jsonb column "
	   "(empty: DOCUMENTS_TITLE_COLUMN)"),
	KD(CITATION_SOURCE, T_CITE, 0, 0, NULL,
	   "citations' source: a chunk table column, or \"column->key\" of a json/jsonb "
	   "column (empty: DOCUMENTS_SOURCE_COLUMN)"),
	KD(SPOTCHECK_MIN_COVERAGE, T_FRACTION, 0, 1, NULL,
	   "share of chunks (0 to 1) that must have a vector of EMBED_MODEL for a spot-check "
	   "to speak for the whole collection; below it the result is partial (exit 1)"),
};

static const char *const defaults[EF_K__COUNT] = {
#define EF_KEY_DEFAULT(name, def) [EF_K_##name] = def,
	EF_SETTINGS_KEYS(EF_KEY_DEFAULT)
#undef EF_KEY_DEFAULT
};

struct slot {
	char *value;
	bool derived;        /* a default the model's documentation gives */
	enum ef_origin_kind kind;
	char *where; /* file name or flag spelling */
	unsigned line;
};

struct ef_settings {
	struct slot slots[EF_K__COUNT];
	struct ef_config cfg;
	bool finished;
	/* the parts of list and citation values, which the mapping points at */
	char chunk_key[EF_KEY_MAX][EF_IDENT_MAX + 1], emb_key[EF_KEY_MAX][EF_IDENT_MAX + 1];
	char cite[2][2][EF_IDENT_MAX * 4 + 1];
	char coll_name[EF_COLLECTION_NAME_MAX + 1];
};

ef_settings *ef_settings_new(void)
{
	ef_settings *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	for (int k = 0; k < EF_K__COUNT; k++) {
		s->slots[k].value = strdup(defaults[k]);
		if (!s->slots[k].value) {
			ef_settings_free(s);
			return NULL;
		}
	}
	return s;
}

void ef_settings_free(ef_settings *s)
{
	if (!s)
		return;
	for (int k = 0; k < EF_K__COUNT; k++) {
		free(s->slots[k].value);
		free(s->slots[k].where);
	}
	free(s);
}

const char *ef_settings_key_name(enum ef_key key)
{
	return (unsigned)key < EF_K__COUNT ? keys[key].name : "?";
}

const char *ef_settings_key_help(enum ef_key key)
{
	return (unsigned)key < EF_K__COUNT ? keys[key].help : "";
}

int ef_settings_key_lookup(const char *name)
{
	for (int k = 0; k < EF_K__COUNT; k++)
		if (strcmp(keys[k].name, name) == 0)
			return k;
	return -1;
}

static const char *nearest_key(const char *name)
{
	const char *best = NULL;
	size_t bestd = 4;

	for (int k = 0; k < EF_K__COUNT; k++) {
		size_t d = ef_edit_distance(name, keys[k].name, 3);
		if (d < bestd) {
			bestd = d;
			best = keys[k].name;
		}
	}
	return best;
}

/* Stores value unless a source of higher rank already set the key. */
static ef_status store(ef_settings *s, int k, const char *value, size_t vlen,
		       enum ef_origin_kind kind, const char *where, unsigned line)
{
	struct slot *sl = &s->slots[k];
	char *v, *w = NULL;

	if (sl->kind > kind)
		return EF_OK;
	v = strndup(value, vlen);
	if (where)
		w = strdup(where);
	if (!v || (where && !w)) {
		free(v);
		free(w);
		return EF_ERR_USAGE;
	}
	free(sl->value);
	free(sl->where);
	sl->value = v;
	sl->where = w;
	sl->kind = kind;
	sl->line = line;
	s->finished = false;
	return EF_OK;
}

/* --- dotenv ------------------------------------------------------------ */

struct line_ctx {
	const char *name;
	unsigned lineno;
	struct ef_error *err;
};

static ef_status malformed(struct line_ctx *lc, const char *why, const char *hint)
{
	ef_error_set(lc->err, EF_ERR_USAGE, "%s:%u: %s", lc->name, lc->lineno, why);
	return ef_error_hint(lc->err, "%s", hint);
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* After a closing quote only blanks and a comment may follow. */
static ef_status tail_ok(struct line_ctx *lc, const char *p, const char *end)
{
	p = skip_blanks(p, end);
	if (p < end && *p != '#')
		return malformed(lc, "text after the closing quote",
				 "put the whole value inside the quotes, or start a comment with #");
	return EF_OK;
}

static ef_status parse_double_quoted(struct line_ctx *lc, const char *p, const char *end,
				     char *out, size_t *olen)
{
	size_t n = 0;

	for (p++; p < end && *p != '"'; p++) {
		if (*p == '\\' && p + 1 < end) {
			p++;
			out[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
		} else {
			out[n++] = *p;
		}
	}
	if (p >= end)
		return malformed(lc, "unterminated double quote",
				 "close the value with \" on the same line");
	*olen = n;
	return tail_ok(lc, p + 1, end);
}

static ef_status parse_single_quoted(struct line_ctx *lc, const char *p, const char *end,
				     char *out, size_t *olen)
{
	const char *close = memchr(p + 1, '\'', (size_t)(end - p - 1));

	if (!close)
		return malformed(lc, "unterminated single quote",
				 "close the value with ' on the same line");
	*olen = (size_t)(close - p - 1);
	memcpy(out, p + 1, *olen);
	return tail_ok(lc, close + 1, end);
}

static void parse_bare(const char *p, const char *end, char *out, size_t *olen)
{
	const char *q = p;

	while (q < end && !(*q == '#' && q > p && (q[-1] == ' ' || q[-1] == '\t')))
		q++;
	while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
		q--;
	*olen = (size_t)(q - p);
	memcpy(out, p, *olen);
}

static bool key_char(char c, bool first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (!first && c >= '0' && c <= '9');
}

static ef_status key_in_file(struct line_ctx *lc, const char *key, int *k)
{
	const char *near;

	*k = ef_settings_key_lookup(key);
	if (*k == EF_K_EMBED_API_KEY) {
		malformed(lc, "EMBED_API_KEY is not read from settings files", "");
		return ef_error_hint(lc->err, "export EMBED_API_KEY in the environment, or put "
					      "the key in a file of its own (chmod 600) and set "
					      "EMBED_API_KEY_FILE to its path");
	}
	if (*k >= 0)
		return EF_OK;
	ef_error_set(lc->err, EF_ERR_USAGE, "%s:%u: unknown setting \"%.64s\"", lc->name,
		     lc->lineno, key);
	near = nearest_key(key);
	if (near)
		return ef_error_hint(lc->err, "did you mean %s? `man embfill.env` lists the keys",
				     near);
	return ef_error_hint(lc->err, "`man embfill.env` lists the keys");
}

static ef_status parse_line(ef_settings *s, struct line_ctx *lc, const char *p, const char *end)
{
	char key[128];
	const char *k0;
	char *val;
	size_t klen, vlen = 0;
	int k;
	ef_status st;

	p = skip_blanks(p, end);
	if (p == end || *p == '#')
		return EF_OK;
	if (memchr(p, '\0', (size_t)(end - p)))
		return malformed(lc, "the line holds a NUL byte", "save the file as plain text");
	if (end - p > 7 && strncmp(p, "export ", 7) == 0)
		p = skip_blanks(p + 7, end);
	k0 = p;
	while (p < end && key_char(*p, p == k0))
		p++;
	klen = (size_t)(p - k0);
	p = skip_blanks(p, end);
	if (klen == 0 || p == end || *p != '=')
		return malformed(lc, "expected KEY=VALUE",
				 "write one setting per line as KEY=VALUE; start comments with #");
	if (klen >= sizeof(key))
		return malformed(lc, "the key is too long", "`man embfill.env` lists the keys");
	memcpy(key, k0, klen);
	key[klen] = '\0';
	if (key_in_file(lc, key, &k) != EF_OK)
		return lc->err->status;
	{
		const char *v0 = p + 1;

		p = skip_blanks(v0, end);
		/* "KEY=   # note": blanks then a comment leave the value empty */
		if (p > v0 && p < end && *p == '#')
			p = end;
	}
	val = malloc((size_t)(end - p) + 1);
	if (!val)
		return ef_error_oom(lc->err, "reading a settings file");
	st = EF_OK;
	if (p < end && *p == '"')
		st = parse_double_quoted(lc, p, end, val, &vlen);
	else if (p < end && *p == '\'')
		st = parse_single_quoted(lc, p, end, val, &vlen);
	else
		parse_bare(p, end, val, &vlen);
	if (st == EF_OK && store(s, k, val, vlen, EF_FROM_FILE, lc->name, lc->lineno) != EF_OK)
		st = ef_error_oom(lc->err, "reading a settings file");
	free(val);
	return st;
}

ef_status ef_settings_load_text(ef_settings *s, const char *name, const char *text, size_t len,
				struct ef_error *err)
{
	struct line_ctx lc = { name, 0, err };
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		lc.lineno++;
		if (le > p && le[-1] == '\r')
			le--;
		if (parse_line(s, &lc, p, le) != EF_OK)
			return err->status;
		p = nl ? nl + 1 : end;
	}
	return EF_OK;
}

static ef_status unreadable(const char *path, const char *why, struct ef_error *err)
{
	ef_error_set(err, EF_ERR_USAGE, "cannot read settings file \"%s\": %s", path, why);
	return ef_error_hint(err, "--config takes a settings file of KEY=VALUE lines "
				  "(see embfill.env(5)); check the path and its permissions");
}

/* Reads the whole file: a directory or a read error is refused rather than
 * taken for an empty file, which would leave every setting at its default
 * without a word.  Pipes are fine (--config <(...)). */
ef_status ef_settings_load_file(ef_settings *s, const char *path, bool must_exist,
				struct ef_error *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;
	struct stat st;
	ef_status rc;

	if (!f) {
		if (!must_exist && errno == ENOENT)
			return EF_OK;
		return unreadable(path, strerror(errno), err);
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		ef_error_set(err, EF_ERR_USAGE, "settings file \"%s\" is a directory", path);
		return ef_error_hint(err, "--config takes a settings file of KEY=VALUE lines, "
					  "e.g. --config %s/embfill.env", path);
	}
	do {
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!nb || cap > (size_t)16 << 20) {
				free(nb ? nb : buf);
				fclose(f);
				return ef_error_set(err, EF_ERR_USAGE,
						    "settings file \"%s\" is too large", path);
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		int e = errno;
		free(buf);
		fclose(f);
		return unreadable(path, strerror(e), err);
	}
	fclose(f);
	rc = ef_settings_load_text(s, path, buf ? buf : "", len, err);
	free(buf);
	return rc;
}

ef_status ef_settings_load_env(ef_settings *s, char *const *envp, struct ef_error *err)
{
	for (; envp && *envp; envp++) {
		const char *eq = strchr(*envp, '=');
		char name[128];
		int k;

		if (!eq || (size_t)(eq - *envp) >= sizeof(name))
			continue;
		memcpy(name, *envp, (size_t)(eq - *envp));
		name[eq - *envp] = '\0';
		k = ef_settings_key_lookup(name);
		if (k < 0)
			continue;
		if (store(s, k, eq + 1, strlen(eq + 1), EF_FROM_ENV, NULL, 0) != EF_OK)
			return ef_error_oom(err, "reading the environment");
	}
	return EF_OK;
}

ef_status ef_settings_set_flag(ef_settings *s, const char *key, const char *value,
			       const char *flag, struct ef_error *err)
{
	int k = ef_settings_key_lookup(key);

	if (k < 0) {
		const char *near = nearest_key(key);
		ef_error_set(err, EF_ERR_USAGE, "%s: unknown setting \"%.64s\"", flag, key);
		if (near)
			return ef_error_hint(err, "did you mean %s?", near);
		return ef_error_hint(err, "`man embfill.env` lists the keys");
	}
	if (k == EF_K_EMBED_API_KEY) {
		ef_error_set(err, EF_ERR_USAGE, "%s: EMBED_API_KEY cannot be given on the command line",
			     flag);
		return ef_error_hint(err, "command lines are visible to every user of the host; "
					  "export EMBED_API_KEY or set EMBED_API_KEY_FILE");
	}
	if (k == EF_K_DATABASE_URL && ef_redact_dsn_has_password(value)) {
		ef_error_set(err, EF_ERR_USAGE, "%s: the connection string holds a password, and "
			     "command lines are visible to every user of the host; nothing was "
			     "connected to", flag);
		return ef_error_hint(err, "put DATABASE_URL in the settings file (embfill.env, "
					  "chmod 600), or leave the password out and let libpq "
					  "read it from PGPASSFILE or ~/.pgpass, or PGPASSWORD");
	}
	if (store(s, k, value, strlen(value), EF_FROM_FLAG, flag, 0) != EF_OK)
		return ef_error_oom(err, NULL);
	return EF_OK;
}

/* --- origins and display ---------------------------------------------- */

const char *ef_settings_value(const ef_settings *s, enum ef_key key)
{
	return (unsigned)key < EF_K__COUNT ? s->slots[key].value : "";
}

enum ef_origin_kind ef_settings_origin_kind(const ef_settings *s, enum ef_key key)
{
	return (unsigned)key < EF_K__COUNT ? s->slots[key].kind : EF_FROM_DEFAULT;
}

void ef_settings_origin(const ef_settings *s, enum ef_key key, char *buf, size_t n)
{
	const struct slot *sl = &s->slots[key];

	switch (sl->kind) {
	case EF_FROM_FILE:
		snprintf(buf, n, "%s:%u", sl->where, sl->line);
		break;
	case EF_FROM_ENV:
		snprintf(buf, n, "environment");
		break;
	case EF_FROM_FLAG:
		snprintf(buf, n, "flag %s", sl->where);
		break;
	default:
		if (sl->derived) {
			const struct ef_known_model *km =
				ef_recipe_known(s->slots[EF_K_EMBED_MODEL].value);
			snprintf(buf, n, "default for %s", km ? km->family : "the model");
		} else {
			snprintf(buf, n, "default");
		}
	}
}

char *ef_settings_display(const ef_settings *s, enum ef_key key)
{
	const char *v = ef_settings_value(s, key);

	if (key == EF_K_EMBED_API_KEY)
		return strdup(*v ? "*** (set)" : "(not set)");
	if (keys[key].type == T_DSN)
		return ef_redact_dsn(v);
	if (keys[key].type == T_URL)
		return ef_redact_url(v);
	if (keys[key].type == T_PREFIX) {
		char *q = NULL;

		/* in quotes: a trailing blank is part of it */
		return asprintf(&q, "\"%s\"", v) < 0 ? NULL : q;
	}
	return ef_redact(v);
}

void ef_settings_register_secrets(const ef_settings *s)
{
	ef_redact_add_secret(ef_settings_value(s, EF_K_EMBED_API_KEY));
	ef_redact_add_dsn_secrets(ef_settings_value(s, EF_K_DATABASE_URL));
}

/* --- validation -------------------------------------------------------- */

static ef_status bad_value(const ef_settings *s, int k, const char *why, struct ef_error *err)
{
	char origin[512], safe[256];
	char *shown = ef_settings_display(s, (enum ef_key)k);

	ef_settings_origin(s, (enum ef_key)k, origin, sizeof(origin));
	ef_escape_controls(shown ? shown : "", safe, sizeof(safe));
	ef_error_set(err, EF_ERR_USAGE, "%s=\"%s\" (from %s) %s", keys[k].name, safe, origin,
		     why);
	free(shown);
	return EF_ERR_USAGE;
}

static ef_status check_int(const ef_settings *s, int k, int *out, struct ef_error *err)
{
	const char *v = s->slots[k].value;
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (!*v || *end || errno == ERANGE || (*v != '-' && (*v < '0' || *v > '9'))) {
		bad_value(s, k, "is not a whole number", err);
		return ef_error_hint(err, "%s takes a whole number from %ld to %ld", keys[k].name,
				     keys[k].min, keys[k].max);
	}
	if (n < keys[k].min || n > keys[k].max) {
		bad_value(s, k, "is out of range", err);
		return ef_error_hint(err, "%s takes a whole number from %ld to %ld", keys[k].name,
				     keys[k].min, keys[k].max);
	}
	*out = (int)n;
	return EF_OK;
}

/* A share from 0 to 1, written with a point ("0.95", "1", ".5"); strtod
 * runs in the C numeric locale (only LC_CTYPE is ever set). */
static ef_status check_fraction(const ef_settings *s, int k, double *out, struct ef_error *err)
{
	const char *v = s->slots[k].value;
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (!*v || *end || errno == ERANGE || strspn(v, "0123456789.") != strlen(v)) {
		bad_value(s, k, "is not a decimal number", err);
		return ef_error_hint(err, "%s takes a share from 0 to 1, e.g. 0.95", keys[k].name);
	}
	if (!(d >= 0 && d <= 1)) {
		bad_value(s, k, "is out of range", err);
		return ef_error_hint(err, "%s takes a share from 0 to 1, e.g. 0.95", keys[k].name);
	}
	*out = d;
	return EF_OK;
}

static ef_status check_enum(const ef_settings *s, int k, struct ef_error *err)
{
	const char *v = s->slots[k].value, *c = keys[k].choices;
	size_t vl = strlen(v);

	while (*c) {
		size_t cl = strcspn(c, "|");
		if (cl == vl && strncmp(c, v, vl) == 0)
			return EF_OK;
		c += cl + (c[cl] == '|');
	}
	bad_value(s, k, "is not one of the accepted values", err);
	return ef_error_hint(err, "%s accepts %s", keys[k].name, keys[k].choices);
}

static bool http_url(const char *v)
{
	CURLU *u = curl_url();
	char *scheme = NULL;
	bool ok;

	ok = u && curl_url_set(u, CURLUPART_URL, v, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	     (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
	curl_free(scheme);
	curl_url_cleanup(u);
	return ok;
}

/* One URL, or a list of endpoints of one service (urllist.h). */
static ef_status check_url(const ef_settings *s, int k, struct ef_error *err)
{
	size_t n = 0, bad = 0;
	char **items = ef_url_list_split(s->slots[k].value, &n);

	if (!items)
		return ef_error_oom(err, "reading the settings");
	while (bad < n && http_url(items[bad]))
		bad++;
	ef_names_free(items);
	if (n > EF_URL_LIST_MAX) {
		bad_value(s, k, "lists more endpoints than embfill drives", err);
		return ef_error_hint(err, "list at most %d endpoints of one service", EF_URL_LIST_MAX);
	}
	if (bad == n)
		return EF_OK;
	if (n == 1)
		bad_value(s, k, "is not an http or https URL", err);
	else {
		char why[96];

		snprintf(why, sizeof(why), "has an endpoint (number %zu of %zu) that is not an "
			 "http or https URL", bad + 1, n);
		bad_value(s, k, why, err);
	}
	return ef_error_hint(err, "write it as http://host:port or https://host, e.g. "
				  "http://127.0.0.1:11434 for a local Ollama; several endpoints of "
				  "one service separated by commas");
}

/* The message names the origin but shows none of the value: a string libpq
 * cannot parse may hold a password anywhere, and libpq's reason quotes the
 * token it choked on, which may be the password itself. */
static ef_status check_dsn(const ef_settings *s, int k, struct ef_error *err)
{
	char origin[512], *why;
	PQconninfoOption *o = PQconninfoParse(s->slots[k].value, NULL);

	if (o) {
		PQconninfoFree(o);
		return EF_OK;
	}
	why = ef_redact_dsn_error(s->slots[k].value);
	ef_settings_origin(s, (enum ef_key)k, origin, sizeof(origin));
	ef_error_set(err, EF_ERR_USAGE, "%s (from %s) is not a connection string libpq "
		     "understands, and is not shown as it may hold a password: %s",
		     keys[k].name, origin, why ? why : "out of memory");
	free(why);
	return ef_error_hint(err, "write it as \"host=... port=5432 dbname=... user=...\" or "
				  "postgresql://host:5432/dbname?user=...; keep the password in "
				  "~/.pgpass or PGPASSWORD");
}

static ef_status check_file(const ef_settings *s, int k, struct ef_error *err)
{
	const char *v = s->slots[k].value;
	struct stat st;
	const char *reason = NULL;

	if (!*v)
		return EF_OK;

	if (stat(v, &st) != 0)
		reason = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		reason = "not a regular file";
	else if (access(v, R_OK) != 0)
		reason = strerror(errno);
	if (reason) {
		char why[300];
		snprintf(why, sizeof(why), "cannot be read: %s", reason);
		bad_value(s, k, why, err);
		return ef_error_hint(err, "point %s at a readable file, or leave it empty",
				     keys[k].name);
	}
	return EF_OK;
}

static void key_what(const ef_settings *s, int k, char *what, size_t n)
{
	char origin[300];

	ef_settings_origin(s, (enum ef_key)k, origin, sizeof(origin));
	snprintf(what, n, "%s (from %s)", keys[k].name, origin);
}

static ef_status check_ident(const ef_settings *s, int k, struct ef_error *err)
{
	const char *v = s->slots[k].value;
	char what[400];
	enum ktype t = keys[k].type;

	if ((t == T_COLUMN_OPT || t == T_TABLE_OPT) && !*v)
		return EF_OK;
	key_what(s, k, what, sizeof(what));
	return ef_ident_check(v, t == T_TABLE || t == T_TABLE_OPT, what, err);
}

/* Splits "a,b" (blanks around the comma allowed) into at most max parts
 * of out; returns the number of parts, 0 when a part is empty, or -1 when
 * there are more than max. */
static int split_list(const char *v, char out[][EF_IDENT_MAX + 1], int max)
{
	int n = 0;

	for (const char *p = v;; n++) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (!len || len > EF_IDENT_MAX)
			return 0;
		if (n == max)
			return -1;
		memcpy(out[n], p, len);
		out[n][len] = '\0';
		if (!comma)
			return n + 1;
		p = comma + 1;
	}
}

static ef_status check_list(const ef_settings *s, int k, struct ef_error *err)
{
	char parts[EF_KEY_MAX][EF_IDENT_MAX + 1], what[400];
	int n = split_list(s->slots[k].value, parts, EF_KEY_MAX);

	if (n <= 0) {
		bad_value(s, k, n < 0 ? "names more than two columns" : "is not one column or two "
			  "separated by a comma", err);
		return ef_error_hint(err, "a chunk key is one column (\"id\") or two (\"id,chunk_seq\"); "
				     "a primary key or unique index must cover exactly these");
	}
	key_what(s, k, what, sizeof(what));
	for (int i = 0; i < n; i++)
		if (ef_ident_check(parts[i], false, what, err) != EF_OK)
			return err->status;
	return EF_OK;
}

/* "column" or "column->key": the column is an identifier, the key any
 * printable text. */
static ef_status check_cite(const ef_settings *s, int k, struct ef_error *err)
{
	const char *v = s->slots[k].value, *arrow = strstr(v, "->");
	char col[EF_IDENT_MAX + 1], what[400];
	size_t len = arrow ? (size_t)(arrow - v) : strlen(v);

	if (!*v)
		return EF_OK;
	key_what(s, k, what, sizeof(what));
	if (len == 0 || len > EF_IDENT_MAX || (arrow && (!arrow[2] ||
						      !ef_utf8_printable(arrow + 2, strlen(arrow + 2))))) {
		bad_value(s, k, "is not a column or \"column->key\"", err);
		return ef_error_hint(err, "name a column of the chunk table (\"title\"), or a key of "
				     "its json/jsonb column (\"cmetadata->source\")");
	}
	memcpy(col, v, len);
	col[len] = '\0';
	return ef_ident_check(col, false, what, err);
}

static ef_status check_name(const ef_settings *s, int k, struct ef_error *err)
{
	char what[400];

	if (!*s->slots[k].value)
		return EF_OK;
	if (ef_collection_name_check(s->slots[k].value, err) == EF_OK)
		return EF_OK;
	key_what(s, k, what, sizeof(what));
	ef_error_prefix(err, "%s", what);
	return err->status;
}

static ef_status check_prefix(const ef_settings *s, int k, struct ef_error *err)
{
	const char *v = s->slots[k].value;
	size_t len = strlen(v);

	if (len > 1000) {
		bad_value(s, k, "is longer than 1000 bytes", err);
		return ef_error_hint(err, "a prefix is a few words: \"search_document: \"");
	}
	if (!ef_utf8_printable(v, len)) {
		bad_value(s, k, "holds a control character or bytes that are not UTF-8", err);
		return ef_error_hint(err, "%s takes printable text; quote it in the settings file "
				     "to keep a trailing blank: %s=\"query: \"", keys[k].name,
				     keys[k].name);
	}
	return EF_OK;
}

static ef_status check_share(const ef_settings *s, int k, struct ef_error *err)
{
	const char *v = s->slots[k].value;
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (!*v || *end || errno || !(d > 0 && d <= 1)) {
		bad_value(s, k, "is not a number above 0 and at most 1", err);
		return ef_error_hint(err, "%s takes a number like 0.99", keys[k].name);
	}
	return EF_OK;
}

static ef_status check_key(const ef_settings *s, int k, int *ival, double *dval,
			   struct ef_error *err)
{
	switch (keys[k].type) {
	case T_INT:
		return check_int(s, k, ival, err);
	case T_FRACTION:
		return check_fraction(s, k, dval, err);
	case T_ENUM:
		return check_enum(s, k, err);
	case T_URL:
		return check_url(s, k, err);
	case T_DSN:
		return check_dsn(s, k, err);
	case T_FILE:
		return check_file(s, k, err);
	case T_TEXT:
	case T_PATH:
		if (*s->slots[k].value)
			return EF_OK;
		bad_value(s, k, "is empty", err);
		return ef_error_hint(err, "%s: %s", keys[k].name, keys[k].help);
	case T_TABLE:
	case T_TABLE_OPT:
	case T_COLUMN:
	case T_COLUMN_OPT:
	case T_SCHEMA:
		return check_ident(s, k, err);
	case T_COLUMN_LIST:
		return check_list(s, k, err);
	case T_CITE:
		return check_cite(s, k, err);
	case T_NAME_OPT:
		return check_name(s, k, err);
	case T_SECRET:
		return EF_OK;
	case T_INT_OPT:
		if (!*s->slots[k].value) {
			*ival = 0;
			return EF_OK;
		}
		return check_int(s, k, ival, err);
	case T_PREFIX:
		return check_prefix(s, k, err);
	case T_SHARE:
		return check_share(s, k, err);
	}
	return EF_OK;
}

static const char *opt(const ef_settings *s, int k)
{
	return *s->slots[k].value ? s->slots[k].value : NULL;
}

/* "column" or "column->key" into a citation field, its parts kept in buf. */
static void cite_field(const char *v, char buf[2][EF_IDENT_MAX * 4 + 1],
		       struct ef_cite_field *f)
{
	const char *arrow = strstr(v, "->");

	memset(f, 0, sizeof(*f));
	if (!*v)
		return;
	snprintf(buf[0], sizeof(buf[0]), "%.*s", arrow ? (int)(arrow - v) : (int)strlen(v), v);
	f->column = buf[0];
	if (arrow) {
		snprintf(buf[1], sizeof(buf[1]), "%s", arrow + 2);
		f->json_key = buf[1];
	}
}

/* The collection of a table without one is named after the table. */
static void table_collection(ef_settings *s, const char *chunks)
{
	const char *dot = strrchr(chunks, '.');

	snprintf(s->coll_name, sizeof(s->coll_name), "%s",
		 *s->slots[EF_K_COLLECTION_NAME].value ? s->slots[EF_K_COLLECTION_NAME].value
						       : dot ? dot + 1 : chunks);
}

static void build_mapping(ef_settings *s)
{
	struct ef_mapping *m = &s->cfg.map;
	const char *mode = s->slots[EF_K_COLLECTION_MODE].value;
#define V(key) (s->slots[EF_K_##key].value)
#define O(key) opt(s, EF_K_##key)
	m->layout = strcmp(V(SCHEMA_LAYOUT), "inline") == 0 ? EF_LAYOUT_INLINE : EF_LAYOUT_SEPARATE;
	m->coll_mode = strcmp(mode, "lookup") == 0 ? EF_COLL_LOOKUP
		       : strcmp(mode, "table") == 0 ? EF_COLL_TABLE : EF_COLL_COLUMN;
	m->tool_schema = V(EMBFILL_SCHEMA);
	m->documents = O(DOCUMENTS_TABLE);
	m->doc_id = V(DOCUMENTS_ID_COLUMN);
	m->doc_collection = m->coll_mode == EF_COLL_TABLE ? NULL : O(DOCUMENTS_COLLECTION_COLUMN);
	m->doc_title = O(DOCUMENTS_TITLE_COLUMN);
	m->doc_source = O(DOCUMENTS_SOURCE_COLUMN);
	m->doc_body = O(DOCUMENTS_BODY_COLUMN);
	m->chunks = V(CHUNKS_TABLE);
	m->nkey = split_list(V(CHUNKS_ID_COLUMN), s->chunk_key, EF_KEY_MAX);
	split_list(V(EMBEDDINGS_CHUNK_COLUMN), s->emb_key, EF_KEY_MAX);
	for (int i = 0; i < EF_KEY_MAX; i++) {
		m->chunk_key[i] = i < m->nkey ? s->chunk_key[i] : NULL;
		m->emb_key[i] = i < m->nkey && s->emb_key[i][0] ? s->emb_key[i] : NULL;
	}
	m->chunk_id = m->chunk_key[0];
	m->chunk_document = m->documents ? O(CHUNKS_DOCUMENT_COLUMN) : NULL;
	m->chunk_collection = m->coll_mode == EF_COLL_TABLE ? NULL : O(CHUNKS_COLLECTION_COLUMN);
	m->chunk_index = O(CHUNKS_INDEX_COLUMN);
	m->chunk_content = V(CHUNKS_CONTENT_COLUMN);
	m->embeddings = m->layout == EF_LAYOUT_SEPARATE ? V(EMBEDDINGS_TABLE) : NULL;
	m->emb_chunk = m->emb_key[0];
	m->emb_collection = m->coll_mode == EF_COLL_TABLE || m->layout == EF_LAYOUT_INLINE
			    ? NULL : O(EMBEDDINGS_COLLECTION_COLUMN);
	m->emb_model = O(EMBEDDINGS_MODEL_COLUMN);
	m->emb_dim = O(EMBEDDINGS_DIM_COLUMN);
	m->emb_hash = O(EMBEDDINGS_HASH_COLUMN);
	m->emb_vector = V(EMBEDDINGS_VECTOR_COLUMN);
	m->emb_at = O(EMBEDDINGS_AT_COLUMN);
	m->emb_run = O(EMBEDDINGS_RUN_COLUMN);
	m->emb_recipe = O(EMBEDDINGS_RECIPE_COLUMN);
	m->emb_recipe_default = s->slots[EF_K_EMBEDDINGS_RECIPE_COLUMN].kind == EF_FROM_DEFAULT;
	m->lookup = m->coll_mode == EF_COLL_LOOKUP ? V(COLLECTIONS_TABLE) : NULL;
	m->lookup_key = V(COLLECTIONS_KEY_COLUMN);
	m->lookup_name = V(COLLECTIONS_NAME_COLUMN);
	table_collection(s, m->chunks);
	m->coll_name = m->coll_mode == EF_COLL_TABLE ? s->coll_name : NULL;
	cite_field(V(CITATION_TITLE), s->cite[0], &m->cite_title);
	cite_field(V(CITATION_SOURCE), s->cite[1], &m->cite_source);
#undef O
#undef V
}

/* The prefixes a known model's documentation gives, where the operator
 * set none; recomputed at every finish, so a change of model is followed. */
static ef_status derive_prefixes(ef_settings *s)
{
	const struct ef_known_model *km = ef_recipe_known(s->slots[EF_K_EMBED_MODEL].value);
	static const enum ef_key pk[2] = { EF_K_EMBED_DOCUMENT_PREFIX, EF_K_EMBED_QUERY_PREFIX };

	for (int i = 0; i < 2; i++) {
		struct slot *sl = &s->slots[pk[i]];
		const char *want;
		char *v;

		if (sl->kind != EF_FROM_DEFAULT)
			continue;
		want = km ? (i == 0 ? km->doc_prefix : km->query_prefix) : "";
		if (!(v = strdup(want)))
			return EF_ERR_NOMEM;
		free(sl->value);
		sl->value = v;
		sl->derived = km && *want;
	}
	return EF_OK;
}

/* The recipe's switches, where the provider has them. */
static ef_status check_recipe(ef_settings *s, struct ef_error *err)
{
	const struct ef_config *c = &s->cfg;
	bool tei = strcmp(c->provider, "tei") == 0, openai = strcmp(c->provider, "openai") == 0;

	if (c->dimensions && c->dimensions != c->embed_dim) {
		char why[64];

		snprintf(why, sizeof(why), "differs from EMBED_DIM=%d", c->embed_dim);
		bad_value(s, EF_K_EMBED_DIMENSIONS, why, err);
		return ef_error_hint(err, "the vectors asked for are the vectors stored: set "
					  "EMBED_DIM=%d too, or leave EMBED_DIMENSIONS empty",
				     c->dimensions);
	}
	if (c->dimensions && tei) {
		bad_value(s, EF_K_EMBED_DIMENSIONS, "cannot be asked of text-embeddings-inference's "
			  "/embed, which has no such parameter", err);
		return ef_error_hint(err, "leave EMBED_DIMENSIONS empty, or use TEI's OpenAI route "
					  "with EMBED_PROVIDER=openai");
	}
	if (c->truncate && openai) {
		bad_value(s, EF_K_EMBED_TRUNCATE, "cannot be asked of an OpenAI-style service, which "
			  "has no truncation switch", err);
		return ef_error_hint(err, "leave EMBED_TRUNCATE=false: an over-long chunk is "
					  "refused and quarantined with the service's reason");
	}
	if (c->normalize >= 0 && !tei) {
		bad_value(s, EF_K_EMBED_NORMALIZE, "is a switch of text-embeddings-inference only", err);
		return ef_error_hint(err, "leave EMBED_NORMALIZE empty for %s, whose vectors come "
					  "normalised", c->provider);
	}
	return EF_OK;
}

static ef_status check_cross(ef_settings *s, struct ef_error *err)
{
	if (s->cfg.chunk_overlap >= s->cfg.max_chunk_size) {
		bad_value(s, EF_K_CHUNK_OVERLAP, "is not below MAX_CHUNK_SIZE", err);
		return ef_error_hint(err, "CHUNK_OVERLAP must be smaller than MAX_CHUNK_SIZE (%d); "
					  "a tenth to a fifth of it is usual",
				     s->cfg.max_chunk_size);
	}
	return EF_OK;
}

ef_status ef_settings_finish(ef_settings *s, struct ef_error *err)
{
	int ival[EF_K__COUNT] = { 0 };
	double dval[EF_K__COUNT] = { 0 };
	struct ef_config *c = &s->cfg;

	s->finished = false;
	if (derive_prefixes(s) != EF_OK)
		return ef_error_oom(err, "reading the settings");
	for (int k = 0; k < EF_K__COUNT; k++)
		if (check_key(s, k, &ival[k], &dval[k], err) != EF_OK)
			return err->status;
	c->dsn = s->slots[EF_K_DATABASE_URL].value;
	c->provider = s->slots[EF_K_EMBED_PROVIDER].value;
	c->embed_url = s->slots[EF_K_EMBED_URL].value;
	c->embed_model = s->slots[EF_K_EMBED_MODEL].value;
	c->embed_dim = ival[EF_K_EMBED_DIM];
	c->api_key = opt(s, EF_K_EMBED_API_KEY);
	c->api_key_file = opt(s, EF_K_EMBED_API_KEY_FILE);
	c->ca_file = opt(s, EF_K_EMBED_CA_FILE);
	c->timeout_s = ival[EF_K_EMBED_TIMEOUT_S];
	c->connect_timeout_s = ival[EF_K_EMBED_CONNECT_TIMEOUT_S];
	c->max_attempts = ival[EF_K_EMBED_MAX_ATTEMPTS];
	c->retry_budget_s = ival[EF_K_EMBED_RETRY_BUDGET_S];
	c->concurrency = ival[EF_K_EMBED_CONCURRENCY];
	c->encoding = s->slots[EF_K_EMBED_ENCODING].value;
	c->batch_size = ival[EF_K_BATCH_SIZE];
	c->max_chunk_size = ival[EF_K_MAX_CHUNK_SIZE];
	c->chunk_overlap = ival[EF_K_CHUNK_OVERLAP];
	c->historylog = s->slots[EF_K_HISTORYLOG].value;
	c->lease_chunks = ival[EF_K_LEASE_CHUNKS];
	c->lease_timeout_s = ival[EF_K_LEASE_TIMEOUT_S];
	c->spotcheck_min_coverage = dval[EF_K_SPOTCHECK_MIN_COVERAGE];
	c->doc_prefix = s->slots[EF_K_EMBED_DOCUMENT_PREFIX].value;
	c->query_prefix = s->slots[EF_K_EMBED_QUERY_PREFIX].value;
	c->dimensions = ival[EF_K_EMBED_DIMENSIONS];
	c->truncate = strcmp(s->slots[EF_K_EMBED_TRUNCATE].value, "true") == 0;
	c->normalize = !*s->slots[EF_K_EMBED_NORMALIZE].value ? -1
		       : strcmp(s->slots[EF_K_EMBED_NORMALIZE].value, "true") == 0;
	c->provenance_min_cosine = strtod(s->slots[EF_K_PROVENANCE_MIN_COSINE].value, NULL);
	c->index_build_memory_mb = ival[EF_K_INDEX_BUILD_MEMORY_MB];
	c->index_build_workers = ival[EF_K_INDEX_BUILD_WORKERS];
	{
		struct ef_recipe r = { c->doc_prefix, c->dimensions, c->truncate, c->normalize };

		if (!ef_recipe_id(&r, c->recipe_id))
			return ef_error_oom(err, "reading the settings");
	}
	build_mapping(s);
	if (check_cross(s, err) != EF_OK || check_recipe(s, err) != EF_OK)
		return err->status;
	s->finished = true;
	return EF_OK;
}

const struct ef_config *ef_settings_config(const ef_settings *s)
{
	return s->finished ? &s->cfg : NULL;
}
