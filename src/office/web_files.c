/* Attachments in the web interface's pages (#25, proto/web/API.md "Attachments"): a record's
 * files with what is here of each, what is still missing, a fetch asked for, and (on a worker
 * thread, zila_office_web_files_as) uploads, shrunk when asked, and file contents. The scope
 * is the records' own: a district's account or laptop sees and adds only its district's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web_int.h"
#include "zila/blob.h"
#include "zila/office/shrink.h"

static const char *state_word(const struct zila_attachment *a)
{
	return a->state == ZILA_BLOB_PRESENT ? "here" : a->state == ZILA_BLOB_PARTIAL ? "partial" : "missing";
}

static json_t *att_json(const struct zila_attachment *a)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:i, s:b, s:s}", "id", a->id, "name", a->name, "size",
			      (json_int_t)a->size, "media_type", a->media_type, "district", a->district, "state",
			      state_word(a), "have_bytes", (json_int_t)a->have_bytes, "percent",
			      a->size ? (int)(a->have_bytes * 100 / a->size) : 100, "asked", a->asked, "hash", a->hash);
	json_object_set_new(o, "owner_table", a->owner_table[0] ? json_string(a->owner_table) : json_null());
	json_object_set_new(o, "owner_id", a->owner_id[0] ? json_string(a->owner_id) : json_null());
	json_object_set_new(o, "owner_column", a->owner_column[0] ? json_string(a->owner_column) : json_null());
	json_object_set_new(o, "original_hash", a->original_hash[0] ? json_string(a->original_hash) : json_null());
	json_object_set_new(o, "original_size", a->original_hash[0] ? json_integer((json_int_t)a->original_size) : json_null());
	json_object_set_new(o, "added_on", json_string(a->added_on));
	return o;
}

static bool in_scope(const char *district, const struct zila_attachment *a)
{
	return district == NULL || strcmp(district, a->district) == 0;
}

/* --- on the loop: listing and asking ------------------------------------------------------ */

struct missing_ctx {
	const char *district;
	json_t *arr;
	size_t n;
};

static int missing_cb(void *ctx, const struct zila_attachment *a)
{
	struct missing_ctx *m = ctx;
	if (a->state == ZILA_BLOB_PRESENT || !in_scope(m->district, a))
		return 0;
	m->n++;
	if (json_array_size(m->arr) < 200)
		json_array_append_new(m->arr, att_json(a));
	return 0;
}

/* GET /api/attachments?table=T&id=ID: a record's files; ?missing=1: every file rows here refer
 * to that is not here whole (at most 200 listed, total counts all). */
void web_attachments(struct zila_office_web *w, const char *query, struct zila_office_reply *out)
{
	char *table = web_query_get(query, "table"), *id = web_query_get(query, "id"),
	     *missing = web_query_get(query, "missing");
	struct zila_error err;
	zila_error_clear(&err);
	json_t *arr = json_array();
	if (missing != NULL && strcmp(missing, "1") == 0) {
		struct missing_ctx m = { w->district, arr, 0 };
		int r = zila_blob_list(w->s, missing_cb, &m, &err);
		if (r != 0) {
			web_reply_error(out, 500, "internal", NULL, "%s", zila_error_msg(&err, r));
			goto out;
		}
		web_reply_json(out, 200, json_pack("{s:O, s:I}", "attachments", arr, "total", (json_int_t)m.n));
		goto out;
	}
	struct wtable *t = table ? web_table(w, table) : NULL;
	if (t == NULL || id == NULL) {
		web_reply_error(out, table && id ? 404 : 400, table && id ? "not_found" : "invalid", NULL,
				table && id ? "no synced table '%s'" : "say which record: ?table=T&id=ID (or ?missing=1)%s",
				table && id ? table : "");
		goto out;
	}
	json_t *label = web_row_label(w, t, id);
	if (label == NULL) {
		web_reply_error(out, 404, "not_found", NULL, "no row '%s' in '%s'", id, table);
		goto out;
	}
	json_decref(label);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(w->db,
			       "SELECT id FROM attachments WHERE owner_table = ?1 AND owner_id = ?2 AND"
			       " (?3 IS NULL OR district_id = ?3) ORDER BY added_on, rowid",
			       -1, &st, NULL) != SQLITE_OK) {
		web_reply_error(out, 500, "internal", NULL, "cannot read the attachments: %s", sqlite3_errmsg(w->db));
		goto out;
	}
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if (w->district)
		sqlite3_bind_text(st, 3, w->district, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct zila_attachment a;
		if (zila_blob_find(w->s, (const char *)sqlite3_column_text(st, 0), &a, &err) == 0)
			json_array_append_new(arr, att_json(&a));
	}
	sqlite3_finalize(st);
	web_reply_json(out, 200, json_pack("{s:O}", "attachments", arr));
