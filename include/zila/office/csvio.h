/* Spreadsheet import and export for any table of a replica: CSV in (as Excel and
 * LibreOffice write it: UTF-8 with or without BOM, quoted fields with commas and newlines),
 * create-or-update by id or natural key, CSV (with BOM) and JSON out. Works on a plain
 * sqlite3 connection and writes with ordinary SQL, so capture triggers see every change. */
#ifndef ZILA_OFFICE_CSVIO_H
#define ZILA_OFFICE_CSVIO_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "zila/err.h"

#define ZILA_CSV_FIELD_MAX (1024 * 1024) /* bytes in one field */
#define ZILA_CSV_FIELDS_MAX 1024         /* fields in one row */
#define ZILA_CSV_ROW_MAX (4 * 1024 * 1024) /* bytes in one row */

/* --- import ----------------------------------------------------------------------- */

/* A header-to-column mapping given by the user (--map HEADER=COLUMN). An empty or NULL
 * column means "ignore this CSV column". Headers match case-insensitively. */
struct zila_csv_map {
	const char *header;
	const char *column;
};

/* A rejected row, passed to the reject callback; everything is borrowed for the call. */
struct zila_csv_reject {
	uint64_t row;               /* the row's number in the spreadsheet: records of the file
				     * from 1, the header and blank rows counted (a cell over
				     * several lines is one row, as in Excel) */
	uint64_t line;              /* physical line where the row starts (header is line 1) */
	const char *reason;         /* lowercase, e.g. "unknown district 'Patna Sahib'" */
	const char *const *fields;  /* the row as read; a NULL field was an empty cell */
	const size_t *field_lens;
	size_t nfields;
	const char *const *header;  /* the header row, for writing a rejects file */
	const size_t *header_lens;
	size_t nheader;
};

typedef void (*zila_csv_reject_fn)(void *ctx, const struct zila_csv_reject *rj);

/* A row an import creates or changes, passed to the change callback (in a dry run too, for
 * what would happen); everything is borrowed for the call. */
struct zila_csv_change {
	uint64_t row;                    /* the spreadsheet row, as zila_csv_reject.row */
	bool created;                    /* a new row; else an update of row id */
	const char *id;
	const char *name;                /* the row's name column (stored value), or NULL */
	size_t ncols;
	const char *const *columns;      /* the columns set (created) or changed (updated) */
	const char *const *old_values;   /* stored values (NULL: empty); NULL when created */
	const char *const *new_values;   /* as they are written, normalised (NULL: empty) */
};

typedef void (*zila_csv_change_fn)(void *ctx, const struct zila_csv_change *ch);

struct zila_csv_import_opts {
	const char *table;               /* required */
	const struct zila_csv_map *map;  /* may be NULL */
	size_t nmap;
	bool dry_run;   /* do everything, count, then roll back */
	bool skip_bad;  /* import the good rows even when some are bad */
	char delim;     /* field separator; 0 picks ',' ';' or TAB from the header line */
	const char *own_district; /* a district laptop's own district id: the district of every
				   * row that names none; NULL for none (HQ) */
	zila_csv_reject_fn on_reject; /* may be NULL */
	zila_csv_change_fn on_change; /* may be NULL; costs a read of each changed row */
	void *ctx;                    /* for both callbacks */
};

struct zila_csv_stats {
	uint64_t nrows;      /* data rows read (blank rows are not counted) */
	uint64_t ncreated;
	uint64_t nupdated;
	uint64_t nunchanged;
	uint64_t nrejected;
	uint64_t nlines;     /* physical lines read so far */
};

struct zila_csv_import;

