/* include/zila/os.h for POSIX: atomic replacement (temp file, fsync, rename, directory
 * fsync), new private files, whole-file reads and read-only mappings; flock, the AF_UNIX
 * control socket, BSD sockets, termios, signals and pthreads. */
#include <errno.h>
#include <stdbool.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
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

void zila_os_private_how(const char *path, char *out, size_t n)
{
	snprintf(out, n, "chmod 600 %s", path);
}

int zila_os_mode(const char *path, unsigned *mode)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return io_code(errno);
	*mode = (unsigned)(sb.st_mode & 0777);
	return 0;
}

int zila_os_mkdtemp(char *tmpl)
{
	return mkdtemp(tmpl) != NULL ? 0 : io_code(errno);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int zila_os_rmtree(const char *path)
{
	if (access(path, F_OK) != 0)
		return 0;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : io_code(errno);
}

int zila_os_append(const char *path, const void *p, size_t len, struct zila_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return io_fail(err, errno, "write", path);
	struct stat sb;
	off_t was = fstat(fd, &sb) == 0 ? sb.st_size : -1;
	int e = write_all(fd, p, len);
	if (e != 0 && was >= 0 && ftruncate(fd, was) != 0)
		e = e ? e : errno;
	if (close(fd) != 0 && e == 0)
		e = errno;
	return e != 0 ? io_fail(err, e, "write", path) : 0;
}

int zila_os_truncate(const char *path, uint64_t len)
{
	return truncate(path, (off_t)len) == 0 ? 0 : io_code(errno);
}

int zila_os_finish(const char *from, const char *to, bool sync, struct zila_error *err)
{
	int e = 0;
	if (sync) {
		int fd = open(from, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return io_fail(err, errno, "read", from);
		e = fsync(fd) != 0 ? errno : 0;
		if (close(fd) != 0 && e == 0)
			e = errno;
	}
	if (e == 0 && rename(from, to) != 0)
		e = errno;
	if (e == 0 && sync)
		e = sync_dir_of(to);
	return e != 0 ? io_fail(err, e, "write", to) : 0;
}

int zila_os_remove(const char *path)
{
	return unlink(path) == 0 || errno == ENOENT ? 0 : io_code(errno);
}

int zila_os_list(const char *dir, int (*fn)(void *ctx, const char *name), void *ctx)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int r = 0;
	if (d == NULL)
		return io_code(errno);
	while (r == 0 && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			r = fn(ctx, e->d_name);
	closedir(d);
	return r;
}

int zila_os_copydir(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *e;
	int r = 0;
	if (d == NULL)
		return io_code(errno);
	if (mkdir(dst, 0700) != 0 && errno != EEXIST) {
		closedir(d);
		return io_code(errno);
	}
	while (r == 0 && (e = readdir(d)) != NULL) {
		char from[4096], to[4096];
		struct stat sb;
		snprintf(from, sizeof(from), "%s/%s", src, e->d_name);
		snprintf(to, sizeof(to), "%s/%s", dst, e->d_name);
		if (stat(from, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		struct zila_buf b;
		zila_buf_init(&b, SIZE_MAX / 2);
		if ((r = zila_os_read_file(from, SIZE_MAX / 2, &b, NULL, NULL)) == 0)
			r = zila_os_write_new(to, b.p, b.len, sb.st_mode & 0777, NULL);
		zila_buf_release(&b);
	}
	closedir(d);
	return r;
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

/* --- processes, paths, time --------------------------------------------------------- */

int zila_os_default_dir(char *out, size_t n)
{
	const char *home = getenv("HOME");
	if (home == NULL || *home == '\0')
		return ZILA_ENOTFOUND;
	int k = snprintf(out, n, "%s/.zila", home);
	return k < 0 || (size_t)k >= n ? ZILA_ETOOBIG : 0;
}

int zila_os_realpath(const char *path, char *out, size_t n)
{
	char *p = realpath(path, NULL);
	if (p == NULL)
		return io_code(errno);
	int r = strlen(p) < n ? 0 : ZILA_ETOOBIG;
	if (r == 0)
		strcpy(out, p);
	free(p);
	return r;
}

int zila_os_stat(const char *path, uint64_t *size, int64_t *mtime_ns)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return io_code(errno);
	*size = (uint64_t)sb.st_size;
	*mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	return 0;
}

bool zila_os_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int zila_os_free_bytes(const char *dir, uint64_t *out)
{
	struct statvfs sv;
	*out = 0;
	if (statvfs(dir, &sv) != 0)
		return io_code(errno);
	*out = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	return 0;
}

void zila_os_hostname(char *out, size_t n)
{
	if (n == 0)
		return;
	out[0] = '\0';
	if (gethostname(out, n - 1) != 0 || out[0] == '\0')
		snprintf(out, n, "laptop");
	out[n - 1] = '\0';
}

long zila_os_pid(void)
{
	return (long)getpid();
}

void zila_os_stdio_binary(void)
{
}

bool zila_os_isatty(int fd)
{
	return isatty(fd) == 1;
}

uint64_t zila_os_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool zila_os_uptime(uint64_t *ms, char *boot, size_t n)
{
#if defined(__linux__)
	struct timespec ts;
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	bool ok = f != NULL && fgets(boot, (int)n, f) != NULL;
	if (f != NULL)
		fclose(f);
	if (!ok || clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
		return false;
	boot[strcspn(boot, "\n")] = '\0';
	*ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return boot[0] != '\0';
#else
	(void)ms;
	(void)boot;
	(void)n;
	return false;
#endif
}

void zila_os_sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int zila_os_read_hidden(const char *prompt, char *buf, size_t n)
{
	FILE *tty = fopen("/dev/tty", "r+");
	struct termios old, noecho;
	int r = ZILA_EIO;
	if (tty == NULL)
		return ZILA_ENOTFOUND;
	fprintf(tty, "%s", prompt);
	fflush(tty);
	bool restore = tcgetattr(fileno(tty), &old) == 0;
	if (restore) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
	}
	if (fgets(buf, (int)n, tty) != NULL) {
		buf[strcspn(buf, "\r\n")] = '\0';
		r = 0;
	}
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fprintf(tty, "\n");
	fclose(tty);
	return r;
}

/* --- signals ------------------------------------------------------------------------- */

const int *zila_os_stop_signals(size_t *n)
{
	static const int sigs[] = { SIGTERM, SIGINT };
	*n = 2;
	return sigs;
}

int zila_os_reload_signal(void)
{
	return SIGHUP;
}

const char *zila_os_signal_name(int sig)
{
	return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

void zila_os_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

unsigned long zila_os_raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max == RLIM_INFINITY ? 1u << 20 : rl.rlim_max;
		struct rlimit nl = { want, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
			rl.rlim_cur = want;
	}
	return rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long)rl.rlim_cur;
}

/* --- the daemon's instance lock -------------------------------------------------------- */

struct zila_os_lock {
	int fd;
};

int zila_os_lock_take(struct zila_os_lock **out, const char *path, char *holder, size_t n, struct zila_error *err)
{
	char pid[32] = "";
	*out = NULL;
	if (holder != NULL && n > 0)
		holder[0] = '\0';
	struct zila_os_lock *l = malloc(sizeof(*l));
	if (l == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (l->fd < 0) {
		int e = errno;
		free(l);
		return io_fail(err, e, "open", path);
	}
	if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t k = read(l->fd, pid, sizeof(pid) - 1);
		pid[k > 0 ? k : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (holder != NULL && n > 0)
			snprintf(holder, n, "%s", pid);
		close(l->fd);
		free(l);
		return ZILA_EBUSY;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(l->fd, 0) != 0 || pwrite(l->fd, pid, strlen(pid), 0) < 0)
		(void)0; /* the pid is a courtesy for the message of a second daemon */
	*out = l;
	return 0;
}

void zila_os_lock_release(struct zila_os_lock *l)
{
	if (l == NULL)
		return;
	close(l->fd);
	free(l);
}

bool zila_os_lock_held(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) != 0;
	close(fd);
	return held;
}

/* --- connections ---------------------------------------------------------------------- */

int zila_os_ctl_name(const char *dir, char *out, size_t n)
{
	int k = snprintf(out, n, "%s/zila.sock", dir);
	return k < 0 || (size_t)k >= n || (size_t)k >= sizeof(((struct sockaddr_un *)0)->sun_path) ? ZILA_ETOOBIG : 0;
}

static mode_t ctl_umask;
static bool ctl_group;

bool zila_os_ctl_binding(const char *dir, const char *name)
{
	/* A socket file a killed daemon left behind; the instance lock says none runs. */
	bool removed = unlink(name) == 0;
	/* The directory's group may reach the daemon only when the directory lets it in. */
	struct stat st;
	ctl_group = stat(dir, &st) == 0 && (st.st_mode & 0050) == 0050;
	ctl_umask = umask(ctl_group ? 0117 : 0177);
	return removed;
}

int zila_os_ctl_bound(const char *name, intptr_t fd)
{
	(void)fd;
	umask(ctl_umask);
	return chmod(name, ctl_group ? 0660 : 0600) == 0 ? 0 : io_code(errno);
}

void zila_os_ctl_unbind(const char *name)
{
	(void)unlink(name);
}

bool zila_os_ctl_peer_ok(intptr_t fd)
{
	(void)fd;
	return true;
}

/* The socket's mode lets in only the owner, root and, when the replica's directory lets its
 * group in, that group: the office's users (the Debian package's group zila), who work in the
 * web interface. It acts with the device's keys through the daemon, within the device's scope,
 * as on Windows; the group still never reads the keys or the database itself. */
bool zila_os_ctl_peer_web(intptr_t fd)
{
	(void)fd;
	return true;
}

const char *zila_os_ctl_refusal(void)
{
	return "you may not use this daemon"; /* not reached: the socket's mode keeps others out */
}

bool zila_os_ctl_peer_owner(intptr_t fd)
{
#ifdef SO_PEERCRED
	struct ucred cr;
	socklen_t n = sizeof(cr);
	if (getsockopt((int)fd, SOL_SOCKET, SO_PEERCRED, &cr, &n) != 0)
		return false;
	return cr.uid == 0 || cr.uid == geteuid();
#else
	(void)fd;
	return true; /* where peers' credentials are unknown, the socket's mode is the only gate */
#endif
}

int zila_os_system_dir(char *out, size_t n)
{
	int k = snprintf(out, n, "/var/lib/zila");
	return k < 0 || (size_t)k >= n ? ZILA_ETOOBIG : 0;
}

static void user_name(uid_t uid, char *buf, size_t n)
{
	const struct passwd *pw = getpwuid(uid);
	if (pw != NULL)
		snprintf(buf, n, "%s", pw->pw_name);
	else
		snprintf(buf, n, "%u", (unsigned)uid);
}

void zila_os_dir_owner(const char *dir, struct zila_os_owner *o)
{
	struct stat st;
	memset(o, 0, sizeof(*o));
	o->root = geteuid() == 0;
	/* A directory we may not enter still counts: it is there, and the user is told why not. */
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return;
	o->exists = true;
	o->mine = st.st_uid == geteuid();
	o->enter = access(dir, X_OK) == 0;
	user_name(st.st_uid, o->owner, sizeof(o->owner));
	user_name(geteuid(), o->me, sizeof(o->me));
	const struct group *gr = getgrgid(st.st_gid);
	if (gr != NULL)
		snprintf(o->group, sizeof(o->group), "%s", gr->gr_name);
	else
		snprintf(o->group, sizeof(o->group), "%u", (unsigned)st.st_gid);
}

int zila_os_access(const char *path, bool write)
{
	if (access(path, write ? W_OK : R_OK) == 0)
		return 0;
	return errno == EACCES || errno == EPERM ? ZILA_EAUTH : errno == ENOENT ? ZILA_ENOTFOUND : ZILA_EIO;
}

struct zila_os_conn {
	int fd;
};

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = zila_os_mono_ms();
		if (now >= deadline)
			return ZILA_ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = ev };
		uint64_t left = deadline - now;
		int k = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (k > 0)
			return 0;
		if (k < 0 && errno != EINTR)
			return ZILA_EIO;
	}
}