out:
	json_decref(arr);
	free(table);
	free(id);
	free(missing);
}

/* POST /api/attachments/ID/fetch: fetched at the next sync whatever the link's policy. */
void web_attachment_fetch(struct zila_office_web *w, const char *id, struct zila_office_reply *out)
{
	struct zila_attachment a;
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_blob_find(w->s, id, &a, &err) != 0 || strcmp(a.id, id) != 0 || !in_scope(w->district, &a)) {
		web_reply_error(out, 404, "not_found", NULL, "no attachment '%s'", id);
		return;
	}
	int r = a.state == ZILA_BLOB_PRESENT ? 0 : zila_blob_ask(w->s, a.hash, &err);
	if (r != 0) {
		web_reply_error(out, 500, "internal", NULL, "%s", zila_error_msg(&err, r));
		return;
	}
	web_reply_json(out, 200, json_pack("{s:b, s:s}", "asked", a.state != ZILA_BLOB_PRESENT, "state", state_word(&a)));
}

/* --- on a worker: uploads and contents ------------------------------------------------------ */

struct fscope {
	const char *district; /* NULL: every district (HQ, or a replica not enrolled) */
	bool read_only;
};

/* The caller's scope from its role and what never changes of w (w->home: the device's own
 * district), so that this may run beside zila_office_web_handle_as, which narrows w->district
 * for its own call. */
static bool scope_of(const struct zila_office_web *w, const char *role, struct fscope *sc, struct zila_office_reply *out)
{
	sc->district = w->home;
	sc->read_only = false;
	if (role == NULL || strcmp(role, "owner") == 0 || strcmp(role, "admin") == 0)
		return true;
	if (strcmp(role, "viewer") == 0) {
		sc->read_only = true;
		return true;
	}
	if (strncmp(role, "district:", 9) == 0 && role[9] != '\0') {
		if (w->home != NULL && strcmp(w->home, role + 9) != 0) {
			web_reply_error(out, 403, "scope", NULL, "this account is for district '%s', which this laptop does not hold",
					role + 9);
			return false;
		}
		sc->district = role + 9;
		return true;
	}
	web_reply_error(out, 403, "role", NULL, "this account's role '%s' is not one zila knows", role);
	return false;
}

/* The owner row's district ("" for an org-wide row), read on a connection of this call's own:
 * 0, or a reply. */
