/* include/zila/os.h for Windows (mingw-w64): the same promises by Windows' means. Files are
 * replaced with MoveFileEx(WRITE_THROUGH), "0600" is an owner-only protected DACL, maps are
 * file mappings, the instance lock is LockFileEx, the control channel is a named pipe
 * (libuv's pipes are) whose clients must run as the daemon's user, sockets are Winsock, the
 * worker a native thread. */
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <shellapi.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "os_win.h"
#include "zila/os.h"

/* --- errors ---------------------------------------------------------------------------- */

static int io_code(int e)
{
	return e == ENOSPC ? ZILA_EFULL : e == ENOENT ? ZILA_ENOTFOUND : ZILA_EIO;
}

static int io_fail(struct zila_error *err, int e, const char *what, const char *path)
{
	char why[128];
	snprintf(why, sizeof(why), "%s", strerror(e));
	if (why[0] >= 'A' && why[0] <= 'Z' && !(why[1] >= 'A' && why[1] <= 'Z'))
		why[0] = (char)(why[0] + 'a' - 'A');
	return zila_error_set(err, io_code(e), "cannot %s '%s': %s", what, path, why);
}

static int win_errno(DWORD w)
{
	switch (w) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
		return ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
		return EACCES;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
		return ENOSPC;
	case ERROR_FILE_EXISTS:
	case ERROR_ALREADY_EXISTS:
		return EEXIST;
	default:
		return EIO;
	}
}

/* --- owner-only files: what 0600 and 0700 mean here ------------------------------------- */

/* The user this process runs as (a TOKEN_USER in *buf, freed by the caller). */
static PSID self_sid(void **buf)
{
	HANDLE tok = NULL;
	DWORD n = 0;
	*buf = NULL;
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return NULL;
	GetTokenInformation(tok, TokenUser, NULL, 0, &n);
	if (n > 0 && (*buf = malloc(n)) != NULL && !GetTokenInformation(tok, TokenUser, *buf, n, &n)) {
		free(*buf);
		*buf = NULL;
	}
	CloseHandle(tok);
	return *buf != NULL ? ((TOKEN_USER *)*buf)->User.Sid : NULL;
}

/* A protected DACL that lets this process's user, SYSTEM and Administrators (and, for a
 * directory, what is created in it) do everything, and nobody else anything: no inherited
 * entries for Users or Everyone. SYSTEM and Administrators, who can take any file anyway, are
 * there for the service: the installer (an administrator) makes the replica in ProgramData
 * that the service (LocalSystem) opens, and an administrator's 'zila join' or 'invite' on it
 * writes files the service must read; with the user alone, each would lock the other out. */
static int make_owner_only(const char *path, bool dir)
{
	void *tu;
	PSID me = self_sid(&tu);
	int r = ZILA_EIO;
	PACL acl = NULL;
	BYTE sys[SECURITY_MAX_SID_SIZE], admins[SECURITY_MAX_SID_SIZE];
	DWORD sys_len = sizeof(sys), admins_len = sizeof(admins);
	if (me == NULL || !CreateWellKnownSid(WinLocalSystemSid, NULL, sys, &sys_len) ||
	    !CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins, &admins_len))
		goto out;
	EXPLICIT_ACCESS_A ea[3];
	PSID who[3] = { me, (PSID)sys, (PSID)admins };
	memset(ea, 0, sizeof(ea));
	for (int i = 0; i < 3; i++) {
		ea[i].grfAccessPermissions = GENERIC_ALL;
		ea[i].grfAccessMode = SET_ACCESS;
		ea[i].grfInheritance = dir ? SUB_CONTAINERS_AND_OBJECTS_INHERIT : NO_INHERITANCE;
		ea[i].Trustee.TrusteeForm = TRUSTEE_IS_SID;
		ea[i].Trustee.TrusteeType = i == 0 ? TRUSTEE_IS_USER : TRUSTEE_IS_WELL_KNOWN_GROUP;
		ea[i].Trustee.ptstrName = (LPSTR)who[i];
	}
	if (SetEntriesInAclA(3, ea, NULL, &acl) != ERROR_SUCCESS)
		goto out;
	if (SetNamedSecurityInfoA((LPSTR)path, SE_FILE_OBJECT,
				  DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL, NULL, acl,
				  NULL) == ERROR_SUCCESS)
		r = 0;
out:
	if (acl != NULL)
		LocalFree(acl);
	free(tu);
	return r;
}

/* 0600 when only this user (or SYSTEM and Administrators, who can take any file anyway) may
 * read PATH, 0644 when someone else may; 0600 when Windows does not say. */
static unsigned owner_mode(const char *path)
{
	PACL acl = NULL;
	PSECURITY_DESCRIPTOR sd = NULL;
	void *tu;
	PSID me = self_sid(&tu);
	unsigned mode = 0600;
	if (me == NULL || GetNamedSecurityInfoA(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &acl,
						NULL, &sd) != ERROR_SUCCESS)
		goto out;
	if (acl == NULL) { /* a NULL DACL lets everyone in */
		mode = 0666;
		goto out;
	}
	for (DWORD i = 0; i < acl->AceCount; i++) {
		ACE_HEADER *h;
		if (!GetAce(acl, i, (void **)&h) || h->AceType != ACCESS_ALLOWED_ACE_TYPE)
			continue;
		ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)h;
		PSID sid = (PSID)&a->SidStart;
		if (EqualSid(sid, me) || IsWellKnownSid(sid, WinLocalSystemSid) ||
		    IsWellKnownSid(sid, WinBuiltinAdministratorsSid) || IsWellKnownSid(sid, WinCreatorOwnerSid))
			continue;
		if (a->Mask & (FILE_READ_DATA | GENERIC_READ | GENERIC_ALL)) {
			mode = 0644;
			break;
		}
	}
out:
	if (sd != NULL)
		LocalFree(sd);
	free(tu);
	return mode;
}

/* --- atomic writes ------------------------------------------------------------------- */

struct zila_os_atomic {
	FILE *f;
	char *path, *tmp;
	int werr;
	bool remakeable;
};

