/* How office staff write values in a spreadsheet and what zila makes of them: Indian
 * mobile numbers, dates as Excel writes them in India, months, whole numbers; which column
 * holds which kind of value; header names. */
#include <stdio.h>
#include <string.h>

#include "office_int.h"

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

bool office_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return false;
	return *a == *b;
}

bool office_header_matches(const char *h, const char *col)
{
	for (; *h && *col; h++, col++) {
		int ch = lower((unsigned char)*h);
		if (ch == ' ' || ch == '-' || ch == '.')
			ch = '_';
		if (ch != lower((unsigned char)*col))
			return false;
	}
	return *h == *col;
}

/* Words offices write as headers, and the column of the default schema each means. */
static const struct {
	const char *word, *col;
} office_words[] = {
	{ "naam", "name" },
	{ "full_name", "name" },
	{ "member_name", "name" },
	{ "नाम", "name" },
	{ "hindi_name", "name_local" },
	{ "name_hindi", "name_local" },
	{ "naam_hindi", "name_local" },
	{ "hindi_naam", "name_local" },
	{ "हिंदी_नाम", "name_local" },
	{ "mobile", "phone" },
	{ "mobile_no", "phone" },
	{ "mobile_number", "phone" },
	{ "mob_no", "phone" },
	{ "phone_no", "phone" },
	{ "phone_number", "phone" },
	{ "contact_no", "phone" },
	{ "मोबाइल", "phone" },
	{ "मोबाइल_नंबर", "phone" },
	{ "फ़ोन", "phone" },
	{ "booth", "org_unit_id" },
	{ "booth_no", "org_unit_id" },
	{ "booth_number", "org_unit_id" },
	{ "बूथ", "org_unit_id" },
	{ "ling", "gender" },
	{ "sex", "gender" },
	{ "लिंग", "gender" },
	{ "pata", "address" },
	{ "पता", "address" },
	{ "zila", "district_id" },
	{ "jila", "district_id" },
	{ "जिला", "district_id" },
	{ "ज़िला", "district_id" },
	{ "year_of_birth", "birth_year" },
	{ "janm_varsh", "birth_year" },
};

int office_header_guess(const char *h, const char *const *names, const bool *fk, size_t n)
{
	char cut[256], withid[260];
	size_t len = strlen(h);
	while (len > 0 && (h[len - 1] == '.' || h[len - 1] == ':' || h[len - 1] == ' '))
		len--;
	if (len == 0 || len >= sizeof(cut))
		return -1;
	memcpy(cut, h, len);
	cut[len] = '\0';
	for (size_t i = 0; i < n; i++)
		if (office_header_matches(h, names[i]) || office_header_matches(cut, names[i]))
			return (int)i;
	snprintf(withid, sizeof(withid), "%s_id", cut);
	for (size_t i = 0; i < n; i++)
		if (fk[i] && office_header_matches(withid, names[i]))
			return (int)i;
	for (size_t w = 0; w < sizeof(office_words) / sizeof(office_words[0]); w++) {
		if (!office_header_matches(cut, office_words[w].word))
			continue;
		for (size_t i = 0; i < n; i++)
			if (strcmp(names[i], office_words[w].col) == 0)
				return (int)i;
	}
	return -1;
}

const char *office_show(char out[OFFICE_SHOW_MAX + 8], const char *s, size_t n)
{
	size_t k = n;
	if (k > OFFICE_SHOW_MAX) {
		k = OFFICE_SHOW_MAX;
		while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
			k--;
	}
	for (size_t i = 0; i < k; i++)
		out[i] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
	if (k < n) {
		memcpy(out + k, "...", 4);
	} else {
		out[k] = '\0';
	}
	return out;
}

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return n > 0;
}

