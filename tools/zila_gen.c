/* zila_gen: realistic, deterministic sample data for the default schema (a state with N
 * districts, blocks, panchayats and wards, booths, members with Hindi and English names,
 * office bearers, booth agents and committees, a membership drive, events, tasks and
 * coordinator reports), as SQL, straight into a replica, or as CSV for one table. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#include "zila/buf.h"
#include "zila/office/csvio.h"

extern const char zila_default_schema_sql[];

static const char usage[] =
	"usage: zila_gen [--districts N] [--people-per-district N] [--booths-per-district N]\n"
	"                [--only-district K] [--seed S] [--today YYYY-MM-DD] [--progress]\n"
	"                (--sql [--with-schema] | --db FILE | --csv-table TABLE [--no-bom])\n"
	"\n"
	"  --booths-per-district N  about N polling booths a district (default: 2-4 a panchayat,\n"
	"                  about 50 a district)\n"
	"  --only-district K  make every district as usual but write only the K-th (1-based) and\n"
	"                  the org-wide rows: the same rows of district K as the whole state has\n"
	"  --sql           INSERT statements on stdout (pipe into sqlite3 DIR/zila.db)\n"
	"  --with-schema   with --sql: the default schema first\n"
	"  --db FILE       insert into an existing database with the default schema, through\n"
	"                  a staging file FILE-zila-gen (removed after), one transaction a table\n"
	"  --csv-table T   one table as CSV on stdout (as 'zila export' writes it)\n"
	"  --progress      with --db: say on stderr how long making the rows and copying each\n"
	"                  table took\n"
	"  --today DATE    the day the data is generated for (default 2026-11-15); dates of\n"
	"                  drives, sign-ups, events and reports fall around it\n"
	"The same options and seed always give the same data.\n";

/* --- randomness: splitmix64, so that a seed gives the same data everywhere --------- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* 0 <= r < n */
static uint32_t rnd(uint32_t n)
{
	return n ? (uint32_t)(rnd64() % n) : 0;
}

static bool chance(double p)
{
	return (double)(rnd64() >> 11) / 9007199254740992.0 < p;
}

static void new_id(char out[33])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t a = rnd64(), b = rnd64();
	for (int i = 0; i < 16; i++) {
		out[i] = hex[(a >> (60 - 4 * i)) & 15];
		out[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
	}
	out[32] = '\0';
}

/* --- dates ------------------------------------------------------------------------ */

static int64_t today_days; /* days since 1970-01-01 */

static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* The date `offset` days from today, as YYYY-MM-DD. */
static const char *day(char out[16], int64_t offset)
{
	int y, m, d;
	civil_from_days(today_days + offset, &y, &m, &d);
	snprintf(out, 16, "%04d-%02d-%02d", y % 10000, m % 100, d % 100);
	return out;
}

/* The month `back` months before today's, as YYYY-MM. */
static const char *month(char out[16], int back)
{
	int y, m, d;
	civil_from_days(today_days, &y, &m, &d);
	int k = y * 12 + (m - 1) - back;
	snprintf(out, 16, "%04d-%02d", (k / 12) % 10000, (k % 12 + 1) % 100);
	return out;
}

/* --- the domain ------------------------------------------------------------------- */

struct pair {
	const char *en, *hi;
};

static const struct pair districts_bihar[] = {
	{ "Patna", "पटना" },           { "Gaya", "गया" },
	{ "Bhagalpur", "भागलपुर" },    { "Muzaffarpur", "मुज़फ़्फ़रपुर" },
	{ "Darbhanga", "दरभंगा" },     { "Purnia", "पूर्णिया" },
	{ "Nalanda", "नालंदा" },       { "Saran", "सारण" },
	{ "Siwan", "सीवान" },          { "Vaishali", "वैशाली" },
	{ "Begusarai", "बेगूसराय" },   { "Madhubani", "मधुबनी" },
	{ "Samastipur", "समस्तीपुर" }, { "Rohtas", "रोहतास" },
	{ "Bhojpur", "भोजपुर" },       { "Buxar", "बक्सर" },
	{ "Katihar", "कटिहार" },       { "Araria", "अररिया" },
	{ "Kishanganj", "किशनगंज" },   { "Supaul", "सुपौल" },
	{ "Saharsa", "सहरसा" },        { "Madhepura", "मधेपुरा" },
	{ "Munger", "मुंगेर" },        { "Jamui", "जमुई" },
	{ "Nawada", "नवादा" },         { "Aurangabad", "औरंगाबाद" },
	{ "Jehanabad", "जहानाबाद" },   { "Arwal", "अरवल" },
	{ "Kaimur", "कैमूर" },         { "Gopalganj", "गोपालगंज" },
	{ "Sitamarhi", "सीतामढ़ी" },    { "Sheohar", "शिवहर" },
	{ "East Champaran", "पूर्वी चंपारण" }, { "West Champaran", "पश्चिमी चंपारण" },
	{ "Khagaria", "खगड़िया" },      { "Lakhisarai", "लखीसराय" },
	{ "Sheikhpura", "शेखपुरा" },   { "Banka", "बांका" },
};
#define NDISTRICT_NAMES (sizeof(districts_bihar) / sizeof(districts_bihar[0]))