static int open_new(const char *path, unsigned mode)
{
	int fd = _open(path, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
	if (fd >= 0 && (mode & 077) == 0 && make_owner_only(path, false) != 0) {
		_close(fd);
		(void)_unlink(path);
		errno = EACCES;
		return -1;
	}
	return fd;
}

int zila_os_atomic_open(struct zila_os_atomic **out, const char *path, unsigned mode, struct zila_error *err)
{
	struct zila_os_atomic *a = calloc(1, sizeof(*a));
	int r = ZILA_ENOMEM, fd = -1;
	*out = NULL;
	if (a == NULL || (a->path = strdup(path)) == NULL || (a->tmp = malloc(strlen(path) + 5)) == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	strcpy(a->tmp, path);
	strcat(a->tmp, ".tmp");
	fd = open_new(a->tmp, mode);
	if (fd < 0 && errno == EEXIST) {
		(void)_unlink(a->tmp);
		fd = open_new(a->tmp, mode);
	}
	if (fd < 0) {
		r = io_fail(err, errno, "write", path);
		goto out;
	}
	if ((a->f = _fdopen(fd, "wb")) == NULL) {
		r = io_fail(err, errno, "write", path);
		_close(fd);
		(void)_unlink(a->tmp);
		goto out;
	}
	*out = a;
	a = NULL;
	r = 0;
out:
	if (a != NULL) {
		free(a->path);
		free(a->tmp);
		free(a);
	}
	return r;
}

int zila_os_atomic_write(void *ctx, const uint8_t *p, size_t len)
{
	struct zila_os_atomic *a = ctx;
	if (a->werr != 0)
		return io_code(a->werr);
	if (len > 0 && fwrite(p, 1, len, a->f) != len) {
		a->werr = errno ? errno : EIO;
		return io_code(a->werr);
	}
	return 0;
}

int zila_os_atomic_failed(const struct zila_os_atomic *a, struct zila_error *err)
{
	return a->werr != 0 ? io_fail(err, a->werr, "write", a->path) : 0;
}

FILE *zila_os_atomic_stream(struct zila_os_atomic *a)
{
	return a->f;
}

static void atomic_free(struct zila_os_atomic *a)
{
	free(a->path);
	free(a->tmp);
	free(a);
}

int zila_os_atomic_commit(struct zila_os_atomic *a, struct zila_error *err)
{
	int e = a->werr;
	if (e == 0 && ferror(a->f))
		e = EIO;
	if (e == 0 && (fflush(a->f) != 0 || _commit(_fileno(a->f)) != 0))
		e = errno;
	if (fclose(a->f) != 0 && e == 0)
		e = errno;
	a->f = NULL;
	/* WRITE_THROUGH: the rename is on disk when the call returns (Windows' directory sync). */
	DWORD flags = MOVEFILE_REPLACE_EXISTING | (a->remakeable ? 0 : MOVEFILE_WRITE_THROUGH);
	if (e == 0 && !MoveFileExA(a->tmp, a->path, flags))
		e = win_errno(GetLastError());
	int r = 0;
	if (e != 0) {
		(void)_unlink(a->tmp);
		r = io_fail(err, e, "write", a->path);
	}
	atomic_free(a);
	return r;
}

void zila_os_atomic_remakeable(struct zila_os_atomic *a)
{
	a->remakeable = true;
}

void zila_os_atomic_abort(struct zila_os_atomic *a)
{
	if (a == NULL)
		return;
	if (a->f != NULL)
		fclose(a->f);
	(void)_unlink(a->tmp);
	atomic_free(a);
}

int zila_os_write_atomic(const char *path, const void *p, size_t len, unsigned mode, struct zila_error *err)
{
	struct zila_os_atomic *a;
	int r = zila_os_atomic_open(&a, path, mode, err);
	if (r != 0)
		return r;
	if ((r = zila_os_atomic_write(a, p, len)) != 0) {
		int e = a->werr;
		zila_os_atomic_abort(a);
		return io_fail(err, e, "write", path);
	}
	return zila_os_atomic_commit(a, err);
}

int zila_os_write_new(const char *path, const void *p, size_t len, unsigned mode, struct zila_error *err)
{
	int fd = open_new(path, mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return zila_error_set(err, ZILA_EEXIST, "'%s' already exists", path);
		return io_fail(err, errno, "create", path);
	}
	int e = 0;
	const uint8_t *b = p;
	while (e == 0 && len > 0) {
		unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
		int w = _write(fd, b, chunk);
		if (w <= 0)
			e = w < 0 ? errno : EIO;
		else {
			b += w;
			len -= (size_t)w;
		}
	}
	if (e == 0 && _commit(fd) != 0)
		e = errno;
	if (_close(fd) != 0 && e == 0)
		e = errno;
	if (e != 0) {
		(void)_unlink(path);
		return io_fail(err, e, "write", path);
	}
	return 0;
}

/* --- reading ---------------------------------------------------------------------------- */

int zila_os_read_file(const char *path, size_t max, struct zila_buf *out, unsigned *mode_out, struct zila_error *err)
{
	uint8_t tmp[4096];
	int r = 0;
	if (mode_out)
		*mode_out = 0;
	int fd = _open(path, _O_RDONLY | _O_BINARY | _O_NOINHERIT);
	if (fd < 0)
		return io_fail(err, errno, "read", path);
	if (mode_out)
		*mode_out = owner_mode(path);
	size_t total = 0;
	for (;;) {
		int n = _read(fd, tmp, sizeof(tmp));
		if (n < 0) {
			r = io_fail(err, errno, "read", path);
			break;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (total > max || zila_buf_put(out, tmp, (size_t)n) != 0) {
			r = zila_error_set(err, ZILA_ETOOBIG, "'%s' is larger than %zu bytes", path, max);
			break;
		}
	}
	sodium_memzero(tmp, sizeof(tmp));
	_close(fd);
	return r;
}

int zila_os_map(struct zila_os_map *m, const char *path, struct zila_error *err)
{
	memset(m, 0, sizeof(*m));
	HANDLE f = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
			       OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
	LARGE_INTEGER size;
	int r = 0;
	if (f == INVALID_HANDLE_VALUE)
		return io_fail(err, win_errno(GetLastError()), "read", path);
	if (!GetFileSizeEx(f, &size)) {
		r = io_fail(err, win_errno(GetLastError()), "read", path);
		goto out;
	}
	if (size.QuadPart == 0)
		goto out;
	if ((uint64_t)size.QuadPart > SIZE_MAX) {
		r = zila_error_set(err, ZILA_ETOOBIG, "'%s' is too large to map", path);
		goto out;
	}
	HANDLE h = CreateFileMappingA(f, NULL, PAGE_READONLY, 0, 0, NULL);
	void *p = h != NULL ? MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0) : NULL;
	if (p == NULL)
		r = io_fail(err, win_errno(GetLastError()), "read", path);
	if (h != NULL)
		CloseHandle(h); /* the view keeps the mapping */
	if (p != NULL) {
		m->p = p;
		m->len = (size_t)size.QuadPart;
		m->priv_ = p;
	}
out:
	CloseHandle(f);
	return r;
}

void zila_os_unmap(struct zila_os_map *m)
{
	if (m->priv_ != NULL)
		UnmapViewOfFile(m->priv_);
	memset(m, 0, sizeof(*m));
}

/* --- directories and modes --------------------------------------------------------------- */

void zila_os_private_how(const char *path, char *out, size_t n)
{
	snprintf(out, n, "icacls \"%s\" /inheritance:r /grant:r \"%%USERNAME%%:F\"", path);
}

int zila_os_mode(const char *path, unsigned *mode)
{
	DWORD a = GetFileAttributesA(path);
	if (a == INVALID_FILE_ATTRIBUTES)
		return io_code(win_errno(GetLastError()));
	bool dir = (a & FILE_ATTRIBUTE_DIRECTORY) != 0;
	*mode = owner_mode(path) == 0600 ? (dir ? 0700 : 0600) : (dir ? 0755 : 0644);
	return 0;
}

int zila_os_mkdtemp(char *tmpl)
{
	size_t n = strlen(tmpl);
	if (n < 6 || strcmp(tmpl + n - 6, "XXXXXX") != 0)
		return ZILA_EINVAL;
	for (int tries = 0; tries < 100; tries++) {
		static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
		for (size_t i = n - 6; i < n; i++)
			tmpl[i] = abc[randombytes_uniform(sizeof(abc) - 1)];
		if (CreateDirectoryA(tmpl, NULL)) {
			(void)make_owner_only(tmpl, true);
			return 0;
		}
		if (GetLastError() != ERROR_ALREADY_EXISTS)
			return io_code(win_errno(GetLastError()));
	}
	return ZILA_EEXIST;
}

int zila_os_rmtree(const char *path)
{
	char pat[MAX_PATH * 4];
	WIN32_FIND_DATAA fd;
	DWORD a = GetFileAttributesA(path);
	if (a == INVALID_FILE_ATTRIBUTES)
		return 0;
	if (!(a & FILE_ATTRIBUTE_DIRECTORY) || (a & FILE_ATTRIBUTE_REPARSE_POINT)) {
		SetFileAttributesA(path, FILE_ATTRIBUTE_NORMAL);
		return (a & FILE_ATTRIBUTE_DIRECTORY ? RemoveDirectoryA(path) : DeleteFileA(path)) ? 0 : ZILA_EIO;
	}
	snprintf(pat, sizeof(pat), "%s\\*", path);
	HANDLE h = FindFirstFileA(pat, &fd);
	int r = 0;
	if (h != INVALID_HANDLE_VALUE) {
		do {
			if (strcmp(fd.cFileName, ".") == 0 || strcmp(fd.cFileName, "..") == 0)
				continue;
			char sub[MAX_PATH * 4];
			snprintf(sub, sizeof(sub), "%s\\%s", path, fd.cFileName);
			if (zila_os_rmtree(sub) != 0)
				r = ZILA_EIO;
		} while (FindNextFileA(h, &fd));
		FindClose(h);
	}
	if (r == 0 && !RemoveDirectoryA(path))
		r = ZILA_EIO;
	return r;
}

int zila_os_append(const char *path, const void *p, size_t len, struct zila_error *err)
{
	int fd = _open(path, _O_WRONLY | _O_CREAT | _O_APPEND | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
	if (fd < 0)
		return io_fail(err, errno, "write", path);
	long long was = _lseeki64(fd, 0, SEEK_END);
	int e = 0;
	const uint8_t *b = p;
	while (e == 0 && len > 0) {
		unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
		int w = _write(fd, b, chunk);
		if (w <= 0)
			e = w < 0 ? errno : EIO;
		else {
			b += w;
			len -= (size_t)w;
		}
	}
	if (e != 0 && was >= 0)
		(void)_chsize_s(fd, was);
	if (_close(fd) != 0 && e == 0)
		e = errno;
	return e != 0 ? io_fail(err, e, "write", path) : 0;
}

int zila_os_truncate(const char *path, uint64_t len)
{
	int fd = _open(path, _O_WRONLY | _O_BINARY | _O_NOINHERIT);
	if (fd < 0)
		return io_code(errno);
	int e = _chsize_s(fd, (long long)len);
	_close(fd);
	return e == 0 ? 0 : io_code(e);
}

int zila_os_finish(const char *from, const char *to, bool sync, struct zila_error *err)
{
	int e = 0;
	if (sync) {
		int fd = _open(from, _O_RDWR | _O_BINARY | _O_NOINHERIT);
		if (fd < 0)
			return io_fail(err, errno, "read", from);
		e = _commit(fd) != 0 ? errno : 0;
		if (_close(fd) != 0 && e == 0)
			e = errno;
	}
	if (e == 0 && !MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | (sync ? MOVEFILE_WRITE_THROUGH : 0)))
		e = win_errno(GetLastError());
	return e != 0 ? io_fail(err, e, "write", to) : 0;
}

int zila_os_remove(const char *path)
{
	if (DeleteFileA(path) || GetLastError() == ERROR_FILE_NOT_FOUND || GetLastError() == ERROR_PATH_NOT_FOUND)
		return 0;
	return io_code(win_errno(GetLastError()));
}

int zila_os_list(const char *dir, int (*fn)(void *ctx, const char *name), void *ctx)
{
	char pat[MAX_PATH * 4];
	WIN32_FIND_DATAA fd;
	snprintf(pat, sizeof(pat), "%s\\*", dir);
	HANDLE h = FindFirstFileA(pat, &fd);
	if (h == INVALID_HANDLE_VALUE)
		return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : io_code(win_errno(GetLastError()));
	int r = 0;
	do {
		if (strcmp(fd.cFileName, ".") != 0 && strcmp(fd.cFileName, "..") != 0)
			r = fn(ctx, fd.cFileName);
	} while (r == 0 && FindNextFileA(h, &fd));
	FindClose(h);
	return r;
}

int zila_os_copydir(const char *src, const char *dst)
{
	char pat[MAX_PATH * 4];
	WIN32_FIND_DATAA fd;
	if (!CreateDirectoryA(dst, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
		return io_code(win_errno(GetLastError()));
	(void)make_owner_only(dst, true);
	snprintf(pat, sizeof(pat), "%s\\*", src);
	HANDLE h = FindFirstFileA(pat, &fd);
	if (h == INVALID_HANDLE_VALUE)
		return io_code(win_errno(GetLastError()));
	int r = 0;
	do {
		if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
			continue;
		char from[MAX_PATH * 4], to[MAX_PATH * 4];
		snprintf(from, sizeof(from), "%s\\%s", src, fd.cFileName);
		snprintf(to, sizeof(to), "%s\\%s", dst, fd.cFileName);
		if (!CopyFileA(from, to, TRUE))
			r = io_code(win_errno(GetLastError()));
	} while (r == 0 && FindNextFileA(h, &fd));
	FindClose(h);
	return r;
}

int zila_os_mkdir(const char *path, unsigned mode, struct zila_error *err)
{
	if (!CreateDirectoryA(path, NULL)) {
		DWORD w = GetLastError();
		if (w == ERROR_ALREADY_EXISTS)
			return 0;
		return io_fail(err, win_errno(w), "create", path);
	}
	if ((mode & 077) == 0 && make_owner_only(path, true) != 0)
		return zila_error_set(err, ZILA_EIO, "cannot make '%s' private to this user", path);
	return 0;
}

int zila_os_make_private(const char *path)
{
	DWORD a = GetFileAttributesA(path);
	if (a == INVALID_FILE_ATTRIBUTES)
		return io_code(win_errno(GetLastError()));
	if (owner_mode(path) == 0600)
		return 0;
	return make_owner_only(path, (a & FILE_ATTRIBUTE_DIRECTORY) != 0);
}

/* --- processes, paths, time --------------------------------------------------------- */

int zila_os_default_dir(char *out, size_t n)
{
	const char *base = getenv("LOCALAPPDATA");
	if (base == NULL || *base == '\0')
		base = getenv("APPDATA");
	if (base == NULL || *base == '\0')
		return ZILA_ENOTFOUND;
	int k = snprintf(out, n, "%s\\zila", base);
	return k < 0 || (size_t)k >= n ? ZILA_ETOOBIG : 0;
}

int zila_os_realpath(const char *path, char *out, size_t n)
{
	char full[MAX_PATH * 4];
	if (_fullpath(full, path, sizeof(full)) == NULL)
		return ZILA_ENOTFOUND;
	if (GetFileAttributesA(full) == INVALID_FILE_ATTRIBUTES)
		return ZILA_ENOTFOUND;
	size_t len = strlen(full);
	while (len > 3 && (full[len - 1] == '\\' || full[len - 1] == '/'))
		full[--len] = '\0';
	if (len >= n)
		return ZILA_ETOOBIG;
	memcpy(out, full, len + 1);
	return 0;
}

int zila_os_stat(const char *path, uint64_t *size, int64_t *mtime_ns)
{
	WIN32_FILE_ATTRIBUTE_DATA fa;
	if (!GetFileAttributesExA(path, GetFileExInfoStandard, &fa))
		return io_code(win_errno(GetLastError()));
	*size = ((uint64_t)fa.nFileSizeHigh << 32) | fa.nFileSizeLow;
	uint64_t t = ((uint64_t)fa.ftLastWriteTime.dwHighDateTime << 32) | fa.ftLastWriteTime.dwLowDateTime;
	*mtime_ns = ((int64_t)t - 116444736000000000LL) * 100; /* 100 ns since 1601 */
	return 0;
}

bool zila_os_exists(const char *path)
{
	return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
}

int zila_os_free_bytes(const char *dir, uint64_t *out)
{
	ULARGE_INTEGER avail;
	*out = 0;
	if (!GetDiskFreeSpaceExA(dir, &avail, NULL, NULL))
		return io_code(win_errno(GetLastError()));
	*out = (uint64_t)avail.QuadPart;
	return 0;
}

void zila_os_hostname(char *out, size_t n)
{
	char name[MAX_COMPUTERNAME_LENGTH + 1];
	DWORD len = sizeof(name);
	if (n == 0)
		return;
	if (GetComputerNameA(name, &len) && len > 0)
		snprintf(out, n, "%s", name);
	else
		snprintf(out, n, "laptop");
}

long zila_os_pid(void)
{
	return (long)GetCurrentProcessId();
}

void zila_os_stdio_binary(void)
{
	_setmode(_fileno(stdin), _O_BINARY);
	_setmode(_fileno(stdout), _O_BINARY);
	_setmode(_fileno(stderr), _O_BINARY);
	/* what zila prints is UTF-8 (Hindi names); the console shows it as such */
	SetConsoleOutputCP(CP_UTF8);
	SetConsoleCP(CP_UTF8);
}

bool zila_os_isatty(int fd)
{
	DWORD mode;
	HANDLE h = GetStdHandle(fd == 0 ? STD_INPUT_HANDLE : fd == 1 ? STD_OUTPUT_HANDLE : STD_ERROR_HANDLE);
	/* _isatty() also says yes for NUL; a console answers GetConsoleMode. */
	return h != NULL && h != INVALID_HANDLE_VALUE && GetConsoleMode(h, &mode);
}

uint64_t zila_os_mono_ms(void)
{
	return GetTickCount64();
}

bool zila_os_uptime(uint64_t *ms, char *boot, size_t n)
{
	/* Windows names no boot; without an id the clock check trusts no uptime, as it does on
	 * other systems without one (proto/TRUST.md, "Clock"). */
	(void)ms;
	(void)boot;
	(void)n;
	return false;
}

void zila_os_sleep_ms(unsigned ms)
{
	Sleep(ms);
}

int zila_os_read_hidden(const char *prompt, char *buf, size_t n)
{
	HANDLE in = CreateFileA("CONIN$", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
				OPEN_EXISTING, 0, NULL);
	HANDLE out = CreateFileA("CONOUT$", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
				 OPEN_EXISTING, 0, NULL);
	DWORD mode = 0, k = 0;
	int r = ZILA_EIO;
	if (in == INVALID_HANDLE_VALUE || out == INVALID_HANDLE_VALUE || !GetConsoleMode(in, &mode)) {
		r = ZILA_ENOTFOUND;
		goto out;
	}
	WriteConsoleA(out, prompt, (DWORD)strlen(prompt), &k, NULL);
	SetConsoleMode(in, (mode & ~(DWORD)ENABLE_ECHO_INPUT) | ENABLE_LINE_INPUT);
	size_t len = 0;
	while (len + 1 < n) {
		char c;
		if (!ReadConsoleA(in, &c, 1, &k, NULL) || k == 0)
			break;
		if (c == '\n') {
			r = 0;
			break;
		}
		buf[len++] = c;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (len + 1 >= n)
		r = 0;
	SetConsoleMode(in, mode);
	WriteConsoleA(out, "\r\n", 2, &k, NULL);
out:
	if (in != INVALID_HANDLE_VALUE)
		CloseHandle(in);
	if (out != INVALID_HANDLE_VALUE)
		CloseHandle(out);
	return r;
}

/* --- signals ------------------------------------------------------------------------- */

/* libuv's numbers on Windows: Ctrl+C is SIGINT, Ctrl+Break SIGBREAK, the console closing (or
 * logging off) SIGHUP. */
#ifndef SIGBREAK
#define SIGBREAK 21
#endif
#ifndef SIGHUP
#define SIGHUP 1
#endif

const int *zila_os_stop_signals(size_t *n)
{
	static const int sigs[] = { SIGINT, SIGBREAK, SIGHUP };
	*n = 3;
	return sigs;
}

int zila_os_reload_signal(void)
{
	return 0;
}

const char *zila_os_signal_name(int sig)
{
	return sig == SIGINT ? "Ctrl+C" : sig == SIGBREAK ? "Ctrl+Break" : sig == SIGHUP ? "the console closing" : "a signal";
}

void zila_os_ignore_sigpipe(void)
{
}

unsigned long zila_os_raise_fd_limit(void)
{
	return 0; /* sockets are handles: no per-process limit of this kind */
}

/* --- the daemon's instance lock -------------------------------------------------------- */

/* A byte far past the pid: Windows' locks are mandatory, so the pid itself stays readable. */
#define LOCK_AT 0x40000000u

struct zila_os_lock {
	HANDLE h;
};

static bool lock_byte(HANDLE h, DWORD flags)
{
	OVERLAPPED ov;
	memset(&ov, 0, sizeof(ov));
	ov.Offset = LOCK_AT;
	return LockFileEx(h, flags | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov) != 0;
}

int zila_os_lock_take(struct zila_os_lock **out, const char *path, char *holder, size_t n, struct zila_error *err)
{
	*out = NULL;
	if (holder != NULL && n > 0)
		holder[0] = '\0';
	bool fresh = !zila_os_exists(path);
	HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_ALWAYS,
			       FILE_ATTRIBUTE_NORMAL, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return io_fail(err, win_errno(GetLastError()), "open", path);
	if (fresh)
		(void)make_owner_only(path, false);
	if (!lock_byte(h, LOCKFILE_EXCLUSIVE_LOCK)) {
		char pid[32];
		DWORD k = 0;
		if (!ReadFile(h, pid, sizeof(pid) - 1, &k, NULL))
			k = 0;
		pid[k] = '\0';
		pid[strcspn(pid, "\r\n")] = '\0';
		if (holder != NULL && n > 0)
			snprintf(holder, n, "%s", pid);
		CloseHandle(h);
		return ZILA_EBUSY;
	}
	char pid[32];
	DWORD k;
	snprintf(pid, sizeof(pid), "%lu\n", (unsigned long)GetCurrentProcessId());
	if (SetFilePointer(h, 0, NULL, FILE_BEGIN) == 0)
		(void)(SetEndOfFile(h) && WriteFile(h, pid, (DWORD)strlen(pid), &k, NULL));
	struct zila_os_lock *l = malloc(sizeof(*l));
	if (l == NULL) {
		CloseHandle(h);
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	}
	l->h = h;
	*out = l;
	return 0;
}

void zila_os_lock_release(struct zila_os_lock *l)
{
	if (l == NULL)
		return;
	CloseHandle(l->h); /* releases the lock */
	free(l);
}

bool zila_os_lock_held(const char *path)
{
	HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
			       OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return false;
	bool held = !lock_byte(h, 0);
	if (!held) {
		OVERLAPPED ov;
		memset(&ov, 0, sizeof(ov));
		ov.Offset = LOCK_AT;
		UnlockFileEx(h, 0, 1, 0, &ov);
	}
	CloseHandle(h);
	return held;
}

/* --- the control channel: a named pipe ------------------------------------------------------ */

int zila_os_ctl_name(const char *dir, char *out, size_t n)
{
	char full[MAX_PATH * 4];
	unsigned char h[16];
	if (_fullpath(full, dir, sizeof(full)) == NULL)
		return ZILA_ETOOBIG;
	/* One name for one directory however it is written: C:/x/, c:\X and C:\x meet. */
	size_t len = strlen(full);
	for (size_t i = 0; i < len; i++) {
		if (full[i] == '/')
			full[i] = '\\';
		if (full[i] >= 'A' && full[i] <= 'Z')
			full[i] = (char)(full[i] - 'A' + 'a');
	}
	while (len > 3 && full[len - 1] == '\\')
		full[--len] = '\0';
	crypto_generichash(h, sizeof(h), (const unsigned char *)full, len, NULL, 0);
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	int k = snprintf(out, n, "\\\\.\\pipe\\zila-%s", hex);
	return k < 0 || (size_t)k >= n ? ZILA_ETOOBIG : 0;
}

/* The installer's local group "zila": its members may use the service's daemon (status,
 * peers, sync, the web interface), as the group zila's do on Debian. Looked up once, when the
 * daemon binds its pipe; a machine without it lets only the owner and Administrators in. */
static BYTE ctl_group[SECURITY_MAX_SID_SIZE];
static bool ctl_group_found;

/* Whether this process runs as the service (LocalSystem). */
static bool self_is_system(void)
{
	void *buf;
	PSID me = self_sid(&buf);
	bool sys = me != NULL && IsWellKnownSid(me, WinLocalSystemSid);
	free(buf);
	return sys;
}

bool zila_os_ctl_binding(const char *dir, const char *name)
{
	(void)dir; /* who may connect is checked per client (zila_os_ctl_peer_ok) */
	(void)name; /* a pipe goes with the process that made it: nothing is left over */
	WCHAR dom[256];
	DWORD n = sizeof(ctl_group), dn = sizeof(dom) / sizeof(dom[0]);
	SID_NAME_USE use;
	ctl_group_found = LookupAccountNameW(NULL, L"zila", (PSID)ctl_group, &n, dom, &dn, &use) &&
			  (use == SidTypeAlias || use == SidTypeGroup);
	return false;
}

/* The service's pipe: libuv makes it with the default DACL, which lets other users only read,
 * so a clerk could not even ask; every signed-in user may now connect, and each client is
 * then checked (zila_os_ctl_peer_ok) and refused in words. A user's own daemon keeps the
 * default (that user, SYSTEM and Administrators). */
int zila_os_ctl_bound(const char *name, intptr_t fd)
{
	(void)name;
	if ((HANDLE)fd == INVALID_HANDLE_VALUE || !self_is_system())
		return 0;
	BYTE users[SECURITY_MAX_SID_SIZE];
	DWORD ul = sizeof(users);
	PACL old = NULL, acl = NULL;
	PSECURITY_DESCRIPTOR sd = NULL;
	EXPLICIT_ACCESS_A ea;
	int r = ZILA_EIO;
	if (!CreateWellKnownSid(WinAuthenticatedUserSid, NULL, users, &ul) ||
	    GetSecurityInfo((HANDLE)fd, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &old, NULL, &sd) !=
		    ERROR_SUCCESS)
		goto out;
	memset(&ea, 0, sizeof(ea));
	ea.grfAccessPermissions = GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE;
	ea.grfAccessMode = SET_ACCESS;
	ea.grfInheritance = NO_INHERITANCE;
	ea.Trustee.TrusteeForm = TRUSTEE_IS_SID;
	ea.Trustee.TrusteeType = TRUSTEE_IS_WELL_KNOWN_GROUP;
	ea.Trustee.ptstrName = (LPSTR)users;
	if (SetEntriesInAclA(1, &ea, old, &acl) == ERROR_SUCCESS &&
	    SetSecurityInfo((HANDLE)fd, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, acl, NULL) ==
		    ERROR_SUCCESS)
		r = 0;
out:
	if (acl != NULL)
		LocalFree(acl);
	if (sd != NULL)
		LocalFree(sd);
	return r;
}

void zila_os_ctl_unbind(const char *name)
{
	(void)name;
}

enum { PEER_NONE, PEER_GROUP, PEER_OWNER };

/* Who the client on the pipe fd is: the daemon's own user, or (to the service, which runs as
 * LocalSystem) an Administrator with full rights: the owner; a member of the local group zila
 * (the service only): the group; anyone else: none. */
static int ctl_peer(intptr_t fd)
{
	ULONG pid = 0;
	void *mine = NULL, *theirs = NULL;
	PSID me = self_sid(&mine), them = NULL;
	HANDLE proc = NULL, tok = NULL, imp = NULL;
	DWORD len = 0;
	int who = PEER_NONE;
	if (me == NULL || !GetNamedPipeClientProcessId((HANDLE)fd, &pid))
		goto out;
	if (pid == GetCurrentProcessId()) {
		who = PEER_OWNER;
		goto out;
	}
	/* TOKEN_DUPLICATE too: CheckTokenMembership takes an impersonation token, a duplicate. */
	if ((proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)) == NULL ||
	    !OpenProcessToken(proc, TOKEN_QUERY | TOKEN_DUPLICATE, &tok))
		goto out;
	GetTokenInformation(tok, TokenUser, NULL, 0, &len);
	if (len == 0 || (theirs = malloc(len)) == NULL || !GetTokenInformation(tok, TokenUser, theirs, len, &len))
		goto out;
	them = ((TOKEN_USER *)theirs)->User.Sid;
	if (EqualSid(me, them)) {
		who = PEER_OWNER;
		goto out;
	}
	if (!IsWellKnownSid(me, WinLocalSystemSid) || !DuplicateToken(tok, SecurityIdentification, &imp))
		goto out;
	BYTE admins[SECURITY_MAX_SID_SIZE];
	DWORD as = sizeof(admins);
	BOOL member = FALSE;
	/* A filtered (not elevated) Administrator's token holds Administrators for deny only. */
	if (CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins, &as) &&
	    CheckTokenMembership(imp, admins, &member) && member)
		who = PEER_OWNER;
	else if (ctl_group_found && CheckTokenMembership(imp, (PSID)ctl_group, &member) && member)
		who = PEER_GROUP;
out:
	if (imp != NULL)
		CloseHandle(imp);
	if (tok != NULL)
		CloseHandle(tok);
	if (proc != NULL)
		CloseHandle(proc);
	free(theirs);
	free(mine);
	return who;
}

bool zila_os_ctl_peer_ok(intptr_t fd)
{
	return ctl_peer(fd) != PEER_NONE;
}

bool zila_os_ctl_peer_owner(intptr_t fd)
{
	return ctl_peer(fd) == PEER_OWNER;
}

/* The web interface is the office's way in on Windows (the Start menu's entry): the group's
 * members open it, as the owner does. */
bool zila_os_ctl_peer_web(intptr_t fd)
{
	return ctl_peer(fd) != PEER_NONE;
}

const char *zila_os_ctl_refusal(void)
{
	if (!self_is_system())
		return "this zila daemon runs as another user; make a replica of your own with 'zila init'";
	if (!ctl_group_found)
		return "only administrators may use the zila service on this computer: it has no local group zila "
		       "(the installer makes it). An administrator makes it and adds you, in a command prompt run as "
		       "administrator: 'net localgroup zila /add', then 'net localgroup zila YOUR-NAME /add'; then "
		       "sign out and in again";
	return "you are not in the local group zila, whose members may use the zila service on this computer. "
	       "Ask an administrator to add you ('net localgroup zila YOUR-NAME /add' in a command prompt run as "
	       "administrator), then sign out and in again";
}

/* --- connections: a named pipe or a Winsock socket -------------------------------------- */

struct zila_os_conn {
	HANDLE pipe; /* INVALID_HANDLE_VALUE for a socket */
	SOCKET sock;
	HANDLE ev;   /* the pipe's overlapped I/O event */
};

static int conn_new(struct zila_os_conn **out, HANDLE pipe, SOCKET sock)
{
	struct zila_os_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ZILA_ENOMEM;
	c->pipe = pipe;
	c->sock = sock;
	if (pipe != INVALID_HANDLE_VALUE && (c->ev = CreateEventA(NULL, TRUE, FALSE, NULL)) == NULL) {
		free(c);
		return ZILA_ENOMEM;
	}
	*out = c;
	return 0;
}

static DWORD wait_ms(uint64_t deadline)
{
	if (deadline == UINT64_MAX)
		return INFINITE;
	uint64_t now = GetTickCount64();
	return now >= deadline ? 0 : deadline - now > 0x7fffffff ? 0x7fffffff : (DWORD)(deadline - now);
}

int zila_os_ctl_dial(struct zila_os_conn **out, const char *dir)
{
	char name[256];
	*out = NULL;
	if (zila_os_ctl_name(dir, name, sizeof(name)) != 0)
		return ZILA_ETOOBIG;
	for (int tries = 0;; tries++) {
		HANDLE h = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED,
				       NULL);
		if (h != INVALID_HANDLE_VALUE) {
			int r = conn_new(out, h, INVALID_SOCKET);
			if (r != 0)
				CloseHandle(h);
			return r;
		}
		DWORD w = GetLastError();
		if (w == ERROR_ACCESS_DENIED)
			return ZILA_EAUTH;
		/* Every instance busy: the daemon makes another as it accepts. */
		if (w == ERROR_PIPE_BUSY && tries < 10 && WaitNamedPipeA(name, 1000))
			continue;
		return ZILA_ENOTFOUND;
	}
}

static void winsock_start(void)
{
	static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
	BOOL pending;
	if (InitOnceBeginInitialize(&once, 0, &pending, NULL) && pending) {
		WSADATA wsa;
		(void)WSAStartup(MAKEWORD(2, 2), &wsa);
		InitOnceComplete(&once, 0, NULL);
	}
}

static int wait_sock(SOCKET s, short ev, uint64_t deadline)
{
	for (;;) {
		WSAPOLLFD p = { .fd = s, .events = ev };
		DWORD ms = wait_ms(deadline);
		if (ms == 0 && deadline != UINT64_MAX && GetTickCount64() >= deadline)
			return ZILA_ETIMEDOUT;
		int k = WSAPoll(&p, 1, ms == INFINITE ? -1 : (int)ms);
		if (k > 0)
			return 0;
		if (k < 0)
			return ZILA_EIO;
	}
}

static const char *wsa_text(int e, char *buf, size_t n)
{
	if (FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)e, 0, buf, (DWORD)n,
			   NULL) == 0)
		snprintf(buf, n, "error %d", e);
	buf[strcspn(buf, "\r\n.")] = '\0';
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

int zila_os_tcp_dial(struct zila_os_conn **out, const char *host, uint16_t port, uint64_t deadline,
		     struct zila_error *err)
{
	char ps[8], why[160];
	struct addrinfo hints, *res = NULL;
	SOCKET s = INVALID_SOCKET;
	*out = NULL;
	winsock_start();
	snprintf(ps, sizeof(ps), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	int g = getaddrinfo(host, ps, &hints, &res);
	if (g != 0)
		return zila_error_set(err, ZILA_EIO, "cannot resolve '%s': %s", host, wsa_text(g, why, sizeof(why)));
	int last = WSAECONNREFUSED;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (s == INVALID_SOCKET)
			continue;
		u_long nb = 1;
		ioctlsocket(s, FIONBIO, &nb);
		if (connect(s, ai->ai_addr, (int)ai->ai_addrlen) == 0)
			break;
		if (WSAGetLastError() == WSAEWOULDBLOCK && wait_sock(s, POLLWRNORM, deadline) == 0) {
			int e = 0, el = sizeof(e);
			if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&e, &el) == 0 && e == 0)
				break;
			last = e ? e : WSAETIMEDOUT;
		} else {
			last = WSAGetLastError() == WSAEWOULDBLOCK ? WSAETIMEDOUT : WSAGetLastError();
		}
		closesocket(s);
		s = INVALID_SOCKET;
	}
	freeaddrinfo(res);
	if (s == INVALID_SOCKET)
		return zila_error_set(err, ZILA_EIO, "%s", wsa_text(last, why, sizeof(why)));
	int r = conn_new(out, INVALID_HANDLE_VALUE, s);
	if (r != 0) {
		closesocket(s);
		return zila_error_set(err, r, "out of memory");
	}
	return 0;
}