/* YYYY-MM-DD, or D-M-YYYY / D/M/YYYY / D.M.YYYY with one- or two-digit day and month. */
bool office_parse_date(const char *s, size_t n, char out[OFFICE_NORM_MAX])
{
	int y, m, d;
	if (n == 10 && s[4] == '-' && s[7] == '-') {
		if (!digits(s, 4, &y) || !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
			return false;
	} else {
		size_t i = 0, a, b;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		a = i;
		if (a < 1 || a > 2 || i >= n || (s[i] != '-' && s[i] != '/' && s[i] != '.'))
			return false;
		char sep = s[i++];
		size_t mstart = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		b = i - mstart;
		if (b < 1 || b > 2 || i >= n || s[i] != sep)
			return false;
		i++;
		if (n - i != 4 || !digits(s, a, &d) || !digits(s + mstart, b, &m) ||
		    !digits(s + i, 4, &y))
			return false;
	}
	if (y < 1000 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return false;
	snprintf(out, OFFICE_NORM_MAX, "%04d-%02d-%02d", y % 10000, m % 100, d % 100);
	return true;
}

bool office_parse_period(const char *s, size_t n, char out[OFFICE_NORM_MAX])
{
	int y, m;
	if (n != 7 || s[4] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m) || y < 1000 ||
	    m < 1 || m > 12) {
		/* Excel turns 2024-05 into May-24 or 05-2024; accept MM-YYYY and MM/YYYY */
		if (n == 7 && (s[2] == '-' || s[2] == '/') && digits(s, 2, &m) &&
		    digits(s + 3, 4, &y) && y >= 1000 && m >= 1 && m <= 12) {
			snprintf(out, OFFICE_NORM_MAX, "%04d-%02d", y % 10000, m % 100);
			return true;
		}
		return false;
	}
	snprintf(out, OFFICE_NORM_MAX, "%04d-%02d", y % 10000, m % 100);
	return true;
}

/* A landline as people type it: 0, an STD code of 2 to 4 digits (which starts with 1 to 8;
 * mobile numbers start with 6 to 9, so the digits alone cannot tell 0612 2234567 from a
 * mobile), a separator, and the subscriber number, 10 digits after the 0 in all; or +91 or
 * 91 first and the code without its 0. Written as 0612-2234567. */
static bool parse_landline(const char *s, size_t n, char out[OFFICE_NORM_MAX])
{
	/* most cells are mobiles: a landline starts 0, +91 or 91 and sets its code apart */
	size_t lead = 0;
	while (lead < n && s[lead] == ' ')
		lead++;
	if (lead == n || (s[lead] != '0' && s[lead] != '+' && s[lead] != '9' && s[lead] != '(') ||
	    (memchr(s, ' ', n) == NULL && memchr(s, '-', n) == NULL && memchr(s, ')', n) == NULL &&
	     memchr(s, '.', n) == NULL && memchr(s, '/', n) == NULL))
		return false;
	char g[8][16];
	size_t ng = 0, len = 0;
	bool plus = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			if (ng == 0 || len == 0) {
				if (ng == 8)
					return false;
				ng++;
			}
			if (len == sizeof(g[0]) - 1)
				return false;
			g[ng - 1][len++] = c;
			g[ng - 1][len] = '\0';
		} else if (c == '+' && ng == 0 && !plus) {
			plus = true;
		} else if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '.' || c == '/') {
			len = 0;
		} else {
			return false;
		}
	}
	size_t first = 0;
	char std[16];
	if (ng >= 3 && strcmp(g[0], "91") == 0) {
		first = 1; /* +91 612 2234567 */
		if (strlen(g[1]) < 2 || strlen(g[1]) > 4 || g[1][0] == '0')
			return false;
		memcpy(std, g[1], strlen(g[1]) + 1);
	} else if (ng >= 2 && !plus && g[0][0] == '0' && strlen(g[0]) >= 3 && strlen(g[0]) <= 5) {
		memcpy(std, g[0] + 1, strlen(g[0])); /* 0612-2234567 */
	} else {
		return false;
	}
	if (std[0] < '1' || std[0] > '8')
		return false;
	char rest[24] = "";
	for (size_t i = first + 1; i < ng; i++)
		if (strlen(rest) + strlen(g[i]) < sizeof(rest))
			strcat(rest, g[i]);
	if (strlen(std) + strlen(rest) != 10)
		return false;
	snprintf(out, OFFICE_NORM_MAX, "0%s-%s", std, rest);
	return true;
}

/* A 10-digit Indian mobile number from what people type: +91 98765 43210, 098765-43210; or
 * a landline with its STD code, kept as 0612-2234567 (never made into a mobile). */
bool office_parse_phone(const char *s, size_t n, char out[OFFICE_NORM_MAX])
{
	if (parse_landline(s, n, out))
		return true;
	char d[24];
	size_t nd = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			if (nd == sizeof(d))
				return false;
			d[nd++] = c;
		} else if (c == '+' && nd == 0) {
			continue;
		} else if (c != ' ' && c != '-' && c != '(' && c != ')' && c != '.') {
			return false;
		}
	}
	const char *p = d;
	if (nd == 12 && d[0] == '9' && d[1] == '1') {
		p += 2;
		nd = 10;
	} else if (nd == 11 && d[0] == '0') {
		p += 1;
		nd = 10;
	}
	if (nd != 10 || p[0] < '6' || p[0] > '9')
		return false;
	memcpy(out, p, 10);
	out[10] = '\0';
	return true;
}

bool office_parse_int(const char *s, size_t n, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	size_t first = i;
	uint64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			break;
		if (v > (UINT64_C(1) << 62))
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == first)
		return false;
	/* "12.0" and "12.00", as spreadsheets sometimes write whole numbers */
	if (i < n && s[i] == '.') {
		for (i++; i < n && s[i] == '0'; i++)
			;
	}
	if (i != n)
		return false;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return true;
}