static const struct pair male_names[] = {
	{ "Ramesh", "रमेश" },   { "Suresh", "सुरेश" },   { "Rajesh", "राजेश" },
	{ "Anil", "अनिल" },     { "Sunil", "सुनील" },    { "Manoj", "मनोज" },
	{ "Vijay", "विजय" },    { "Sanjay", "संजय" },    { "Ajay", "अजय" },
	{ "Amit", "अमित" },     { "Rahul", "राहुल" },    { "Rakesh", "राकेश" },
	{ "Dinesh", "दिनेश" },  { "Mukesh", "मुकेश" },   { "Pankaj", "पंकज" },
	{ "Ravi", "रवि" },      { "Santosh", "संतोष" },  { "Ashok", "अशोक" },
	{ "Ram Prasad", "राम प्रसाद" }, { "Shyam", "श्याम" }, { "Mohan", "मोहन" },
	{ "Arvind", "अरविंद" }, { "Vinod", "विनोद" },    { "Pramod", "प्रमोद" },
};
static const struct pair female_names[] = {
	{ "Sita", "सीता" },     { "Gita", "गीता" },      { "Sunita", "सुनीता" },
	{ "Anita", "अनीता" },   { "Rekha", "रेखा" },     { "Kiran", "किरण" },
	{ "Pooja", "पूजा" },    { "Priya", "प्रिया" },   { "Meena", "मीना" },
	{ "Savitri", "सावित्री" }, { "Lakshmi", "लक्ष्मी" }, { "Radha", "राधा" },
	{ "Kavita", "कविता" },  { "Neha", "नेहा" },      { "Anjali", "अंजलि" },
	{ "Rinku", "रिंकू" },   { "Shanti", "शांति" },   { "Usha", "उषा" },
};
static const struct pair surnames[] = {
	{ "Kumar", "कुमार" },   { "Singh", "सिंह" },     { "Yadav", "यादव" },
	{ "Prasad", "प्रसाद" }, { "Paswan", "पासवान" },  { "Mandal", "मंडल" },
	{ "Sharma", "शर्मा" },  { "Mishra", "मिश्रा" },  { "Jha", "झा" },
	{ "Ansari", "अंसारी" }, { "Khan", "ख़ान" },       { "Ram", "राम" },
	{ "Manjhi", "मांझी" },  { "Kushwaha", "कुशवाहा" }, { "Mahto", "महतो" },
	{ "Devi", "देवी" },     { "Kumari", "कुमारी" },  { "Thakur", "ठाकुर" },
};
static const struct pair places[] = {
	{ "Rampur", "रामपुर" },   { "Sonpur", "सोनपुर" },   { "Chandpur", "चांदपुर" },
	{ "Bishunpur", "बिशुनपुर" }, { "Madhopur", "माधोपुर" }, { "Fatehpur", "फ़तेहपुर" },
	{ "Lalganj", "लालगंज" },  { "Maheshpur", "महेशपुर" }, { "Sultanpur", "सुल्तानपुर" },
	{ "Kishunpur", "किशुनपुर" }, { "Belsand", "बेलसंड" }, { "Harnaut", "हरनौत" },
	{ "Barh", "बाढ़" },        { "Masaurhi", "मसौढ़ी" },   { "Paliganj", "पालीगंज" },
	{ "Bikram", "बिक्रम" },    { "Dulhin Bazar", "दुल्हिन बाज़ार" }, { "Naubatpur", "नौबतपुर" },
};
#define N(a) (sizeof(a) / sizeof(a[0]))

enum { P_STATE_PRES, P_DIST_PRES, P_DIST_GENSEC, P_DIST_TREAS, P_BLOCK_PRES, P_BLOCK_SEC,
       P_PANCH_PRES, P_BOOTH_PRES, NPOSTS };
static const struct {
	const char *en, *hi, *level;
} posts[NPOSTS] = {
	{ "State President", "प्रदेश अध्यक्ष", "state" },
	{ "District President", "जिला अध्यक्ष", "district" },
	{ "District General Secretary", "जिला महासचिव", "district" },
	{ "District Treasurer", "जिला कोषाध्यक्ष", "district" },
	{ "Block President", "प्रखंड अध्यक्ष", "block" },
	{ "Block Secretary", "प्रखंड सचिव", "block" },
	{ "Panchayat President", "पंचायत अध्यक्ष", "panchayat" },
	{ "Booth President", "बूथ अध्यक्ष", "booth" },
};

static const char *inactive_reasons[] = {
	"not attending meetings", "moved to another district", "joined another party",
	"ill health", "not reachable by phone",
};

/* --- writing rows ----------------------------------------------------------------- */

enum tbl { T_STATES, T_DISTRICTS, T_POSTS, T_ORG_UNITS, T_PEOPLE, T_OFFICE_BEARERS,
	   T_BOOTH_AGENTS, T_BOOTH_COMMITTEES, T_COMMITTEE_MEMBERS, T_DRIVES, T_DRIVE_TARGETS,
	   T_SIGNUPS, T_EVENTS, T_ATTENDANCE, T_TASKS, T_REPORTS, NTABLES };