static int conn_new(struct zila_os_conn **out, int fd)
{
	*out = malloc(sizeof(**out));
	if (*out == NULL) {
		close(fd);
		return ZILA_ENOMEM;
	}
	(*out)->fd = fd;
	return 0;
}

int zila_os_ctl_dial(struct zila_os_conn **out, const char *dir)
{
	struct sockaddr_un sa;
	*out = NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (zila_os_ctl_name(dir, sa.sun_path, sizeof(sa.sun_path)) != 0)
		return ZILA_ETOOBIG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ZILA_EIO;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		return e == EACCES ? ZILA_EAUTH : ZILA_ENOTFOUND;
	}
	return conn_new(out, fd);
}

int zila_os_tcp_dial(struct zila_os_conn **out, const char *host, uint16_t port, uint64_t deadline,
		     struct zila_error *err)
{
	char ps[8];
	struct addrinfo hints, *res = NULL;
	int fd = -1;
	*out = NULL;
	snprintf(ps, sizeof(ps), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	int g = getaddrinfo(host, ps, &hints, &res);
	if (g != 0)
		return zila_error_set(err, ZILA_EIO, "cannot resolve '%s': %s", host, gai_strerror(g));
	int last = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
			int e = 0;
			socklen_t el = sizeof(e);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
				break;
			last = e ? e : ETIMEDOUT;
		} else {
			last = errno == EINPROGRESS ? ETIMEDOUT : errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return zila_error_set(err, ZILA_EIO, "%s", strerror(last));
	int r = conn_new(out, fd);
	return r != 0 ? zila_error_set(err, r, "out of memory") : 0;
}

int zila_os_conn_send(struct zila_os_conn *c, const void *p, size_t len, uint64_t deadline)
{
	const uint8_t *b = p;
	while (len > 0) {
		ssize_t k = send(c->fd, b, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			b += k;
			len -= (size_t)k;
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			int r = wait_fd(c->fd, POLLOUT, deadline);
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
	*got = 0;
	for (;;) {
		int r = wait_fd(c->fd, POLLIN, deadline);
		if (r != 0)
			return r;
		ssize_t k = recv(c->fd, p, cap, MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (k < 0)
			return errno == ECONNRESET ? 0 : ZILA_EIO;
		*got = (size_t)k;
		return 0;
	}
}

void zila_os_conn_close(struct zila_os_conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

size_t zila_os_sock_unsent(intptr_t fd)
{
#if defined(TIOCOUTQ)
	int n = 0;
	if (ioctl((int)fd, TIOCOUTQ, &n) == 0 && n > 0)
		return (size_t)n;
#else
	(void)fd;
#endif
	return 0;
}

/* --- the system's service manager ------------------------------------------------------ */

static int no_scm(struct zila_error *err)
{
	return zila_error_set(err, ZILA_EINVAL,
			      "services are Windows' here; on Linux systemd runs the daemon (tools/zila.service)");
}

int zila_os_service_install(const char *name, const char *display, const char *cmdline, struct zila_error *err)
{
	(void)name;
	(void)display;
	(void)cmdline;
	return no_scm(err);
}

int zila_os_service_uninstall(const char *name, struct zila_error *err)
{
	(void)name;
	return no_scm(err);
}

int zila_os_service_run(const char *name, int (*run)(void *arg), void (*stop)(void *arg), void *arg,
			struct zila_error *err)
{
	(void)name;
	(void)run;
	(void)stop;
	(void)arg;
	return no_scm(err);
}

int zila_os_self_path(char *out, size_t n)
{
	ssize_t k = readlink("/proc/self/exe", out, n - 1);
	if (k <= 0)
		return ZILA_ENOTFOUND;
	out[k] = '\0';
	return 0;
}

const char *zila_os_service_start_how(void)
{
	return "'sudo systemctl start zila' (after 'sudo -u zila zila -d /var/lib/zila init' or join, once)";
}

const char *zila_os_service_stop_how(void)
{
	return "'sudo systemctl stop zila'";
}

int zila_os_stderr_to(const char *path)
{
	if (freopen(path, "a", stderr) == NULL)
		return io_code(errno);
	setvbuf(stderr, NULL, _IONBF, 0);
	return 0;
}

int zila_os_open_url(const char *url)
{
	(void)url; /* a daemon's host may have no browser: the caller prints the link */
	return ZILA_ENOTFOUND;
}

bool zila_os_console_own(void)
{
	return false; /* a terminal outlives the command */
}

/* --- a worker thread ----------------------------------------------------------------- */

struct zila_os_worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(struct zila_os_worker *w, void *arg);
	void *arg;
};

static void *worker_main(void *p)
{
	struct zila_os_worker *w = p;
	w->fn(w, w->arg);
	return NULL;
}

int zila_os_worker_start(struct zila_os_worker **out, void (*fn)(struct zila_os_worker *w, void *arg), void *arg)
{
	struct zila_os_worker *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (w == NULL)
		return ZILA_ENOMEM;
	w->fn = fn;
	w->arg = arg;
	if (pthread_mutex_init(&w->mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		goto fail;
	}
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	free(w);
	return ZILA_EINTERNAL;
}

void zila_os_worker_lock(struct zila_os_worker *w)
{
	pthread_mutex_lock(&w->mu);
}

void zila_os_worker_unlock(struct zila_os_worker *w)
{
	pthread_mutex_unlock(&w->mu);
}

void zila_os_worker_wait(struct zila_os_worker *w)
{
	pthread_cond_wait(&w->cv, &w->mu);
}

void zila_os_worker_signal(struct zila_os_worker *w)
{
	pthread_cond_signal(&w->cv);
}

void zila_os_worker_join(struct zila_os_worker *w)
{
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
