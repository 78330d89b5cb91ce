/* include/zila/os.h for POSIX: atomic replacement (temp file, fsync, rename, directory
 * fsync), new private files, whole-file reads and read-only mappings. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zila/os.h"

struct zila_os_atomic {
	FILE *f;
	char *path, *tmp;
	int werr; /* errno of the first failed write; 0 while all went well */
	bool remakeable; /* commit does not sync the directory */
};

static int io_code(int e)
{
	return e == ENOSPC || e == EDQUOT ? ZILA_EFULL : e == ENOENT ? ZILA_ENOTFOUND : ZILA_EIO;
}

/* "cannot read 'x': no such file or directory": strerror's text, lowercase as our messages are. */
static int io_fail(struct zila_error *err, int e, const char *what, const char *path)
{
	char why[128];
	snprintf(why, sizeof(why), "%s", strerror(e));
	if (why[0] >= 'A' && why[0] <= 'Z' && !(why[1] >= 'A' && why[1] <= 'Z'))
		why[0] = (char)(why[0] + 'a' - 'A');
	return zila_error_set(err, io_code(e), "cannot %s '%s': %s", what, path, why);
}

/* The directory entry of a renamed or created file is durable only once its directory is
 * synced. Best effort on file systems that refuse to sync a directory (EINVAL). */
static int sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return ENOMEM;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = 0;
	if (fd < 0)
		e = errno;
	else if (fsync(fd) != 0 && errno != EINVAL)
		e = errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return e;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
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
	fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	if (fd < 0 && errno == EEXIST) {
		(void)unlink(a->tmp); /* left by an interrupted run */
		fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	}
	if (fd < 0) {
		r = io_fail(err, errno, "write", path);
		goto out;
	}
	if ((a->f = fdopen(fd, "wb")) == NULL) {
		r = io_fail(err, errno, "write", path);
		close(fd);
		(void)unlink(a->tmp);
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
	if (e == 0 && (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0))
		e = errno;
	if (fclose(a->f) != 0 && e == 0)
		e = errno;
	a->f = NULL;
	if (e == 0 && rename(a->tmp, a->path) != 0)
		e = errno;
	int r = 0;
	if (e != 0) {
		(void)unlink(a->tmp);
		r = io_fail(err, e, "write", a->path);
	} else if (!a->remakeable && (e = sync_dir_of(a->path)) != 0) {
		r = io_fail(err, e, "sync the directory of", a->path);
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
	(void)unlink(a->tmp);
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
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return zila_error_set(err, ZILA_EEXIST, "'%s' already exists", path);
		return io_fail(err, errno, "create", path);
	}
	int e = write_all(fd, p, len);
	if (e == 0 && fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && e == 0)
		e = errno;
	if (e == 0)
		e = sync_dir_of(path);
	if (e != 0) {
		(void)unlink(path);
		return io_fail(err, e, "write", path);
	}
	return 0;
}

int zila_os_read_file(const char *path, size_t max, struct zila_buf *out, unsigned *mode_out, struct zila_error *err)
{
	uint8_t tmp[4096];
	int r = 0;
	if (mode_out)
		*mode_out = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return io_fail(err, errno, "read", path);
	struct stat sb;
	if (mode_out && fstat(fd, &sb) == 0)
		*mode_out = (unsigned)(sb.st_mode & 07777);
	size_t total = 0;
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
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
	sodium_memzero(tmp, sizeof(tmp)); /* key files pass through here */
	close(fd);
	return r;
}

int zila_os_map(struct zila_os_map *m, const char *path, struct zila_error *err)
{
	memset(m, 0, sizeof(*m));
	int r = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		r = io_fail(err, errno, "read", path);
		goto out;
	}
	if (sb.st_size == 0)
		goto out;
	void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		r = io_fail(err, errno, "read", path);
		goto out;
	}
	m->p = p;
	m->len = (size_t)sb.st_size;
	m->priv_ = p;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

void zila_os_unmap(struct zila_os_map *m)
{
	if (m->priv_ != NULL)
		munmap(m->priv_, m->len);
	memset(m, 0, sizeof(*m));
}

int zila_os_mkdir(const char *path, unsigned mode, struct zila_error *err)
{
	if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST)
		return io_fail(err, errno, "create", path);
	return 0;
}

int zila_os_make_private(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return io_code(errno);
	if ((sb.st_mode & 077) != 0 && chmod(path, sb.st_mode & 07700) != 0)
		return io_code(errno);
	return 0;
}