/* Starts an import into opts->table on db, which must not be inside a transaction. The
 * import runs in one write transaction (BEGIN IMMEDIATE) that is committed by
 * zila_csv_import_finish(). The caller sets PRAGMA busy_timeout on db if it wants to wait
 * for other writers. opts and the strings it points to must outlive the import. *out is
 * owned by the caller: zila_csv_import_free().
 *
 * Rules: the first non-blank row is the header. A cell that is empty (unquoted) is NULL; a
 * row whose cells are all empty is skipped. Columns named phone or *_phone are normalised to
 * 10-digit Indian mobile numbers (+91/91/0 prefixes, spaces and dashes dropped), or to a
 * landline as 0612-2234567 when typed with its STD code set apart (never to a mobile); columns
 * named gender take F/M/O, Female, महिला, पुरुष, ... as female, male or other; columns
 * named *_on, since and deadline are dates (YYYY-MM-DD, or DD-MM-YYYY, DD/MM/YYYY,
 * DD.MM.YYYY as Excel writes them in India), stored as YYYY-MM-DD; a column named period is
 * YYYY-MM; INTEGER columns take whole numbers. A district_id cell may hold the district's
 * id, code or name (English or local, case-insensitive). Every single-column foreign key
 * is checked. A row is matched to an existing row by id when the id cell is set, else by
 * the first UNIQUE key of the table whose columns are all in the header and all set in
 * that row (with opts->own_district standing in for a district the file leaves out);
 * matched rows are updated in the changed columns only, unmatched rows are inserted with a
 * new random id. A row matched on a UNIQUE key whose name column differs from the stored
 * row's (ASCII case, spaces and dots aside) is rejected: two people are never merged. A
 * text cell that is the stored text with its non-ASCII letters as ?, or a new cell of ?
 * alone, is rejected (a spreadsheet saved in a legacy encoding). A value a CHECK or UNIQUE
 * constraint refuses is rejected with the value and its column. A row's district_id never
 * changes. A row may refer to a
 * row earlier in the same file (a parent org unit), not to a later one. Header cells that
 * start with "zila_reject" (the reason column of a rejects file) are ignored. A cell that is
 * a ' followed by what a spreadsheet would take for a formula (see zila_csv_export()) loses
 * the '. */
int zila_csv_import_new(struct zila_csv_import **out, sqlite3 *db,
			const struct zila_csv_import_opts *opts, struct zila_error *err) ZILA_MUST_CHECK;

/* Feeds the next len bytes of the file. Bad rows are counted and passed to on_reject; a
 * negative return is fatal (bad header, database error, field too long, not UTF-8) and
 * leaves nothing imported. */
int zila_csv_import_feed(struct zila_csv_import *im, const void *p, size_t len,
			 struct zila_error *err) ZILA_MUST_CHECK;

/* Ends the input and commits. When any row was rejected and skip_bad is off, rolls back
 * and returns ZILA_EFORMAT; in dry-run mode always rolls back. *st (may be NULL) gets the
 * final counts, which in dry-run mode tell what would have happened. */
int zila_csv_import_finish(struct zila_csv_import *im, struct zila_csv_stats *st,
			   struct zila_error *err) ZILA_MUST_CHECK;

/* The counts so far (for a progress display). */
void zila_csv_import_stats(const struct zila_csv_import *im, struct zila_csv_stats *st);

/* Rolls back anything not committed and frees im; NULL does nothing. */
void zila_csv_import_free(struct zila_csv_import *im);

/* The whole import of one file (path "-" is stdin). */
int zila_csv_import_file(sqlite3 *db, const char *path, const struct zila_csv_import_opts *opts,
			 struct zila_csv_stats *st, struct zila_error *err) ZILA_MUST_CHECK;

/* --- export ----------------------------------------------------------------------- */

enum zila_export_format { ZILA_EXPORT_CSV, ZILA_EXPORT_JSON };

struct zila_csv_export_opts {
	const char *table;    /* required */
	const char *district; /* only rows of this district_id (id, code or name); may be NULL */
	enum zila_export_format format;
	bool no_bom;          /* CSV: leave out the UTF-8 byte order mark Excel needs */
};

/* Writes every row of the table (ordered by id) to out: CSV with a header row of column
 * names, CRLF line ends and a UTF-8 BOM, NULL as an empty cell and '' as ""; or JSON, an
 * array of objects with NULL as null and integers as numbers. A CSV cell that starts with
 * = + - @ TAB or CR (after any run of single quotes) and is not a plain number such as -12
 * gets a ' before it, so that a spreadsheet never runs it as a formula (OWASP's advice on
 * CSV injection). Importing the CSV back changes nothing. *nrows (may be NULL) gets the
 * number of rows written. */
int zila_csv_export(sqlite3 *db, const struct zila_csv_export_opts *opts, FILE *out,
		    uint64_t *nrows, struct zila_error *err) ZILA_MUST_CHECK;

/* Writes one CSV row (fields quoted when needed, formula-like fields with a ' before them as
 * zila_csv_export() writes them, NULL fields empty, CRLF at the end), as used for rejects
 * files. Returns 0 or ZILA_EIO. */
int zila_csv_write_row(FILE *out, const char *const *fields, const size_t *lens, size_t n)
	ZILA_MUST_CHECK;

#endif
