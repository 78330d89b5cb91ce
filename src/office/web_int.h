/* Inside the web interface's pages (web.c, web_tasks.c): the schema as they read it, the
 * context, and answers. */
#ifndef ZILA_OFFICE_WEB_INT_H
#define ZILA_OFFICE_WEB_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>

#include "office_int.h"
#include "zila/office/web.h"
#include "zila/review.h"
#include "zila/store.h"

struct wcol {
	char *name, *type; /* type: "TEXT", "INTEGER" or "REAL" */
	char *dflt;        /* the DEFAULT's SQL text, or NULL */
	char *fk_table;    /* a single-column foreign key's target table, or NULL */
	bool notnull, pk;
	char **choices;    /* from CHECK (c = 'a' OR c = 'b') */
	size_t nchoices;
	bool has_min, has_max;
	double min, max;
};

struct wtable {
	char *name;
	char *pcol; /* partition column, NULL: org-wide */
	struct wcol *cols;
	size_t ncols;
	int pk, display, display2, code, phone; /* column indexes, -1: none */
	bool has_rowid;
	bool indexed; /* its sort index was looked for (web.c, sort_index) */
};

struct zila_office_web {
	sqlite3 *db;
	struct zila_store *s;
	char *device_id, *name, *district, *org;
	char *dir, *home; /* the replica's directory; the device's own district (NULL: every one). Never
			   * changed after zila_office_web_new: web_files.c reads them on a worker thread */
	bool hq;
	/* For the request being answered: its account's role narrows what the device may do. */
	bool viewer;   /* reads only */
	bool no_admin; /* no invites or revocations (a district's account at HQ) */
	struct wtable *tables;
	size_t ntables;
	int64_t schema_version;
};

void web_reply_json(struct zila_office_reply *out, int status, json_t *o);
void web_reply_error(struct zila_office_reply *out, int status, const char *code, const char *field,
		     const char *fmt, ...) ZILA_PRINTF(5, 6);
/* The decoded value of key in a query string (malloc'd), or NULL. */
char *web_query_get(const char *query, const char *key);
int web_schema(struct zila_office_web *w) ZILA_MUST_CHECK;
struct wtable *web_table(struct zila_office_web *w, const char *name);
void web_scope_sql(const struct zila_office_web *w, const struct wtable *t, struct office_sb *b, bool and);
json_t *web_column_json(sqlite3_stmt *st, int i);
/* A row's label ("110 — Kishunpur": code — name where the table has both, else its
 * display column) by its id, or NULL when no such row is in scope. */
json_t *web_row_label(struct zila_office_web *w, const struct wtable *t, const char *id);
/* Case-insensitive (ASCII) strstr. */
const char *web_strcasestr(const char *hay, const char *needle);

/* web_tasks.c */
void web_import(struct zila_office_web *w, bool commit, json_t *body, struct zila_office_reply *out);
void web_review(struct zila_office_web *w, struct zila_office_reply *out);
void web_resolve(struct zila_office_web *w, json_t *body, struct zila_office_reply *out);
void web_export(struct zila_office_web *w, const char *query, struct zila_office_reply *out);

/* web_files.c */
void web_attachments(struct zila_office_web *w, const char *query, struct zila_office_reply *out);
void web_attachment_fetch(struct zila_office_web *w, const char *id, struct zila_office_reply *out);

/* web_hq.c */
void web_hq_progress(struct zila_office_web *w, const char *query, struct zila_office_reply *out);
void web_hq_list(struct zila_office_web *w, const char *query, struct zila_office_reply *out);
void web_devices(struct zila_office_web *w, struct zila_office_reply *out);
void web_devices_act(struct zila_office_web *w, bool invite, json_t *body, struct zila_office_reply *out);

#endif