/* In foreign-key order: a table only refers to tables above it (and org_units to itself,
 * parents first). */
static const struct {
	const char *name;
	const char *cols;
	int ncols;
} tables[NTABLES] = {
	{ "states", "id, name, name_local, code", 4 },
	{ "districts", "id, state_id, name, name_local, code", 5 },
	{ "posts", "id, name, name_local, level, rank", 5 },
	{ "org_units", "id, level, parent_id, district_id, name, name_local, code", 7 },
	{ "people", "id, district_id, name, name_local, phone, gender, birth_year, address, "
		    "org_unit_id, joined_on", 10 },
	{ "office_bearers", "id, district_id, person_id, post_id, org_unit_id, status, reason, "
			    "since", 8 },
	{ "booth_agents", "id, district_id, booth_id, person_id, appointed_on", 5 },
	{ "booth_committees", "id, district_id, booth_id, formed_on", 4 },
	{ "committee_members", "id, district_id, committee_id, person_id, role", 5 },
	{ "drives", "id, district_id, name, starts_on, deadline", 5 },
	{ "drive_targets", "id, district_id, drive_id, org_unit_id, target", 5 },
	{ "signups", "id, district_id, drive_id, person_id, org_unit_id, signed_on", 6 },
	{ "events", "id, district_id, kind, title, held_on, place, org_unit_id", 7 },
	{ "attendance", "id, district_id, event_id, person_id", 4 },
	{ "tasks", "id, district_id, assigned_to, title, target, achieved, due_on, status", 8 },
	{ "reports", "id, district_id, org_unit_id, coordinator_id, period, status, "
		     "submitted_on, body", 8 },
};

static sqlite3 *db;
static sqlite3_stmt *ins[NTABLES];
static bool staged; /* --db: rows go to the attached database 'gen' first (stage_copy) */
static int failed;
static int only_district = -1; /* --only-district K, 0-based: rows of other districts are made, not written */
static int cur_district = -1;  /* the district being made; -1 for org-wide rows */
static long booths_per_district; /* --booths-per-district: 0 keeps 2-4 booths a panchayat */

/* Inserts one row; values are text (NULL for NULL), in the order of tables[t].cols. */
static void put(enum tbl t, const char *const *v)
{
	if (failed || (only_district >= 0 && cur_district >= 0 && cur_district != only_district))
		return;
	if (ins[t] == NULL) {
		char sql[512];
		int n = snprintf(sql, sizeof(sql), "INSERT INTO %s%s (%s) VALUES (", staged ? "gen." : "",
				 tables[t].name, tables[t].cols);
		for (int i = 0; i < tables[t].ncols; i++)
			n += snprintf(sql + n, sizeof(sql) - (size_t)n, i ? ", ?" : "?");
		snprintf(sql + n, sizeof(sql) - (size_t)n, ")");
		if (sqlite3_prepare_v2(db, sql, -1, &ins[t], NULL) != SQLITE_OK) {
			fprintf(stderr, "zila_gen: cannot prepare insert into '%s': %s\n",
				tables[t].name, sqlite3_errmsg(db));
			failed = 1;
			return;
		}
	}
	for (int i = 0; i < tables[t].ncols; i++)
		sqlite3_bind_text(ins[t], i + 1, v[i], -1, SQLITE_TRANSIENT);
	if (sqlite3_step(ins[t]) != SQLITE_DONE) {
		fprintf(stderr, "zila_gen: cannot insert into '%s': %s\n", tables[t].name,
			sqlite3_errmsg(db));
		failed = 1;
	}
	sqlite3_reset(ins[t]);
}

/* --- generation ------------------------------------------------------------------- */

struct person {
	char id[33];
	char booth[33];
};

struct unit {
	char id[33];
};

static char *fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static char *fmt(char *buf, size_t n, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, n, f, ap);
	va_end(ap);
	return buf;
}

