/* SQL text for the office layer's statements (identifiers quoted, never values: values
 * are bound), and small questions about a replica's tables. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office_int.h"

/* strerror(e) with a lowercase first letter, as zila's messages are. */
const char *office_errno_msg(int e, char buf[128])
{
	snprintf(buf, 128, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] + 32);
	return buf;
}

char *office_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

void office_sb_add(struct office_sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void office_sb_str(struct office_sb *b, const char *s)
{
	office_sb_add(b, s, strlen(s));
}

void office_sb_ident(struct office_sb *b, const char *s)
{
	office_sb_add(b, "\"", 1);
	for (const char *q = s; *q; q++) {
		if (*q == '"')
			office_sb_add(b, "\"\"", 2);
		else
			office_sb_add(b, q, 1);
	}
	office_sb_add(b, "\"", 1);
}

void office_sb_fmt(struct office_sb *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		office_sb_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

int office_prepare(sqlite3 *db, struct office_sb *b, sqlite3_stmt **out, struct zila_error *err)
{
	*out = NULL;
	if (b->oom)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(db, b->p, -1, out, NULL) != SQLITE_OK)
		return zila_error_set(err, ZILA_EDB, "cannot prepare statement: %s",
				      sqlite3_errmsg(db));
	return 0;
}

bool office_table_has_column(sqlite3 *db, const char *table, const char *col)
{
	sqlite3_stmt *st = NULL;
	bool found = false;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1,
			       &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
out:
	sqlite3_finalize(st);
	return found;
}

int office_table_exists(sqlite3 *db, const char *table, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		r = zila_error_set(err, ZILA_EDB, "cannot read the schema: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = 0;
	} else if (rc == SQLITE_DONE) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no table '%s' in the replica", table);
	} else {
		r = zila_error_set(err, ZILA_EDB, "cannot read the schema: %s", sqlite3_errmsg(db));
	}
out:
	sqlite3_finalize(st);
	return r;
}
