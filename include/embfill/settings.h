/*
 * settings.h - where every value comes from, and what it is.
 *
 * Sources, lowest to highest: built-in defaults < settings file (dotenv)
 * < process environment < command-line flags.  Each value remembers its
 * origin (file and line, variable, flag) so that the console, `doctor` and
 * every error message can say where a bad value came from.  The order in
 * which sources are loaded does not matter: a value only replaces one from
 * a source of lower or equal rank.
 *
 * After loading, ef_settings_finish() validates every value and builds the
 * typed struct ef_config that the rest of core reads.
 */
#ifndef EMBFILL_SETTINGS_H
#define EMBFILL_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/error.h"
#include "embfill/recipe.h"

/* X(name, default) for every key; the table of types and limits is in
 * core/settings.c.  Keys are the names used in files and the environment. */
#define EF_SETTINGS_KEYS(X)                                  \
	X(DATABASE_URL, "")                                  \
	X(EMBED_PROVIDER, "ollama")                          \
	X(EMBED_URL, "http://127.0.0.1:11434")               \
	X(EMBED_MODEL, "nomic-embed-text")                   \
	X(EMBED_DIM, "768")                                  \
	X(EMBED_API_KEY, "")                                 \
	X(EMBED_API_KEY_FILE, "")                            \
	X(EMBED_CA_FILE, "")                                 \
	X(EMBED_TIMEOUT_S, "60")                             \
	X(EMBED_CONNECT_TIMEOUT_S, "10")                     \
	X(EMBED_MAX_ATTEMPTS, "6")                           \
	X(EMBED_RETRY_BUDGET_S, "300")                       \
	X(EMBED_CONCURRENCY, "2")                            \
	X(EMBED_ENCODING, "auto")                            \
	X(EMBED_DOCUMENT_PREFIX, "")                         \
	X(EMBED_QUERY_PREFIX, "")                            \
	X(EMBED_DIMENSIONS, "")                              \
	X(EMBED_TRUNCATE, "false")                           \
	X(EMBED_NORMALIZE, "")                               \
	X(PROVENANCE_MIN_COSINE, "0.99")                     \
	X(INDEX_BUILD_MEMORY_MB, "1024")                     \
	X(INDEX_BUILD_WORKERS, "2")                          \
	X(BATCH_SIZE, "100")                                 \
	X(MAX_CHUNK_SIZE, "1000")                            \
	X(CHUNK_OVERLAP, "100")                              \
	X(HISTORYLOG, "agents/historylog.md")                \
	X(LEASE_CHUNKS, "10000")                             \
	X(LEASE_TIMEOUT_S, "60")                             \
	X(SCHEMA_LAYOUT, "separate")                         \
	X(COLLECTION_MODE, "column")                         \
	X(EMBFILL_SCHEMA, "embfill")                         \
	X(DOCUMENTS_TABLE, "documents")                      \
	X(DOCUMENTS_ID_COLUMN, "id")                         \
	X(DOCUMENTS_COLLECTION_COLUMN, "collection")         \
	X(DOCUMENTS_TITLE_COLUMN, "title")                   \
	X(DOCUMENTS_SOURCE_COLUMN, "source_uri")             \
	X(DOCUMENTS_BODY_COLUMN, "body")                     \
	X(CHUNKS_TABLE, "document_chunks")                   \
	X(CHUNKS_ID_COLUMN, "id")                            \
	X(CHUNKS_DOCUMENT_COLUMN, "document_id")             \
	X(CHUNKS_COLLECTION_COLUMN, "collection")            \
	X(CHUNKS_INDEX_COLUMN, "chunk_index")                \
	X(CHUNKS_CONTENT_COLUMN, "content")                  \
	X(EMBEDDINGS_TABLE, "document_embeddings")           \
	X(EMBEDDINGS_CHUNK_COLUMN, "chunk_id")               \
	X(EMBEDDINGS_COLLECTION_COLUMN, "collection")        \
	X(EMBEDDINGS_MODEL_COLUMN, "model")                  \
	X(EMBEDDINGS_DIM_COLUMN, "dim")                      \
	X(EMBEDDINGS_HASH_COLUMN, "content_sha256")          \
	X(EMBEDDINGS_VECTOR_COLUMN, "embedding")             \
	X(EMBEDDINGS_AT_COLUMN, "embedded_at")               \
	X(EMBEDDINGS_RUN_COLUMN, "run_id")                   \
	X(EMBEDDINGS_RECIPE_COLUMN, "recipe")                \
	X(COLLECTIONS_TABLE, "collections")                  \
	X(COLLECTIONS_KEY_COLUMN, "id")                      \
	X(COLLECTIONS_NAME_COLUMN, "name")                   \
	X(COLLECTION_NAME, "")                               \
	X(CITATION_TITLE, "")                                \
	X(CITATION_SOURCE, "")                               \
	X(SPOTCHECK_MIN_COVERAGE, "0.95")