static void gen_district(int di, const char *state_unit, const char *district_id,
			 const char *const post_ids[NPOSTS], const char *drive_id, int npeople)
{
	char b1[16], b2[16], b3[64], b5[256], b6[256], b7[32];
	const char *dname = districts_bihar[di % NDISTRICT_NAMES].en;
	const char *dname_hi = districts_bihar[di % NDISTRICT_NAMES].hi;

	/* How well this district is doing: coverage and drive progress vary by district,
	 * so that the HQ report has districts behind and on track. */
	double agent_cover = 0.3 + 0.65 * (double)rnd(100) / 100.0;
	double committee_cover = 0.15 + 0.6 * (double)rnd(100) / 100.0;
	double signup_rate = 0.4 + 0.75 * (double)rnd(100) / 100.0;

	/* org units */
	struct unit dunit;
	new_id(dunit.id);
	put(T_ORG_UNITS, (const char *const[]){ dunit.id, "district", state_unit, district_id,
						dname, dname_hi,
						fmt(b3, sizeof(b3), "D%02d", di + 1) });
	int nblocks = 3 + (int)rnd(4);
	struct unit *blocks = calloc((size_t)nblocks, sizeof(*blocks));
	struct unit *booths = NULL;
	int nbooths = 0, booths_cap = 0;
	struct unit *panchayats = NULL;
	int npanch = 0, panch_cap = 0;
	for (int b = 0; b < nblocks; b++) {
		const struct pair *pl = &places[rnd(N(places))];
		new_id(blocks[b].id);
		put(T_ORG_UNITS,
		    (const char *const[]){ blocks[b].id, "block", dunit.id, district_id,
					   fmt(b5, sizeof(b5), "%s block", pl->en),
					   fmt(b6, sizeof(b6), "%s प्रखंड", pl->hi),
					   fmt(b3, sizeof(b3), "D%02d-B%02d", di + 1, b + 1) });
		bool urban = b == 0; /* the district town's block has wards */
		int np = 3 + (int)rnd(3);
		for (int p = 0; p < np; p++) {
			const struct pair *vp = &places[rnd(N(places))];
			if (npanch == panch_cap) {
				panch_cap = panch_cap ? panch_cap * 2 : 16;
				panchayats = realloc(panchayats, (size_t)panch_cap * sizeof(*panchayats));
			}
			struct unit *pu = &panchayats[npanch++];
			new_id(pu->id);
			if (urban)
				put(T_ORG_UNITS,
				    (const char *const[]){ pu->id, "ward", blocks[b].id, district_id,
							   fmt(b5, sizeof(b5), "Ward %d", p + 1),
							   fmt(b6, sizeof(b6), "वार्ड %d", p + 1),
							   fmt(b3, sizeof(b3), "D%02d-B%02d-W%02d", di + 1,
							       b + 1, p + 1) });
			else
				put(T_ORG_UNITS,
				    (const char *const[]){ pu->id, "panchayat", blocks[b].id,
							   district_id, vp->en, vp->hi,
							   fmt(b3, sizeof(b3), "D%02d-B%02d-P%02d", di + 1,
							       b + 1, p + 1) });
			int nbo = 2 + (int)rnd(3);
			if (booths_per_district > 0) { /* about that many in all, 3-5 panchayats a block */
				nbo += (int)(booths_per_district / (4 * nblocks)) - 3;
				if (nbo < 1)
					nbo = 1;
			}
			for (int k = 0; k < nbo; k++) {
				if (nbooths == booths_cap) {
					booths_cap = booths_cap ? booths_cap * 2 : 64;
					booths = realloc(booths, (size_t)booths_cap * sizeof(*booths));
				}
				struct unit *bo = &booths[nbooths++];
				new_id(bo->id);
				put(T_ORG_UNITS,
				    (const char *const[]){
					    bo->id, "booth", pu->id, district_id,
					    fmt(b5, sizeof(b5), "Booth %d, %s school", nbooths,
						vp->en),
					    fmt(b6, sizeof(b6), "बूथ %d, %s विद्यालय", nbooths, vp->hi),
					    fmt(b3, sizeof(b3), "D%02d-%03d", di + 1, nbooths) });
			}
		}
	}

	/* people: phones are a bijection of the row number, so unique in the district */
	struct person *people = calloc((size_t)npeople, sizeof(*people));
	uint64_t phone_off = rnd64() % UINT64_C(4000000000);
	for (int i = 0; i < npeople; i++) {
		struct person *pp = &people[i];
		bool female = chance(0.45);
		const struct pair *fn = female ? &female_names[rnd(N(female_names))]
					       : &male_names[rnd(N(male_names))];
		const struct pair *sn = &surnames[rnd(N(surnames))];
		if (female && chance(0.3))
			sn = chance(0.5) ? &surnames[15] : &surnames[16]; /* Devi, Kumari */
		new_id(pp->id);
		snprintf(pp->booth, sizeof(pp->booth), "%s", booths[rnd((uint32_t)nbooths)].id);
		char phone[16], name[96], name_hi[160], year[8];
		uint64_t ph = 6000000000ULL +
			      ((uint64_t)i * 2654435761ULL + phone_off) % 4000000000ULL;
		snprintf(phone, sizeof(phone), "%" PRIu64, ph);
		snprintf(name, sizeof(name), "%s %s", fn->en, sn->en);
		snprintf(name_hi, sizeof(name_hi), "%s %s", fn->hi, sn->hi);
		snprintf(year, sizeof(year), "%d", 1950 + (int)rnd(55));
		const struct pair *vp = &places[rnd(N(places))];
		put(T_PEOPLE,
		    (const char *const[]){ pp->id, district_id, name, name_hi,
					   chance(0.05) ? NULL : phone, female ? "female" : "male",
					   chance(0.1) ? NULL : year,
					   fmt(b5, sizeof(b5), "Ward %d, %s, %s", 1 + (int)rnd(15),
					       vp->en, dname),
					   pp->booth, day(b1, -(int64_t)rnd(1500)) });
	}

	/* office bearers */
	struct bearer {
		const char *person;
		int post;
	};
	int nbearers = 0;
	struct bearer *bearers = calloc((size_t)(4 + 2 * nblocks + npanch + nbooths),
					sizeof(*bearers));
#define BEARER(post_, unit_)                                                             \
	do {                                                                             \
		struct person *who = &people[rnd((uint32_t)npeople)];                     \
		char oid[33];                                                            \
		const char *status = "active", *reason = NULL;                           \
		if (chance(0.12)) {                                                      \
			status = "inactive";                                             \
			reason = inactive_reasons[rnd(N(inactive_reasons))];             \
		} else if (chance(0.1)) {                                                \
			status = "to_replace";                                           \
			reason = inactive_reasons[rnd(N(inactive_reasons))];             \
		}                                                                        \
		new_id(oid);                                                             \
		put(T_OFFICE_BEARERS,                                                    \
		    (const char *const[]){ oid, district_id, who->id, post_ids[post_],   \
					   (unit_), status, reason,                      \
					   day(b1, -(int64_t)rnd(1000)) });              \
		bearers[nbearers].person = who->id;                                      \
		bearers[nbearers++].post = (post_);                                      \
	} while (0)
	BEARER(P_DIST_PRES, dunit.id);
	BEARER(P_DIST_GENSEC, dunit.id);
	BEARER(P_DIST_TREAS, dunit.id);
	const char **block_pres = calloc((size_t)nblocks, sizeof(*block_pres));
	for (int b = 0; b < nblocks; b++) {
		BEARER(P_BLOCK_PRES, blocks[b].id);
		block_pres[b] = bearers[nbearers - 1].person;
		if (chance(0.7))
			BEARER(P_BLOCK_SEC, blocks[b].id);
	}
	for (int p = 0; p < npanch; p++)
		if (chance(0.6))
			BEARER(P_PANCH_PRES, panchayats[p].id);
	for (int k = 0; k < nbooths; k++)
		if (chance(0.5))
			BEARER(P_BOOTH_PRES, booths[k].id);
#undef BEARER

	/* booth agents and committees */
	char oid[33];
	for (int k = 0; k < nbooths; k++) {
		if (chance(agent_cover)) {
			int na = 1 + (int)rnd(2);
			int first = (int)rnd((uint32_t)npeople);
			for (int a = 0; a < na && a < npeople; a++) {
				new_id(oid);
				put(T_BOOTH_AGENTS,
				    (const char *const[]){ oid, district_id, booths[k].id,
							   people[(first + a) % npeople].id,
							   day(b1, -(int64_t)rnd(400)) });
			}
		}
		if (chance(committee_cover)) {
			char cid[33];
			new_id(cid);
			put(T_BOOTH_COMMITTEES, (const char *const[]){ cid, district_id, booths[k].id,
								       day(b1, -(int64_t)rnd(300)) });
			static const char *roles[] = { "convenor", "member", "member", "member",
						       "youth member", "women member" };
			int nm = 3 + (int)rnd(4);
			int first = (int)rnd((uint32_t)npeople);
			for (int m = 0; m < nm && m < npeople; m++) {
				new_id(oid);
				put(T_COMMITTEE_MEMBERS,
				    (const char *const[]){ oid, district_id, cid,
							   people[(first + m) % npeople].id,
							   roles[m % N(roles)] });
			}
		}
	}

	/* the state-wide drive: a target for the district unit, and sign-ups */
	int target = npeople * (40 + (int)rnd(50)) / 100;
	if (target < 1)
		target = 1;
	new_id(oid);
	put(T_DRIVE_TARGETS, (const char *const[]){ oid, district_id, drive_id, dunit.id,
						    fmt(b7, sizeof(b7), "%d", target) });
	int nsign = (int)((double)npeople * signup_rate * (double)target / (double)npeople);
	if (nsign > npeople)
		nsign = npeople;
	int sfirst = (int)rnd((uint32_t)npeople);
	for (int s = 0; s < nsign; s++) {
		struct person *pp = &people[(sfirst + s) % npeople];
		new_id(oid);
		put(T_SIGNUPS, (const char *const[]){ oid, district_id, drive_id, pp->id, pp->booth,
						      day(b1, -(int64_t)rnd(60)) });
	}

	/* events and attendance */
	static const char *kinds[] = { "sammelan", "workshop", "training" };
	static const char *kind_title[] = { "Karyakarta Sammelan", "Booth management workshop",
					    "Training for new members" };
	int nev = 2 + (int)rnd(3);
	for (int e = 0; e < nev; e++) {
		int k = (int)rnd(3);
		char eid[33];
		new_id(eid);
		const struct pair *pl = &places[rnd(N(places))];
		const char *unit = e == 0 ? dunit.id : blocks[rnd((uint32_t)nblocks)].id;
		put(T_EVENTS, (const char *const[]){ eid, district_id, kinds[k],
						     fmt(b5, sizeof(b5), "%s, %s", kind_title[k], dname),
						     day(b1, -(int64_t)rnd(90)),
						     fmt(b6, sizeof(b6), "%s community hall", pl->en),
						     unit });
		int na = 5 + (int)rnd(26);
		int first = (int)rnd((uint32_t)npeople);
		for (int a = 0; a < na && a < npeople; a++) {
			new_id(oid);
			put(T_ATTENDANCE, (const char *const[]){ oid, district_id, eid,
								 people[(first + a) % npeople].id });
		}
	}

	/* tasks for office bearers */
	for (int t = 0; t < nbearers; t++) {
		if (!chance(0.4))
			continue;
		static const char *titles[] = { "Enrol new members", "Form booth committees",
						"Appoint booth agents", "Hold a ward meeting" };
		int k = (int)rnd(N(titles));
		int tg = 5 + (int)rnd(50);
		int got = (int)rnd((uint32_t)tg + 5);
		const char *status = got >= tg ? "done" : (chance(0.05) ? "cancelled" : "open");
		char tgs[16], gots[16];
		snprintf(tgs, sizeof(tgs), "%d", tg);
		snprintf(gots, sizeof(gots), "%d", got > tg ? tg : got);
		new_id(oid);
		put(T_TASKS, (const char *const[]){ oid, district_id, bearers[t].person, titles[k],
						    tgs, gots, day(b1, (int64_t)rnd(60) - 20),
						    status });
	}

	/* block coordinators' monthly reports, this month and the two before */
	for (int b = 0; b < nblocks; b++) {
		for (int m = 0; m < 3; m++) {
			int u = (int)rnd(100);
			if (u < 15)
				continue; /* not written */
			const char *status = u < 30 ? "draft" : (u < 80 ? "submitted" : "accepted");
			new_id(oid);
			put(T_REPORTS,
			    (const char *const[]){
				    oid, district_id, blocks[b].id, block_pres[b], month(b2, m), status,
				    strcmp(status, "draft") ? day(b1, -(int64_t)(30 * m) - rnd(5)) : NULL,
				    fmt(b5, sizeof(b5), "%d meetings held, %d new members enrolled.",
					(int)rnd(6), (int)rnd(40)) });
		}
	}

	free(block_pres);
	free(bearers);
	free(people);
	free(booths);
	free(panchayats);
	free(blocks);
}