/* One overlapped read or write of the pipe, waited for until deadline. */
static int pipe_io(struct zila_os_conn *c, bool wr, void *p, DWORD len, DWORD *done, uint64_t deadline)
{
	OVERLAPPED ov;
	memset(&ov, 0, sizeof(ov));
	ov.hEvent = c->ev;
	ResetEvent(c->ev);
	*done = 0;
	BOOL ok = wr ? WriteFile(c->pipe, p, len, NULL, &ov) : ReadFile(c->pipe, p, len, NULL, &ov);
	if (!ok && GetLastError() != ERROR_IO_PENDING)
		return GetLastError() == ERROR_BROKEN_PIPE ? 0 : ZILA_EIO;
	if (WaitForSingleObject(c->ev, wait_ms(deadline)) != WAIT_OBJECT_0) {
		CancelIo(c->pipe);
		GetOverlappedResult(c->pipe, &ov, done, TRUE);
		return ZILA_ETIMEDOUT;
	}
	if (!GetOverlappedResult(c->pipe, &ov, done, FALSE))
		return GetLastError() == ERROR_BROKEN_PIPE ? 0 : ZILA_EIO;
	return 0;
}

int zila_os_conn_send(struct zila_os_conn *c, const void *p, size_t len, uint64_t deadline)
{
	const char *b = p;
	while (len > 0) {
		int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
		if (c->pipe != INVALID_HANDLE_VALUE) {
			DWORD done;
			int r = pipe_io(c, true, (void *)b, (DWORD)chunk, &done, deadline);
			if (r != 0)
				return r;
			if (done == 0)
				return ZILA_EIO;
			b += done;
			len -= done;
			continue;
		}
		int k = send(c->sock, b, chunk, 0);
		if (k > 0) {
			b += k;
			len -= (size_t)k;
			continue;
		}
		if (k < 0 && WSAGetLastError() == WSAEWOULDBLOCK) {
			int r = wait_sock(c->sock, POLLWRNORM, deadline);
			if (r != 0)
				return r;
			continue;
		}
		return ZILA_EIO;
	}
	return 0;
}