enum ef_key {
#define EF_KEY_ENUM(name, def) EF_K_##name,
	EF_SETTINGS_KEYS(EF_KEY_ENUM)
#undef EF_KEY_ENUM
	EF_K__COUNT
};

enum ef_origin_kind {
	EF_FROM_DEFAULT = 0,
	EF_FROM_FILE = 1,
	EF_FROM_ENV = 2,
	EF_FROM_FLAG = 3,
};

enum ef_layout { EF_LAYOUT_SEPARATE, EF_LAYOUT_INLINE };
/* column: a collection column on the rows; lookup: a key into a table of
 * names; table: no collection at all, the table is one collection. */
enum ef_collection_mode { EF_COLL_COLUMN, EF_COLL_LOOKUP, EF_COLL_TABLE };

/* A chunk key of one or two columns (CHUNKS_ID_COLUMN "id" or "id,seq"). */
#define EF_KEY_MAX 2

/* Where a citation's title or source comes from: a column, or a key of a
 * json/jsonb column ("cmetadata->source"); column NULL when not mapped. */
struct ef_cite_field {
	const char *column;
	const char *json_key;    /* NULL: the column's own value */
};

/*
 * Table and column names of the collection's data.  Table names may be
 * schema-qualified ("app.chunks").  In the inline layout the EMBEDDINGS_*
 * column names refer to columns of the chunk table, and `embeddings` is
 * NULL.  In lookup mode the chunk, document and embedding "collection"
 * columns hold the lookup table's key; names come from the lookup table.
 * In table mode there is no collection column: the chunk table is one
 * collection, named coll_name.  Every name that may be left empty in the
 * settings is NULL here when it is (no documents table, no chunk index, no
 * model or hash column: those live in embfill's bookkeeping then).
 * chunk_id and emb_chunk are the first columns of the keys.
 */
struct ef_mapping {
	enum ef_layout layout;
	enum ef_collection_mode coll_mode;
	const char *tool_schema;
	const char *documents, *doc_id, *doc_collection, *doc_title, *doc_source, *doc_body;
	const char *chunks, *chunk_id, *chunk_document, *chunk_collection, *chunk_index,
		*chunk_content;
	const char *embeddings, *emb_chunk, *emb_collection, *emb_model, *emb_dim, *emb_hash,
		*emb_vector, *emb_at, *emb_run;
	const char *emb_recipe;                 /* the recipe column; NULL: bookkeeping */
	bool emb_recipe_default;                /* EMBEDDINGS_RECIPE_COLUMN was not set: a
						   table without the column is fine */
	const char *lookup, *lookup_key, *lookup_name;
	int nkey;                               /* columns in the chunk key: 1 or 2 */
	const char *chunk_key[EF_KEY_MAX];      /* the chunk table's key columns */
	const char *emb_key[EF_KEY_MAX];        /* the embedding table's, same order */
	const char *coll_name;                  /* table mode: the collection's name */
	struct ef_cite_field cite_title, cite_source;
};

/* Validated, typed view of the settings; strings live as long as the
 * ef_settings they came from. */