static int generate(int ndistricts, int npeople)
{
	char b1[16], b2[16], b3[64];
	char state_id[33], state_unit[33], drive_id[33], post_ids[NPOSTS][33];
	const char *post_ptrs[NPOSTS];
	new_id(state_id);
	put(T_STATES, (const char *const[]){ state_id, "Bihar", "बिहार", "BR" });
	for (int p = 0; p < NPOSTS; p++) {
		char rank[8];
		new_id(post_ids[p]);
		post_ptrs[p] = post_ids[p];
		snprintf(rank, sizeof(rank), "%d", p + 1);
		put(T_POSTS, (const char *const[]){ post_ids[p], posts[p].en, posts[p].hi,
						    posts[p].level, rank });
	}
	new_id(state_unit);
	put(T_ORG_UNITS, (const char *const[]){ state_unit, "state", NULL, NULL, "Bihar", "बिहार",
						"BR" });
	new_id(drive_id);
	put(T_DRIVES, (const char *const[]){ drive_id, NULL, "Membership drive 2026",
					     day(b1, -60), day(b2, 30) });
	char (*dids)[33] = calloc((size_t)ndistricts, sizeof(*dids));
	for (int d = 0; d < ndistricts; d++) {
		char name[96], name_hi[160];
		int round = d / (int)NDISTRICT_NAMES;
		const struct pair *dp = &districts_bihar[d % NDISTRICT_NAMES];
		if (round == 0) {
			snprintf(name, sizeof(name), "%s", dp->en);
			snprintf(name_hi, sizeof(name_hi), "%s", dp->hi);
		} else {
			snprintf(name, sizeof(name), "%s %d", dp->en, round + 1);
			snprintf(name_hi, sizeof(name_hi), "%s %d", dp->hi, round + 1);
		}
		new_id(dids[d]);
		put(T_DISTRICTS, (const char *const[]){ dids[d], state_id, name, name_hi,
							fmt(b3, sizeof(b3), "D%02d", d + 1) });
	}
	/* state-level events and the state president */
	char eid[33];
	new_id(eid);
	put(T_EVENTS, (const char *const[]){ eid, NULL, "sammelan", "Pradesh Karyakarta Sammelan",
					     day(b1, -20), "Gandhi Maidan, Patna", state_unit });
	for (int d = 0; d < ndistricts && !failed; d++) {
		cur_district = d;
		gen_district(d, state_unit, dids[d], post_ptrs, drive_id, npeople);
	}
	cur_district = -1;
	free(dids);
	return failed ? -1 : 0;
}