static int owner_row(const struct zila_office_web *w, const char *table, const char *id, char *district, size_t n,
		     struct zila_office_reply *out)
{
	char path[4200];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int r = -1;
	district[0] = '\0';
	if (strncmp(table, "zila_", 5) == 0 || strncmp(table, "sqlite_", 7) == 0 || strcmp(table, "attachments") == 0) {
		web_reply_error(out, 400, "invalid", "table", "files are attached to records, not to '%s'", table);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/zila.db", w->dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		web_reply_error(out, 503, "busy", NULL, "cannot read the replica now: try again");
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	char *q = sqlite3_mprintf("SELECT district_id FROM \"%w\" WHERE id = ?", table);
	bool has_district = q != NULL && sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK;
	sqlite3_free(q);
	if (!has_district) {
		q = sqlite3_mprintf("SELECT NULL FROM \"%w\" WHERE id = ?", table);
		if (q == NULL || sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
			sqlite3_free(q);
			web_reply_error(out, 404, "not_found", "table", "no synced table '%s'", table);
			goto out;
		}
		sqlite3_free(q);
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		web_reply_error(out, 404, "not_found", NULL, "no row '%s' in '%s'", id, table);
		goto out;
	}
	const unsigned char *d = sqlite3_column_text(st, 0);
	snprintf(district, n, "%s", d ? (const char *)d : "");
	r = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

static bool setting_on(struct zila_store *s, const char *key)
{
	char *v = NULL;
	bool on = zila_store_meta_get(s, key, &v) == 0 && v != NULL && strcmp(v, "on") == 0;
	free(v);
	return on;
}

/* POST /api/attachments?table=T&id=ID[&column=C]&name=N[&type=MT][&shrink=1|0][&district=D],
 * the body the file's bytes. */
static void upload(const struct zila_office_web *w, struct zila_store *s, const struct fscope *sc, const char *query,
		   const char *body, size_t body_len, struct zila_office_reply *out)
{
	char *table = web_query_get(query, "table"), *id = web_query_get(query, "id"), *column = web_query_get(query, "column"),
	     *name = web_query_get(query, "name"), *type = web_query_get(query, "type"),
	     *shrink = web_query_get(query, "shrink"), *district = web_query_get(query, "district");
	char owner_district[ZILA_PART_MAX + 1] = "", orig_hex[65];
	struct zila_buf small;
	struct zila_error err;
	struct zila_attach_req rq;
	struct zila_attachment a;
	struct zila_shrink_result res;
	zila_buf_init(&small, ZILA_SHRINK_IN_MAX);
	zila_error_clear(&err);
	memset(&rq, 0, sizeof(rq));
	memset(&res, 0, sizeof(res));
	if (sc->read_only) {
		web_reply_error(out, 403, "role", NULL, "this account may read, not change: ask an admin");
		goto out;
	}
	if (name == NULL || name[0] == '\0' || strlen(name) > 255 || strchr(name, '/') || strchr(name, '\\')) {
		web_reply_error(out, 400, "invalid", "name", "the file needs a name (?name=, at most 255 bytes, no '/')");
		goto out;
	}
	if (body_len == 0) {
		web_reply_error(out, 400, "invalid", NULL, "the file '%s' is empty", name);
		goto out;
	}
	if ((table == NULL) != (id == NULL) || (column != NULL && table == NULL)) {
		web_reply_error(out, 400, "invalid", NULL, "say which record the file belongs to: ?table=T&id=ID");
		goto out;
	}
	if (table != NULL && owner_row(w, table, id, owner_district, sizeof(owner_district), out) != 0)
		goto out;
	if (sc->district != NULL) {
		if (table != NULL && strcmp(owner_district, sc->district) != 0) {
			web_reply_error(out, 403, "scope", NULL,
					owner_district[0] ? "row '%s' is of district '%s': this account adds files to district '%s'"
							  " only"
							  : "row '%s' is org-wide%s: HQ adds its files (this account adds files to"
							    " district '%s' only)",
					id, owner_district, sc->district);
			goto out;
		}
		if (district != NULL && district[0] && strcmp(district, sc->district) != 0) {
			web_reply_error(out, 403, "scope", "district", "this account adds files to district '%s' only", sc->district);
			goto out;
		}
		rq.district = sc->district;
	} else {
		rq.district = district && district[0] ? district : NULL;
	}
	bool want = shrink != NULL ? strcmp(shrink, "1") == 0 : setting_on(s, "attach.shrink");
	bool asked = want;
	if (want && !zila_shrink_available()) {
		if (shrink != NULL) {
			web_reply_error(out, 400, "no_shrink", NULL,
					"this build of zila cannot shrink photos: upload '%s' without shrinking it", name);
			goto out;
		}
		want = false; /* the office's default: the file goes as it is, and the answer says so */
		snprintf(res.note, sizeof(res.note), "not shrunk: this build of zila cannot shrink photos");
		res.why = "no_shrink";
	}
	rq.data = (const uint8_t *)body;
	rq.data_len = body_len;
	rq.name = name;
	rq.media_type = type && type[0] ? type : NULL;
	rq.table = table;
	rq.row = id;
	rq.column = column && column[0] ? column : NULL;
	int r = 0;
	if (want && (r = zila_shrink_jpeg((const uint8_t *)body, body_len, 0, 0, &small, &res, &err)) == 0 && res.shrunk) {
		struct zila_buf ch;
		uint8_t oid[32];
		zila_buf_init(&ch, ZILA_BLOB_CHUNKS_MAX * 32);
		r = zila_blob_hash_mem((const uint8_t *)body, body_len, &ch, oid);
		zila_buf_release(&ch);
		zila_hex_encode(orig_hex, oid, 32);
		rq.data = small.p;
		rq.data_len = small.len;
		rq.original_hash = orig_hex;
		rq.original_size = body_len;
	}
	if (r == ZILA_ETOOBIG) { /* a photo of more pixels than zila decodes: not the office's size limit */
		web_reply_error(out, 413, "invalid", NULL, "%s", zila_error_msg(&err, r));
		goto out;
	}
	if (r == 0)
		r = zila_blob_attach(s, &rq, &a, &err);
	if (r != 0) {
		const char *msg = zila_error_msg(&err, r);
		if (r == ZILA_ETOOBIG) {
			/* the limit, for the page to say in its own language */
			char *mx = NULL;
			uint64_t limit = ZILA_BLOB_MAX_DEFAULT;
			if (zila_store_meta_get(s, "attach.max_bytes", &mx) == 0 && mx != NULL && mx[0])
				limit = strtoull(mx, NULL, 10);
			free(mx);
			web_reply_json(out, 413, json_pack("{s:s, s:s, s:I}", "error", msg, "code", "too_big", "limit",
							   (json_int_t)limit));
		} else if (r == ZILA_ELIMIT)
			web_reply_error(out, 413, "quota", NULL, "%s", msg);
		else if (r == ZILA_EFORMAT)
			web_reply_error(out, 400, "damaged", NULL, "%s", msg);
		else if (r == ZILA_ENOTFOUND)
			web_reply_error(out, 404, "not_found", NULL, "%s", msg);
		else if (r == ZILA_EINVAL)
			web_reply_error(out, 400, "invalid", NULL, "%s", msg);
		else if (r == ZILA_EBUSY)
			web_reply_error(out, 503, "busy", NULL, "%s", msg);
		else if (r == ZILA_EFULL)
			web_reply_error(out, 507, "full", NULL, "%s", msg);
		else
			web_reply_error(out, 500, "internal", NULL, "%s", msg);
		goto out;
	}
	json_t *o = json_pack("{s:o, s:{s:b, s:b, s:s, s:s?}}", "attachment", att_json(&a), "shrink", "asked", asked,
			      "done", res.shrunk, "note", res.note, "why", res.why);
	web_reply_json(out, 201, o);
out:
	zila_buf_release(&small);
	free(table);
	free(id);
	free(column);
	free(name);
	free(type);
	free(shrink);
	free(district);
}

/* A media type as it may go in a header ("image/jpeg"), else application/octet-stream. */
static void safe_type(const char *mt, char *out, size_t n)
{
	bool ok = mt[0] != '\0' && strlen(mt) < n && strchr(mt, '/') != NULL;
	for (const char *p = mt; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '/' || *p == '.' || *p == '+' || *p == '-';
	const char *t = ok ? mt : "application/octet-stream";
	size_t len = strlen(t);
	memcpy(out, t, len + 1); /* ok: shorter than n; the other fits any n used here */
}

/* Shown in the page: photos in the formats every browser draws, nothing that could run. */
static bool shows_inline(const char *ctype)
{
	static const char *const kinds[] = { "image/jpeg", "image/png", "image/gif", "image/webp" };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(ctype, kinds[i]) == 0)
			return true;
	return false;
}

/* GET /api/attachments/ID/content[?download=1]: the file's bytes, checked against its id. */
static void content(struct zila_store *s, const struct fscope *sc, const char *id, const char *query,
		    struct zila_office_reply *out)
{
	struct zila_attachment a;
	struct zila_error err;
	struct zila_blob_reader *rd = NULL;
	uint8_t bid[32];
	char *dl = web_query_get(query, "download");
	zila_error_clear(&err);
	if (zila_blob_find(s, id, &a, &err) != 0 || strcmp(a.id, id) != 0 || !in_scope(sc->district, &a)) {
		/* another district's file does not exist here, as its rows do not */
		web_reply_error(out, 404, "not_found", NULL, "no attachment '%s'", id);
		goto out;
	}
	if (a.state != ZILA_BLOB_PRESENT) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "error", "", "code", "missing", "state", state_word(&a), "percent",
				      a.size ? (int)(a.have_bytes * 100 / a.size) : 0);
		char msg[400];
		snprintf(msg, sizeof(msg), "'%s' is not here yet (%d%% of it is): it comes with a sync", a.name,
			 a.size ? (int)(a.have_bytes * 100 / a.size) : 0);
		json_object_set_new(o, "error", json_string(msg));
		web_reply_json(out, 404, o);
		goto out;
	}
	if (strlen(a.hash) != 64 || zila_hex_decode(bid, sizeof(bid), a.hash, 64) != 0) {
		web_reply_error(out, 500, "internal", NULL, "attachment '%s' has a malformed hash", id);
		goto out;
	}
	/* a district's account gets the bytes only when a device of the district showed this
	 * replica it holds them (proto/ATTACH.md, "Possession"): a row naming another district's
	 * file by its hash is not enough */
	if (sc->district != NULL && !zila_blob_held_in(s, bid, a.district)) {
		web_reply_error(out, 404, "not_shown", NULL,
				"'%s' is not here for district '%s': no device of the district has sent this replica the file",
				a.name, a.district);
		goto out;
	}
	int r = zila_blob_reader_open(s, bid, &rd, &err);
	if (r != 0) {
		web_reply_error(out, 404, r == ZILA_EFORMAT ? "damaged" : "missing", NULL, "%s", zila_error_msg(&err, r));
		goto out;
	}
	uint64_t size = zila_blob_reader_size(rd);
	char *body = malloc(size ? (size_t)size : 1);
	if (body == NULL) {
		web_reply_error(out, 503, "busy", NULL, "out of memory: try again");
		goto out;
	}
	size_t off = 0;
	for (uint32_t i = 0;; i++) {
		struct zila_view v = zila_blob_reader_chunk(rd, i);
		if (v.len == 0 || off + v.len > size)
			break;
		memcpy(body + off, v.p, v.len);
		off += v.len;
	}
	out->status = 200;
	out->body = body;
	out->body_len = off;
	safe_type(a.media_type, out->ctype, sizeof(out->ctype));
	out->inline_file = shows_inline(out->ctype) && !(dl && strcmp(dl, "1") == 0);
	/* the name, cut (if it must be) where a character begins */
	size_t nl = strlen(a.name);
	if (nl >= sizeof(out->filename))
		for (nl = sizeof(out->filename) - 1; nl > 0 && ((unsigned char)a.name[nl] & 0xC0) == 0x80; nl--)
			;
	memcpy(out->filename, a.name, nl);
	out->filename[nl] = '\0';
out:
	zila_blob_reader_free(rd);
	free(dl);
}

