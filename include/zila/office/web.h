/* The pages of the local web interface (proto/web/API.md): records of any synced table with
 * forms from the schema, search and paging on the server, history and sync state, import
 * preview and commit (the code of `zila import`), review (the store calls of `zila conflicts
 * resolve` and `zila duplicates merge`), export. Answers requests the HTTP server (src/net,
 * which it never sees) passed on after its login, Host and CSRF checks; the CLI wires the
 * two. Reads and writes are scoped to the device's district exactly as sync is. */
#ifndef ZILA_OFFICE_WEB_H
#define ZILA_OFFICE_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "zila/err.h"
#include "zila/store.h"

/* Who serves the pages (from the device's certificate); strings are copied. */
struct zila_office_who {
	const char *device_id;     /* readable device id */
	const char *name;          /* the device's name ("patna-1") */
	const char *district;      /* the district it may read and write; NULL: every one (HQ) */
	const char *org;           /* the organisation's name, may be NULL */
	bool hq;
};

/* One answer: HTTP status, body (malloc'd, the caller frees), content type ("" for JSON)
 * and, for a download, the file name it is offered under. */
struct zila_office_reply {
	int status;
	char *body;
	size_t body_len;
	char ctype[64];
	char filename[128];
	bool inline_file; /* a file shown in the page (a photo) rather than saved */
};

struct zila_office_web;

/* Opens the pages on the replica in dir: its own plain SQLite connection to the user tables
 * (writes through it are captured like any program's) and s, the caller's store, for sync
 * state, history and review (borrowed: it must outlive the pages, and only the caller's
 * thread may use both). *out is the caller's: zila_office_web_free(). */
int zila_office_web_new(struct zila_office_web **out, const char *dir, struct zila_store *s,
			const struct zila_office_who *who, struct zila_error *err) ZILA_MUST_CHECK;
void zila_office_web_free(struct zila_office_web *w);

/* Answers one request (method "GET", "POST", "PUT" or "DELETE"; path percent-decoded;
 * query as sent; body body_len bytes, NUL-terminated). Every failure is an answer too: a
 * 4xx or 5xx status with {"error": plain words, "code", "field"}. */
void zila_office_web_handle(struct zila_office_web *w, const char *method, const char *path, const char *query,
			    const char *body, size_t body_len, struct zila_office_reply *out);
/* The same for a web account's role: NULL, "owner" or "admin" as the device; "viewer" reads
 * only (403 code "role" for any change but the language); "district:<id>" as that district's
 * laptop would (403 code "scope" for everything when the device does not hold that district). */
void zila_office_web_handle_as(struct zila_office_web *w, const char *role, const char *method, const char *path,
			       const char *query, const char *body, size_t body_len, struct zila_office_reply *out);

/* Uploads and file contents of attachments (POST /api/attachments, GET
 * /api/attachments/ID/content; proto/web/API.md "Attachments"), for a role as above. Unlike
 * the calls above it may run on another thread, beside them: it opens a store of its own for
 * the call and reads of w only what never changes after zila_office_web_new. */
void zila_office_web_files_as(struct zila_office_web *w, const char *role, const char *method, const char *path,
			      const char *query, const char *body, size_t body_len, struct zila_office_reply *out);

#endif
