/* Inside the office layer: shared between src/office's files only (SQL text, the rules for
 * Indian phone numbers and dates, district lookup). */
#ifndef ZILA_OFFICE_INT_H
#define ZILA_OFFICE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zila/err.h"

#define OFFICE_NORM_MAX 80 /* bytes of a normalised cell (date, phone, resolved id) */
#define OFFICE_SHOW_MAX 60 /* bytes of a cell quoted in a reason */

/* --- sql.c: SQL text and small SQLite helpers --------------------------------------- */

/* A malloc'd, growing SQL text; oom is sticky and office_prepare() reports it. */
struct office_sb {
	char *p;
	size_t len, cap;
	bool oom;
};

void office_sb_add(struct office_sb *b, const char *s, size_t n);
void office_sb_str(struct office_sb *b, const char *s);
/* An identifier, quoted for SQL ("a""b"). */
void office_sb_ident(struct office_sb *b, const char *s);
void office_sb_fmt(struct office_sb *b, const char *fmt, ...) ZILA_PRINTF(2, 3);
/* Prepares b's text on db; *out is the caller's to finalize. */
int office_prepare(sqlite3 *db, struct office_sb *b, sqlite3_stmt **out, struct zila_error *err)
	ZILA_MUST_CHECK;
/* 0, or ZILA_ENOTFOUND ("no table ... in the replica") or ZILA_EDB with err set. */
int office_table_exists(sqlite3 *db, const char *table, struct zila_error *err) ZILA_MUST_CHECK;
bool office_table_has_column(sqlite3 *db, const char *table, const char *col);
/* strerror(e) with a lowercase first letter, as zila's messages are; returns buf. */
const char *office_errno_msg(int e, char buf[128]);
char *office_strdup(const char *s);

/* --- rules.c: what office staff type, and what it means ------------------------------ */

enum office_kind { K_TEXT, K_INT, K_REAL, K_DATE, K_PERIOD, K_PHONE, K_GENDER };

/* A column's kind from its declared type and its name (phone, *_phone; *_on, since,
 * deadline; period; gender). */
enum office_kind office_column_kind(const char *name, const char *type);
/* ASCII case-insensitive equality. */
bool office_ieq(const char *a, const char *b);
/* A header cell against a column name: case-insensitive; space, dash and dot count as
 * underscore ("Name Local" matches name_local). */
bool office_header_matches(const char *h, const char *col);
/* The column a header cell names, as `zila import` guesses it (names[i] the table's
 * columns, fk[i] whether column i is a single-column foreign key): the column itself
 * ("Phone", "Name Local"), a foreign key without its _id ("District" for district_id), or
 * a word offices use for a column of the default schema ("Naam", "Mobile No.", "Booth
 * No", "Ling", "नाम", ...); trailing dots, colons and spaces aside. -1 when none. */
int office_header_guess(const char *h, const char *const *names, const bool *fk, size_t n);
/* A cell as it may be quoted in a message: at most OFFICE_SHOW_MAX bytes, cut on a
 * character boundary, newlines as spaces; returns out. */
const char *office_show(char out[OFFICE_SHOW_MAX + 8], const char *s, size_t n);
/* YYYY-MM-DD, or D-M-YYYY / D/M/YYYY / D.M.YYYY, into out as YYYY-MM-DD. */
bool office_parse_date(const char *s, size_t n, char out[OFFICE_NORM_MAX]);
/* YYYY-MM, or MM-YYYY / MM/YYYY, into out as YYYY-MM. */
bool office_parse_period(const char *s, size_t n, char out[OFFICE_NORM_MAX]);
/* A 10-digit Indian mobile number from what people type (+91 98765 43210, 098765-43210),
 * or a landline typed with its STD code set apart (0612-2234567, 0612 2234567, +91 612
 * 2234567), kept as 0612-2234567. */
bool office_parse_phone(const char *s, size_t n, char out[OFFICE_NORM_MAX]);
/* A whole number, also as "12.0" the way spreadsheets write it. */
bool office_parse_int(const char *s, size_t n, int64_t *out);
/* Whether a spreadsheet would take a cell for a formula (OWASP's CSV injection): it starts
 * with = + - @ TAB or CR, after any run of single quotes, and is not a plain number such
 * as -12 or -1.5 (a spreadsheet reads those as numbers). Export writes such a cell with a
 * ' before it; import takes one ' off a cell that is ' and then such a cell. A quote run
 * does not change the answer, so the two undo each other exactly. */
bool office_formula_like(const char *s, size_t n);
/* Whether b (bn bytes) is the name a, written another way: ASCII case, spaces and dots do
 * not count. */
bool office_same_name(const char *a, const char *b, size_t bn);
/* A cell of ? and spaces alone, with at least two ?: letters a spreadsheet could not
 * write in the file's encoding. */
bool office_only_question_marks(const char *s, size_t n);
/* Whether s is the stored text old with its non-ASCII letters turned into ? (as Excel's
 * "CSV (Comma delimited)" writes Hindi): old has non-ASCII text, and s is old with each
 * such character as one ?, or s has ? and no letter or digit at all. */
bool office_lost_letters(const char *old, size_t on, const char *s, size_t n);
/* The default schema's word (female, male, other) for what people write in a gender
 * column: F, M, Female, W, महिला, पुरुष, अन्य, ... (case and dots aside); NULL when it is
 * none of those (the cell is then written as it is, for the table's CHECK to judge). */
const char *office_gender(const char *s, size_t n);

/* --- district.c ---------------------------------------------------------------------- */

/* Finds a district's id from its id, or else its code, name or local name; *out is
 * malloc'd. *cache holds the prepared statement between calls (the caller finalizes it).
 * ZILA_ENOTFOUND when none matches, ZILA_EEXIST when several do. */
int office_district_resolve(sqlite3 *db, sqlite3_stmt **cache, const char *v, char **out)
	ZILA_MUST_CHECK;

#endif