struct ef_config {
	const char *dsn;          /* "" means libpq's PG* variables and defaults */
	const char *provider;     /* "ollama" | "openai" | "tei" */
	const char *embed_url;    /* one URL, or several of one service ("a,b") */
	const char *embed_model;
	int embed_dim;
	const char *api_key;      /* NULL when unset; environment only */
	const char *api_key_file; /* NULL when unset */
	const char *ca_file;      /* NULL when unset */
	int timeout_s;
	int connect_timeout_s;
	int max_attempts;
	int retry_budget_s;       /* how long a run waits out an unreachable service */
	int concurrency;
	const char *encoding;     /* "auto" | "base64" | "float" (openai vectors) */
	/* the recipe (recipe.h): how texts are given to the model */
	const char *doc_prefix;   /* before every document ("" none) */
	const char *query_prefix; /* before every query (spot-check, the swap gate) */
	int dimensions;           /* asked of the service; 0 not asked */
	bool truncate;            /* the service may cut an over-long text */
	int normalize;            /* -1 the service's default, 0 off, 1 on (tei) */
	char recipe_id[24];       /* the recipe's fingerprint, "r1-..." */
	double provenance_min_cosine;
	int index_build_memory_mb; /* maintenance_work_mem of a vector index build */
	int index_build_workers;   /* its max_parallel_maintenance_workers */
	int batch_size;
	int max_chunk_size;
	int chunk_overlap;
	const char *historylog;
	int lease_chunks;         /* chunks per key-range lease of a run */
	int lease_timeout_s;      /* a lease without a heartbeat this long is taken over */
	double spotcheck_min_coverage; /* below it, a spot-check is partial (0..1) */
	struct ef_mapping map;
};

typedef struct ef_settings ef_settings;

/* Returns settings holding the built-in defaults; NULL when out of memory. */
ef_settings *ef_settings_new(void);
void ef_settings_free(ef_settings *s);

/*
 * Reads a dotenv file: KEY=VALUE lines, blank lines and # comments, an
 * optional "export " prefix, values bare (an unquoted " #" starts a
 * comment), 'single-quoted' (literal) or "double-quoted" (\" \\ \n \t
 * escapes).  A malformed line or an unknown key stops with EF_ERR_USAGE
 * naming the file and line.  When must_exist is false a missing file is
 * not an error (the default ./embfill.env).
 */
ef_status ef_settings_load_file(ef_settings *s, const char *path, bool must_exist,
				struct ef_error *err);

/* Same as ef_settings_load_file() on text already in memory; name is used
 * in origins and messages.  For tests and fuzzing. */
ef_status ef_settings_load_text(ef_settings *s, const char *name, const char *text,
				size_t len, struct ef_error *err);

/* Reads the known keys from an environ-style array ("KEY=VALUE", NULL
 * terminated); other variables are ignored. */
ef_status ef_settings_load_env(ef_settings *s, char *const *envp, struct ef_error *err);

/* Sets a key from a command-line flag; flag is how the operator spelled it
 * ("--batch-size", "--set"). */
ef_status ef_settings_set_flag(ef_settings *s, const char *key, const char *value,
			       const char *flag, struct ef_error *err);

/* Validates every value and builds the config.  EF_ERR_USAGE with a message
 * that names the key, its origin and what is accepted. */
ef_status ef_settings_finish(ef_settings *s, struct ef_error *err);

/* The config built by ef_settings_finish(); NULL before it succeeded. */
const struct ef_config *ef_settings_config(const ef_settings *s);

/* Raw value (never NULL) and origin of one key. */
const char *ef_settings_value(const ef_settings *s, enum ef_key key);
enum ef_origin_kind ef_settings_origin_kind(const ef_settings *s, enum ef_key key);

/* Origin for display: "default", "./embfill.env:3", "environment", "flag --dsn";
 * a prefix that comes from the model's documentation: "default for
 * nomic-embed-text". */
void ef_settings_origin(const ef_settings *s, enum ef_key key, char *buf, size_t n);

/* Value for display with secrets masked; caller frees. */
char *ef_settings_display(const ef_settings *s, enum ef_key key);

const char *ef_settings_key_name(enum ef_key key);
/* Key by name, or -1 when unknown. */
int ef_settings_key_lookup(const char *name);
/* One line describing what the key is and what it accepts. */
const char *ef_settings_key_help(enum ef_key key);

/* Registers the secrets found in the settings (API key, key file contents
 * are registered by the reader, database password) with redact. */
void ef_settings_register_secrets(const ef_settings *s);

#endif