int zila_os_conn_recv(struct zila_os_conn *c, void *p, size_t cap, size_t *got, uint64_t deadline)
{
	int len = cap > (1u << 30) ? (1 << 30) : (int)cap;
	*got = 0;
	if (c->pipe != INVALID_HANDLE_VALUE) {
		DWORD done;
		int r = pipe_io(c, false, p, (DWORD)len, &done, deadline);
		*got = done;
		return r;
	}
	for (;;) {
		int r = wait_sock(c->sock, POLLRDNORM, deadline);
		if (r != 0)
			return r;
		int k = recv(c->sock, p, len, 0);
		if (k < 0 && WSAGetLastError() == WSAEWOULDBLOCK)
			continue;
		if (k < 0)
			return WSAGetLastError() == WSAECONNRESET ? 0 : ZILA_EIO;
		*got = (size_t)k;
		return 0;
	}
}

void zila_os_conn_close(struct zila_os_conn *c)
{
	if (c == NULL)
		return;
	if (c->pipe != INVALID_HANDLE_VALUE)
		CloseHandle(c->pipe);
	if (c->sock != INVALID_SOCKET)
		closesocket(c->sock);
	if (c->ev != NULL)
		CloseHandle(c->ev);
	free(c);
}

size_t zila_os_sock_unsent(intptr_t fd)
{
	(void)fd; /* Winsock does not say what it holds unsent: the sender paces by completions */
	return 0;
}