enum office_kind office_column_kind(const char *name, const char *type)
{
	size_t n = strlen(name);
	char up[64];
	size_t i;
	for (i = 0; type[i] && i < sizeof(up) - 1; i++)
		up[i] = (type[i] >= 'a' && type[i] <= 'z') ? (char)(type[i] - 32) : type[i];
	up[i] = '\0';
	if (strstr(up, "INT") != NULL)
		return K_INT;
	if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB"))
		return K_REAL;
	if (up[0] != '\0' && strstr(up, "TEXT") == NULL && strstr(up, "CHAR") == NULL &&
	    strstr(up, "CLOB") == NULL)
		return K_TEXT;
	if ((n > 3 && strcmp(name + n - 3, "_on") == 0) || strcmp(name, "since") == 0 ||
	    strcmp(name, "deadline") == 0)
		return K_DATE;
	if (strcmp(name, "period") == 0)
		return K_PERIOD;
	if (strcmp(name, "phone") == 0 || (n > 6 && strcmp(name + n - 6, "_phone") == 0))
		return K_PHONE;
	if (strcmp(name, "gender") == 0)
		return K_GENDER;
	return K_TEXT;
}

/* -12, -1.5, -1.0e+20: what a spreadsheet reads as a number. */
static bool plain_number(const char *s, size_t n)
{
	size_t i = 0, nd = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		nd++;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			nd++;
	if (nd == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t ne = 0;
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			ne++;
		if (ne == 0)
			return false;
	}
	return i == n;
}

bool office_formula_like(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] == '\'')
		i++;
	if (i == n)
		return false;
	char c = s[i];
	if (c != '=' && c != '+' && c != '-' && c != '@' && c != '\t' && c != '\r')
		return false;
	return !plain_number(s + i, n - i);
}

/* One name written two ways: ASCII case, spaces and dots do not count ("R. K. Singh" is
 * "r k singh"). */
bool office_same_name(const char *a, const char *b, size_t bn)
{
	size_t i = 0, j = 0, an = strlen(a);
	for (;;) {
		while (i < an && (a[i] == ' ' || a[i] == '.' || a[i] == '\t'))
			i++;
		while (j < bn && (b[j] == ' ' || b[j] == '.' || b[j] == '\t'))
			j++;
		if (i == an || j == bn)
			return i == an && j == bn;
		if (lower((unsigned char)a[i++]) != lower((unsigned char)b[j++]))
			return false;
	}
}

bool office_only_question_marks(const char *s, size_t n)
{
	size_t nq = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '?')
			nq++;
		else if (s[i] != ' ')
			return false;
	}
	return nq >= 2;
}

bool office_lost_letters(const char *old, size_t on, const char *s, size_t n)
{
	bool non_ascii = false;
	for (size_t i = 0; i < on; i++)
		if ((unsigned char)old[i] >= 0x80)
			non_ascii = true;
	if (!non_ascii || memchr(s, '?', n) == NULL)
		return false;
	/* the stored text with each non-ASCII character as one ? */
	size_t i = 0, j = 0;
	while (i < on && j < n) {
		unsigned char c = (unsigned char)old[i];
		if (c < 0x80) {
			if (s[j] != old[i])
				break;
			i++;
		} else {
			if (s[j] != '?')
				break;
			for (i++; i < on && ((unsigned char)old[i] & 0xc0) == 0x80; i++)
				;
		}
		j++;
	}
	if (i == on && j == n)
		return true;
	/* or nothing but ? where letters were: no letter or digit left at all */
	for (j = 0; j < n; j++) {
		unsigned char c = (unsigned char)s[j];
		if ((c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c >= 0x80)
			return false;
	}
	return true;
}

/* What people write for a gender, in English and Hindi, and the default schema's word. */
static const struct {
	const char *in;
	const char *out;
} genders[] = {
	{ "f", "female" },      { "female", "female" }, { "w", "female" },
	{ "woman", "female" },  { "mahila", "female" }, { "महिला", "female" },
	{ "स्त्री", "female" },    { "औरत", "female" },    { "m", "male" },
	{ "male", "male" },     { "man", "male" },      { "purush", "male" },
	{ "पुरुष", "male" },     { "आदमी", "male" },     { "o", "other" },
	{ "other", "other" },   { "अन्य", "other" },
};

const char *office_gender(const char *s, size_t n)
{
	while (n > 0 && (s[0] == ' ' || s[0] == '.'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '.'))
		n--;
	char low[32];
	if (n == 0 || n >= sizeof(low))
		return NULL;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)lower((unsigned char)s[i]);
	low[n] = '\0';
	for (size_t i = 0; i < sizeof(genders) / sizeof(genders[0]); i++)
		if (strcmp(low, genders[i].in) == 0)
			return genders[i].out;
	return NULL;
}