/* --- a national replica ------------------------------------------------------------ */

/* Rows go first to a staging database of plain tables (no keys, no indexes), then each table
 * is copied into the replica in one statement and one transaction, in the order the rows
 * were made (the same rowids as inserting them one by one). Inserting a district at a time
 * straight into the replica spread every district's rows over the random-key indexes of
 * every table: past a few GB each row dirtied a page of each such index at each commit,
 * and WAL and checkpoint wrote several KiB a row (2 districts a minute at 10M members).
 * A table at a time keeps one table's indexes in the page cache, each page written once. */
static int stage_open(const char *dbpath, char *stage, size_t stage_len)
{
	char sql[600];
	if ((size_t)snprintf(stage, stage_len, "%s-zila-gen", dbpath) >= stage_len) {
		fprintf(stderr, "zila_gen: the path '%s' is too long\n", dbpath);
		stage[0] = '\0';
		return -1;
	}
	remove(stage); /* a run that died left it */
	sqlite3 *mk = NULL; /* the replica is opened without SQLITE_OPEN_CREATE, which ATTACH inherits */
	int made = sqlite3_open_v2(stage, &mk, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	sqlite3_close(mk);
	if (made != SQLITE_OK) {
		fprintf(stderr, "zila_gen: cannot create the staging database '%s'\n", stage);
		return -1;
	}
	char *q = sqlite3_mprintf("ATTACH %Q AS gen; PRAGMA gen.journal_mode = OFF; PRAGMA gen.synchronous = OFF",
				  stage);
	int rc = q ? sqlite3_exec(db, q, NULL, NULL, NULL) : SQLITE_NOMEM;
	sqlite3_free(q);
	for (int t = 0; rc == SQLITE_OK && t < NTABLES; t++) {
		snprintf(sql, sizeof(sql), "CREATE TABLE gen.%s AS SELECT %s FROM main.%s WHERE 0", tables[t].name,
			 tables[t].cols, tables[t].name);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		fprintf(stderr, "zila_gen: cannot make the staging database '%s': %s\n", stage, sqlite3_errmsg(db));
		return -1;
	}
	staged = true;
	return 0;
}

static double secs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The table's own indexes (CREATE INDEX, not its key's or UNIQUE's) are dropped for the
 * copy and made again after it in the same transaction, in their order: building one
 * sorts its entries, where inserting them one by one at random keys (a member's booth)
 * wrote pages all over an index larger than the cache. */
static int copy_table(int t)
{
	char sql[1200];
	struct zila_buf idx;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	zila_buf_init(&idx, 1 << 20);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ?"
					    " AND sql IS NOT NULL ORDER BY rowid", -1, &st, NULL);
	if (rc == SQLITE_OK)
		sqlite3_bind_text(st, 1, tables[t].name, -1, SQLITE_STATIC);
	int step = SQLITE_DONE;
	while (rc == SQLITE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *isql = (const char *)sqlite3_column_text(st, 1);
		if (zila_buf_put(&idx, isql, strlen(isql)) != 0 || zila_buf_put(&idx, ";\n", 2) != 0)
			rc = SQLITE_NOMEM;
		else {
			snprintf(sql, sizeof(sql), "DROP INDEX main.\"%s\"", (const char *)sqlite3_column_text(st, 0));
			sqlite3_reset(st); /* a statement reading sqlite_master must not run across a DROP */
			rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		}
	}
	if (rc == SQLITE_OK && step != SQLITE_DONE)
		rc = step;
	sqlite3_finalize(st);
	if (rc == SQLITE_OK) {
		snprintf(sql, sizeof(sql), "INSERT INTO main.%s (%s) SELECT %s FROM gen.%s ORDER BY rowid", tables[t].name,
			 tables[t].cols, tables[t].cols, tables[t].name);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK && idx.len && zila_buf_put(&idx, "", 1) != 0)
		rc = SQLITE_NOMEM;
	if (rc == SQLITE_OK && idx.len)
		rc = sqlite3_exec(db, (const char *)idx.p, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	zila_buf_release(&idx);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "zila_gen: cannot copy the rows of '%s' into the replica: %s\n", tables[t].name,
			sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static int stage_copy(const char *stage, bool progress)
{
	char sql[200];
	for (int t = 0; t < NTABLES; t++) {
		sqlite3_finalize(ins[t]);
		ins[t] = NULL;
	}
	for (int t = 0; t < NTABLES; t++) {
		double t0 = secs();
		if (copy_table(t) != 0)
			return -1;
		snprintf(sql, sizeof(sql), "DROP TABLE gen.%s", tables[t].name);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
		if (progress)
			fprintf(stderr, "zila_gen: %s copied into the replica in %.1f s\n", tables[t].name, secs() - t0);
	}
	if (sqlite3_exec(db, "DETACH gen", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "zila_gen: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	staged = false;
	remove(stage);
	return 0;
}

/* --- output ----------------------------------------------------------------------- */

static int dump_sql(bool with_schema)
{
	if (with_schema)
		fputs(zila_default_schema_sql, stdout);
	puts("BEGIN;");
	for (int t = 0; t < NTABLES; t++) {
		char sql[1024];
		int n = snprintf(sql, sizeof(sql), "SELECT 'INSERT INTO %s (%s) VALUES (' || ",
				 tables[t].name, tables[t].cols);
		const char *c = tables[t].cols;
		bool first = true;
		while (*c) {
			const char *e = strchr(c, ',');
			size_t len = e ? (size_t)(e - c) : strlen(c);
			n += snprintf(sql + n, sizeof(sql) - (size_t)n, "%squote(%.*s)",
				      first ? "" : " || ', ' || ", (int)len, c);
			first = false;
			c += len;
			while (*c == ',' || *c == ' ')
				c++;
		}
		snprintf(sql + n, sizeof(sql) - (size_t)n, " || ');' FROM %s ORDER BY rowid",
			 tables[t].name);
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
			fprintf(stderr, "zila_gen: %s\n", sqlite3_errmsg(db));
			return -1;
		}
		while (sqlite3_step(st) == SQLITE_ROW)
			puts((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	puts("COMMIT;");
	return ferror(stdout) ? -1 : 0;
}

static bool parse_day(const char *s, int64_t *out)
{
	int y, m, d;
	char tail;
	if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 ||
	    d > 31)
		return false;
	*out = days_from_civil(y, m, d);
	return true;
}

static bool parse_num(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	long ndistricts = 3, npeople = 200, seed = 1;
	const char *dbpath = NULL, *csv_table = NULL;
	char stage[4200] = "";
	bool sql = false, with_schema = false, no_bom = false, progress = false;
	double t_start = secs();
	int rc = 1;
	parse_day("2026-11-15", &today_days);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(a, "--sql") == 0) {
			sql = true;
		} else if (strcmp(a, "--with-schema") == 0) {
			with_schema = true;
		} else if (strcmp(a, "--no-bom") == 0) {
			no_bom = true;
		} else if (strcmp(a, "--progress") == 0) {
			progress = true;
		} else if (v == NULL) {
			fprintf(stderr, "zila_gen: unknown option or missing value '%s'\n%s", a, usage);
			return 2;
		} else if (strcmp(a, "--districts") == 0) {
			if (!parse_num(v, 1, 10000, &ndistricts))
				goto bad;
			i++;
		} else if (strcmp(a, "--people-per-district") == 0) {
			if (!parse_num(v, 1, 10000000, &npeople))
				goto bad;
			i++;
		} else if (strcmp(a, "--booths-per-district") == 0) {
			if (!parse_num(v, 1, 100000, &booths_per_district))
				goto bad;
			i++;
		} else if (strcmp(a, "--only-district") == 0) {
			long k;
			if (!parse_num(v, 1, 10000, &k))
				goto bad;
			only_district = (int)k - 1;
			i++;
		} else if (strcmp(a, "--seed") == 0) {
			if (!parse_num(v, 0, 0x7fffffffL, &seed))
				goto bad;
			i++;
		} else if (strcmp(a, "--today") == 0) {
			if (!parse_day(v, &today_days))
				goto bad;
			i++;
		} else if (strcmp(a, "--db") == 0) {
			dbpath = argv[++i];
		} else if (strcmp(a, "--csv-table") == 0) {
			csv_table = argv[++i];
		} else {
			fprintf(stderr, "zila_gen: unknown option '%s'\n%s", a, usage);
			return 2;
		}
		continue;
bad:
		fprintf(stderr, "zila_gen: bad value '%s' for %s\n", v, a);
		return 2;
	}
	if ((sql ? 1 : 0) + (dbpath ? 1 : 0) + (csv_table ? 1 : 0) != 1) {
		fprintf(stderr, "zila_gen: choose one of --sql, --db FILE, --csv-table TABLE\n%s",
			usage);
		return 2;
	}
	rng_state = (uint64_t)seed * UINT64_C(0x2545f4914f6cdd1d) + 1;

	if (dbpath != NULL) {
		if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
			fprintf(stderr, "zila_gen: cannot open '%s': %s\n", dbpath,
				db ? sqlite3_errmsg(db) : "out of memory");
			goto out;
		}
		sqlite3_busy_timeout(db, 10000);
		/* A table's random-key indexes at national size (10M members) need more than
		 * SQLite's 32 MiB cache: give it 2 GiB (people: its key 0.6 GiB). A generator that dies is run again, so
		 * its commits need not be durable. */
		sqlite3_exec(db, "PRAGMA cache_size = -2097152; PRAGMA synchronous = OFF", NULL, NULL, NULL);
	} else {
		if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
		    sqlite3_exec(db, zila_default_schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
			fprintf(stderr, "zila_gen: cannot create the schema: %s\n",
				sqlite3_errmsg(db));
			goto out;
		}
	}
	sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	if (dbpath != NULL && stage_open(dbpath, stage, sizeof(stage)) != 0)
		goto out;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "zila_gen: cannot start a transaction: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	if (only_district >= ndistricts) {
		fprintf(stderr, "zila_gen: --only-district %d but only %ld districts\n", only_district + 1,
			ndistricts);
		goto out;
	}
	if (generate((int)ndistricts, (int)npeople) != 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "zila_gen: cannot commit: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	if (progress)
		fprintf(stderr, "zila_gen: made in %.1f s\n", secs() - t_start);
	if (staged && stage_copy(stage, progress) != 0)
		goto out;
	if (sql) {
		if (dump_sql(with_schema) != 0)
			goto out;
	} else if (csv_table != NULL) {
		struct zila_csv_export_opts eo = { .table = csv_table, .format = ZILA_EXPORT_CSV,
						   .no_bom = no_bom };
		struct zila_error err;
		zila_error_clear(&err);
		int r = zila_csv_export(db, &eo, stdout, NULL, &err);
		if (r != 0) {
			fprintf(stderr, "zila_gen: %s\n", zila_error_msg(&err, r));
			goto out;
		}
	}
	rc = 0;
out:
	for (int t = 0; t < NTABLES; t++)
		sqlite3_finalize(ins[t]);
	sqlite3_close(db);
	if (stage[0] != '\0')
		remove(stage);
	return rc;
}