/* --- the Service Control Manager ------------------------------------------------------ */

static int scm_fail(struct zila_error *err, const char *what)
{
	DWORD w = GetLastError();
	char why[200];
	if (w == ERROR_ACCESS_DENIED)
		return zila_error_set(err, ZILA_EAUTH, "cannot %s: run it as an administrator", what);
	return zila_error_set(err, w == ERROR_SERVICE_EXISTS ? ZILA_EEXIST :
				   w == ERROR_SERVICE_DOES_NOT_EXIST ? ZILA_ENOTFOUND : ZILA_EIO,
			      "cannot %s: %s", what, wsa_text((int)w, why, sizeof(why)));
}

int zila_os_service_install(const char *name, const char *display, const char *cmdline, struct zila_error *err)
{
	SC_HANDLE scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CREATE_SERVICE), svc = NULL;
	int r = 0;
	if (scm == NULL)
		return scm_fail(err, "reach the service manager");
	svc = CreateServiceA(scm, name, display, SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START,
			     SERVICE_ERROR_NORMAL, cmdline, NULL, NULL, NULL, NULL, NULL);
	if (svc == NULL) {
		r = scm_fail(err, "install the service");
		goto out;
	}
	SERVICE_DESCRIPTIONA desc = { (LPSTR) "Keeps this laptop's zila replica in step with the office and HQ." };
	ChangeServiceConfig2A(svc, SERVICE_CONFIG_DESCRIPTION, &desc);
	/* restarted after 5 s, 30 s, 60 s when it fails, as systemd's Restart=on-failure */
	SC_ACTION acts[3] = { { SC_ACTION_RESTART, 5000 }, { SC_ACTION_RESTART, 30000 }, { SC_ACTION_RESTART, 60000 } };
	SERVICE_FAILURE_ACTIONSA fa = { 86400, NULL, NULL, 3, acts };
	ChangeServiceConfig2A(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &fa);