void zila_office_web_files_as(struct zila_office_web *w, const char *role, const char *method, const char *path,
			      const char *query, const char *body, size_t body_len, struct zila_office_reply *out)
{
	struct fscope sc;
	struct zila_store *s = NULL;
	struct zila_error err;
	char buf[512], *seg[5] = { NULL };
	size_t n = 0;
	memset(out, 0, sizeof(*out));
	zila_error_clear(&err);
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *p = strtok_r(buf, "/", &save); p != NULL && n < 5; p = strtok_r(NULL, "/", &save))
		seg[n++] = p;
	bool up = n == 2 && strcmp(method, "POST") == 0, get = n == 4 && strcmp(method, "GET") == 0 &&
								     strcmp(seg[3], "content") == 0;
	if (n < 2 || strcmp(seg[0], "api") != 0 || strcmp(seg[1], "attachments") != 0 || !(up || get)) {
		web_reply_error(out, 404, "not_found", NULL, "no such page");
		return;
	}
	if (!scope_of(w, role, &sc, out))
		return;
	int r = zila_store_open(&s, w->dir, &err);
	if (r != 0) {
		web_reply_error(out, 503, "busy", NULL, "cannot open the replica now (%s): try again", zila_error_msg(&err, r));
		return;
	}
	if (up)
		upload(w, s, &sc, query, body, body_len, out);
	else
		content(s, &sc, seg[2], query, out);
	zila_store_free(s);
}