out:
	if (svc != NULL)
		CloseServiceHandle(svc);
	CloseServiceHandle(scm);
	return r;
}

int zila_os_service_uninstall(const char *name, struct zila_error *err)
{
	SC_HANDLE scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT), svc = NULL;
	SERVICE_STATUS st;
	int r = 0;
	if (scm == NULL)
		return scm_fail(err, "reach the service manager");
	if ((svc = OpenServiceA(scm, name, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE)) == NULL) {
		r = scm_fail(err, "find the service");
		goto out;
	}
	if (ControlService(svc, SERVICE_CONTROL_STOP, &st))
		for (int i = 0; i < 300 && QueryServiceStatus(svc, &st) && st.dwCurrentState != SERVICE_STOPPED; i++)
			Sleep(100);
	if (!DeleteService(svc))
		r = scm_fail(err, "remove the service");
out:
	if (svc != NULL)
		CloseServiceHandle(svc);
	CloseServiceHandle(scm);
	return r;
}

static struct {
	const char *name;
	int (*run)(void *);
	void (*stop)(void *);
	void *arg;
	int result;
	SERVICE_STATUS_HANDLE h;
	SERVICE_STATUS st;
} svc;

static void svc_report(DWORD state, DWORD wait_hint)
{
	svc.st.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
	svc.st.dwCurrentState = state;
	svc.st.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
	svc.st.dwWin32ExitCode = state == SERVICE_STOPPED && svc.result != 0 ? ERROR_SERVICE_SPECIFIC_ERROR : NO_ERROR;
	svc.st.dwServiceSpecificExitCode = (DWORD)-svc.result;
	svc.st.dwWaitHint = wait_hint;
	svc.st.dwCheckPoint = state == SERVICE_RUNNING || state == SERVICE_STOPPED ? 0 : svc.st.dwCheckPoint + 1;
	SetServiceStatus(svc.h, &svc.st);
}

static DWORD WINAPI svc_control(DWORD ctl, DWORD type, LPVOID data, LPVOID ctx)
{
	(void)type;
	(void)data;
	(void)ctx;
	if (ctl == SERVICE_CONTROL_STOP || ctl == SERVICE_CONTROL_SHUTDOWN) {
		svc_report(SERVICE_STOP_PENDING, 30000);
		svc.stop(svc.arg);
		return NO_ERROR;
	}
	return ctl == SERVICE_CONTROL_INTERROGATE ? NO_ERROR : ERROR_CALL_NOT_IMPLEMENTED;
}

static void WINAPI svc_main(DWORD argc, LPSTR *argv)
{
	(void)argc;
	(void)argv;
	if ((svc.h = RegisterServiceCtrlHandlerExA(svc.name, svc_control, NULL)) == NULL)
		return;
	svc_report(SERVICE_START_PENDING, 10000);
	svc_report(SERVICE_RUNNING, 0);
	svc.result = svc.run(svc.arg);
	svc_report(SERVICE_STOPPED, 0);
}

int zila_os_service_run(const char *name, int (*run)(void *arg), void (*stop)(void *arg), void *arg,
			struct zila_error *err)
{
	SERVICE_TABLE_ENTRYA table[] = { { (LPSTR)name, svc_main }, { NULL, NULL } };
	svc.name = name;
	svc.run = run;
	svc.stop = stop;
	svc.arg = arg;
	if (!StartServiceCtrlDispatcherA(table)) {
		if (GetLastError() == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
			return zila_error_set(err, ZILA_EINVAL,
					      "'zila service run' is for the service manager; run 'zila daemon' yourself");
		return scm_fail(err, "start the service");
	}
	return svc.result;
}

int zila_os_self_path(char *out, size_t n)
{
	DWORD k = GetModuleFileNameA(NULL, out, (DWORD)n);
	return k == 0 || k >= n ? ZILA_ETOOBIG : 0;
}

const char *zila_os_service_start_how(void)
{
	return "'net start zila' in a command prompt run as administrator (or Services, 'zila sync', Start)";
}

const char *zila_os_service_stop_how(void)
{
	return "'net stop zila' in a command prompt run as administrator";
}

/* A service starts with no standard handles: msvcrt then gives stderr no descriptor (-2),
 * and Wine's freopen refuses such a stream (the log was never written under Wine). So the
 * file becomes descriptor 2 and the standard error handle, and the stream is pointed at it. */
int zila_os_stderr_to(const char *path)
{
	int fd = _open(path, _O_WRONLY | _O_CREAT | _O_APPEND | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
	if (fd < 0)
		return errno == ENOENT ? ZILA_ENOTFOUND : errno == EACCES ? ZILA_EAUTH : ZILA_EIO;
	fflush(stderr);
	if (fd != 2 && _dup2(fd, 2) != 0) {
		_close(fd);
		return ZILA_EIO;
	}
	if (fd != 2)
		_close(fd);
	SetStdHandle(STD_ERROR_HANDLE, (HANDLE)_get_osfhandle(2));
	if (_fileno(stderr) != 2) {
		stderr->_file = 2;
		stderr->_flag = _IOWRT;
	}
	setvbuf(stderr, NULL, _IONBF, 0);
	return 0;
}

/* The link holds a one-time login token. A browser started with it on its command line
 * would show it to every process list and to the auditing of process creation (event 4688,
 * Sysmon), so the browser is given a page of this user's own instead (%TEMP%\zila-open.html,
 * owner-only, replaced at each open) that sends it on; its token is good once, for 5 minutes. */
int zila_os_open_url(const char *url)
{
	char tmp[MAX_PATH + 1], path[MAX_PATH + 32], page[2048];
	for (const char *c = url; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && strchr(":/.#=_-?&%", *c) == NULL)
			return ZILA_EINVAL; /* it goes into the page as it is */
	DWORD k = GetTempPathA(sizeof(tmp), tmp);
	if (k == 0 || k >= sizeof(tmp))
		return ZILA_ENOTFOUND;
	snprintf(path, sizeof(path), "%szila-open.html", tmp);
	int n = snprintf(page, sizeof(page),
			 "<!doctype html><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">"
			 "<meta http-equiv=\"refresh\" content=\"0;url=%s\"><title>zila</title>"
			 "<script>location.replace(\"%s\")</script><p><a href=\"%s\">zila</a>\n",
			 url, url, url);
	struct zila_error err;
	zila_error_clear(&err);
	if (n < 0 || (size_t)n >= sizeof(page) || zila_os_write_atomic(path, page, (size_t)n, 0600, &err) != 0)
		return ZILA_EIO;
	return (INT_PTR)ShellExecuteA(NULL, "open", path, NULL, NULL, SW_SHOWNORMAL) > 32 ? 0 : ZILA_ENOTFOUND;
}

/* A console of its own: started from the Start menu or Explorer, not from a prompt. */
bool zila_os_console_own(void)
{
	DWORD pids[2];
	return GetConsoleProcessList(pids, 2) == 1;
}

/* --- a worker thread ----------------------------------------------------------------- */

struct zila_os_worker {
	HANDLE thread;
	SRWLOCK mu;
	CONDITION_VARIABLE cv;
	void (*fn)(struct zila_os_worker *w, void *arg);
	void *arg;
};

static DWORD WINAPI worker_main(LPVOID p)
{
	struct zila_os_worker *w = p;
	w->fn(w, w->arg);
	return 0;
}

int zila_os_worker_start(struct zila_os_worker **out, void (*fn)(struct zila_os_worker *w, void *arg), void *arg)
{
	struct zila_os_worker *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (w == NULL)
		return ZILA_ENOMEM;
	InitializeSRWLock(&w->mu);
	InitializeConditionVariable(&w->cv);
	w->fn = fn;
	w->arg = arg;
	if ((w->thread = CreateThread(NULL, 0, worker_main, w, 0, NULL)) == NULL) {
		free(w);
		return ZILA_EINTERNAL;
	}
	*out = w;
	return 0;
}

void zila_os_worker_lock(struct zila_os_worker *w)
{
	AcquireSRWLockExclusive(&w->mu);
}

void zila_os_worker_unlock(struct zila_os_worker *w)
{
	ReleaseSRWLockExclusive(&w->mu);
}

void zila_os_worker_wait(struct zila_os_worker *w)
{
	SleepConditionVariableSRW(&w->cv, &w->mu, INFINITE, 0);
}

void zila_os_worker_signal(struct zila_os_worker *w)
{
	WakeConditionVariable(&w->cv);
}

void zila_os_worker_join(struct zila_os_worker *w)
{
	WaitForSingleObject(w->thread, INFINITE);
	CloseHandle(w->thread);
	free(w);
}

/* --- what msvcrt lacks (os_win.h) ----------------------------------------------------------- */

char *strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = malloc(len + 1);
	if (p != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

ssize_t getline(char **line, size_t *cap, FILE *f)
{
	size_t len = 0;
	int c;
	if (*line == NULL || *cap == 0) {
		*cap = 128;
		if ((*line = realloc(*line, *cap)) == NULL)
			return -1;
	}
	while ((c = fgetc(f)) != EOF) {
		if (len + 2 > *cap) {
			size_t ncap = *cap * 2;
			char *p = realloc(*line, ncap);
			if (p == NULL)
				return -1;
			*line = p;
			*cap = ncap;
		}
		(*line)[len++] = (char)c;
		if (c == '\n')
			break;
	}
	if (len == 0)
		return -1;
	(*line)[len] = '\0';
	return (ssize_t)len;
}

int zila_os_system_dir(char *out, size_t n)
{
	const char *base = getenv("ProgramData");
	if (base == NULL || *base == '\0')
		return ZILA_ENOTFOUND;
	int k = snprintf(out, n, "%s\\zila", base);
	return k < 0 || (size_t)k >= n ? ZILA_ETOOBIG : 0;
}

/* The directory's ACL decides who may open what in it; every replica counts as ours. */
void zila_os_dir_owner(const char *dir, struct zila_os_owner *o)
{
	struct _stat64 st;
	memset(o, 0, sizeof(*o));
	o->exists = _stat64(dir, &st) == 0 && (st.st_mode & _S_IFDIR) != 0;
	o->mine = true;
	o->enter = o->exists;
}

/* By opening it: _access reads only the read-only attribute, never the ACL (a clerk of the
 * group zila may not read the service's database). */
int zila_os_access(const char *path, bool write)
{
	HANDLE h = CreateFileA(path, write ? GENERIC_WRITE : GENERIC_READ,
			       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
			       FILE_FLAG_BACKUP_SEMANTICS, NULL);
	if (h != INVALID_HANDLE_VALUE) {
		CloseHandle(h);
		return 0;
	}
	DWORD e = GetLastError();
	if (e == ERROR_ACCESS_DENIED)
		return ZILA_EAUTH;
	return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? ZILA_ENOTFOUND : ZILA_EIO;
}
