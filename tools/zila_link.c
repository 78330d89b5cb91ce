/* zila_link: a field link in user space for the link bench (#24; this kernel has no netem).
 * It relays Ethernet frames between two TAP devices, each made in a network namespace of
 * its own, with a rate, a delay with jitter, random loss and a bounded queue per direction,
 * the same way for the same seed, and counts what each direction carried. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: zila_link --a NETNS:TAP --b NETNS:TAP [--rate BITS] [--delay MS] [--jitter MS]\n"
	"                 [--loss P] [--queue BYTES] [--seed N] [--stats FILE]\n"
	"\n"
	"Makes TAP device TAP in each network namespace (ip netns's NETNS, or '-' for this one)\n"
	"and relays the frames between them until SIGTERM or SIGINT. Each direction on its own:\n"
	"  --rate BITS     bits per second (default 64000); frames are sent one after another\n"
	"  --delay MS      one-way delay added to every frame (default 300)\n"
	"  --jitter MS     the delay varies uniformly by up to +-MS (default 100); frames never\n"
	"                  overtake each other, as on a real modem link\n"
	"  --loss P        each frame is lost with probability P (default 0.02)\n"
	"  --queue BYTES   bytes waiting to be sent at most; a frame beyond it is dropped (default\n"
	"                  32768: four seconds at 64 kbit/s)\n"
	"  --seed N        the same seed and input give the same losses and delays (default 1)\n"
	"  --stats FILE    written on SIGUSR1 and at exit: 'ab BYTES FRAMES LOST DROPPED PAYLOAD'\n"
	"                  and 'ba ...': frame bytes delivered (Ethernet headers included), and\n"
	"                  the TCP payload offered, each byte once (what the sender's programs\n"
	"                  wrote to their sockets: no headers, no retransmission)\n"
	"It prints 'ready' on stdout once both devices exist.\n";

#define FRAME_MAX 2048
#define NQ 4096

struct frame {
	uint64_t at_ns; /* when it arrives at the other end */
	uint16_t len;
	uint8_t p[FRAME_MAX];
};

/* A TCP connection one way: the end of the sequence space seen so far. */
struct flow {
	uint8_t key[12]; /* source and destination address and port */
	uint32_t end;
	bool used;
};

#define NFLOW 64

struct dir {
	int in, out;
	struct frame *q; /* ring of NQ */
	size_t head, n;
	uint64_t link_free_ns, last_at_ns;
	uint64_t bytes, frames, lost, dropped;
	uint64_t payload; /* TCP payload bytes, each counted once */
	struct flow flows[NFLOW];
	size_t nextflow;
};

static struct {
	uint64_t rate, delay_ms, jitter_ms, queue;
	double loss;
	uint64_t seed;
	const char *stats;
} opt = { 64000, 300, 100, 32768, 0.02, 1, NULL };

static volatile sig_atomic_t stop, dump;
static uint64_t rng;

static uint64_t rnd64(void)
{
	uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static double rnd01(void)
{
	return (double)(rnd64() >> 11) / 9007199254740992.0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else
		stop = 1;
}

/* Makes TAP name in namespace ns ('-': this one) and returns its descriptor, or -1. */
static int tap_open(const char *spec)
{
	char ns[256], name[IFNAMSIZ];
	const char *colon = strchr(spec, ':');
	if (colon == NULL || (size_t)(colon - spec) >= sizeof(ns) || strlen(colon + 1) >= IFNAMSIZ || !colon[1]) {
		fprintf(stderr, "zila_link: '%s' is not NETNS:TAP\n", spec);
		return -1;
	}
	memcpy(ns, spec, (size_t)(colon - spec));
	ns[colon - spec] = '\0';
	snprintf(name, sizeof(name), "%s", colon + 1);
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd = -1;
	if (home < 0) {
		perror("zila_link: /proc/self/ns/net");
		return -1;
	}
	if (strcmp(ns, "-") != 0) {
		char path[300];
		snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
		int nfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nfd < 0 || setns(nfd, CLONE_NEWNET) != 0) {
			fprintf(stderr, "zila_link: cannot enter network namespace '%s': %s\n", ns, strerror(errno));
			if (nfd >= 0)
				close(nfd);
			goto out;
		}
		close(nfd);
	}
	/* The device belongs to the namespace it was made in; the descriptor works from anywhere. */
	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0) {
		perror("zila_link: /dev/net/tun");
		goto back;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		fprintf(stderr, "zila_link: cannot make TAP '%s': %s\n", name, strerror(errno));
		close(fd);
		fd = -1;
	}
back:
	if (setns(home, CLONE_NEWNET) != 0) {
		perror("zila_link: back to the first namespace");
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
out:
	close(home);
	return fd;
}

/* Counts the new TCP payload of an IPv4 frame: the bytes past the sequence space the
 * connection's sender had already offered, so a retransmission counts nothing. */
static void count_payload(struct dir *d, const uint8_t *p, size_t len)
{
	if (len < 14 + 20 || p[12] != 0x08 || p[13] != 0x00 || (p[14] >> 4) != 4 || p[23] != 6)
		return;
	size_t ihl = (size_t)(p[14] & 15) * 4, tot = (size_t)p[16] << 8 | p[17];
	if (ihl < 20 || tot > len - 14 || tot < ihl + 20)
		return;
	const uint8_t *t = p + 14 + ihl;
	size_t thl = (size_t)(t[12] >> 4) * 4;
	if (thl < 20 || ihl + thl > tot)
		return;
	uint32_t seq = (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
	uint32_t n = (uint32_t)(tot - ihl - thl);
	bool syn = (t[13] & 2) != 0;
	uint8_t key[12];
	memcpy(key, p + 14 + 12, 8); /* source and destination address */
	memcpy(key + 8, t, 4);       /* ports */
	struct flow *f = NULL;
	for (size_t i = 0; i < NFLOW && f == NULL; i++)
		if (d->flows[i].used && memcmp(d->flows[i].key, key, 12) == 0)
			f = &d->flows[i];
	if (f == NULL || syn) {
		if (f == NULL) {
			f = &d->flows[d->nextflow];
			d->nextflow = (d->nextflow + 1) % NFLOW;
		}
		memcpy(f->key, key, 12);
		f->used = true;
		f->end = seq + (syn ? 1u : 0u);
	}
	uint32_t end = seq + n;
	if ((int32_t)(end - f->end) > 0) {
		d->payload += (uint32_t)(end - f->end) < n ? (uint32_t)(end - f->end) : n;
		f->end = end;
	}
}

/* A frame read from d->in: lost, dropped at a full queue, or queued with its arrival time. */
static void take(struct dir *d, const uint8_t *p, size_t len, uint64_t now)
{
	/* Draw the same values whatever happens, so a seed repeats. */
	double lose = rnd01(), jit = rnd01();
	count_payload(d, p, len);
	if (lose < opt.loss) {
		d->lost++;
		return;
	}
	uint64_t start = d->link_free_ns > now ? d->link_free_ns : now;
	uint64_t backlog = (start - now) * opt.rate / 8 / 1000000000u;
	if (backlog + len > opt.queue || d->n == NQ) {
		d->dropped++;
		return;
	}
	uint64_t send_ns = (uint64_t)len * 8 * 1000000000u / opt.rate;
	d->link_free_ns = start + send_ns;
	double delay = (double)opt.delay_ms + (2 * jit - 1) * (double)opt.jitter_ms;
	uint64_t at = d->link_free_ns + (delay > 0 ? (uint64_t)(delay * 1e6) : 0);
	if (at < d->last_at_ns)
		at = d->last_at_ns;
	d->last_at_ns = at;
	struct frame *f = &d->q[(d->head + d->n) % NQ];
	f->at_ns = at;
	f->len = (uint16_t)len;
	memcpy(f->p, p, len);
	d->n++;
}

/* Writes the frames that have arrived; returns ns until the next one (or a second). */
static uint64_t deliver(struct dir *d, uint64_t now)
{
	while (d->n > 0) {
		struct frame *f = &d->q[d->head];
		if (f->at_ns > now)
			return f->at_ns - now;
		if (write(d->out, f->p, f->len) == (ssize_t)f->len) {
			d->bytes += f->len;
			d->frames++;
		} else {
			d->dropped++;
		}
		d->head = (d->head + 1) % NQ;
		d->n--;
	}
	return 1000000000u;
}

static void write_stats(const struct dir *d)
{
	if (opt.stats == NULL)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", opt.stats);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return;
	for (int i = 0; i < 2; i++)
		fprintf(f, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", i == 0 ? "ab" : "ba",
			d[i].bytes, d[i].frames, d[i].lost, d[i].dropped, d[i].payload);
	fclose(f);
	rename(tmp, opt.stats);
}

static bool num(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	const char *a = NULL, *b = NULL;
	for (int i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		double x = 0;
		bool ok = v != NULL;
		if (strcmp(k, "--help") == 0 || strcmp(k, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(k, "--a") == 0) {
			a = v;
		} else if (strcmp(k, "--b") == 0) {
			b = v;
		} else if (strcmp(k, "--rate") == 0) {
			ok = ok && num(v, 1000, 1e10, &x);
			opt.rate = (uint64_t)x;
		} else if (strcmp(k, "--delay") == 0) {
			ok = ok && num(v, 0, 60000, &x);
			opt.delay_ms = (uint64_t)x;
		} else if (strcmp(k, "--jitter") == 0) {
			ok = ok && num(v, 0, 60000, &x);
			opt.jitter_ms = (uint64_t)x;
		} else if (strcmp(k, "--loss") == 0) {
			ok = ok && num(v, 0, 1, &opt.loss);
		} else if (strcmp(k, "--queue") == 0) {
			ok = ok && num(v, 2048, 1e9, &x);
			opt.queue = (uint64_t)x;
		} else if (strcmp(k, "--seed") == 0) {
			ok = ok && num(v, 0, 1e15, &x);
			opt.seed = (uint64_t)x;
		} else if (strcmp(k, "--stats") == 0) {
			opt.stats = v;
		} else {
			fprintf(stderr, "zila_link: unknown option '%s'\n%s", k, usage);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "zila_link: bad or missing value for '%s'\n%s", k, usage);
			return 2;
		}
		i++;
	}
	if (a == NULL || b == NULL) {
		fprintf(stderr, "zila_link: --a and --b are required\n%s", usage);
		return 2;
	}
	if (opt.jitter_ms > opt.delay_ms) {
		fprintf(stderr, "zila_link: jitter %" PRIu64 " ms exceeds the delay %" PRIu64 " ms\n", opt.jitter_ms,
			opt.delay_ms);
		return 2;
	}
	rng = opt.seed;
	struct dir d[2];
	memset(d, 0, sizeof(d));
	int fa = tap_open(a), fb = fa >= 0 ? tap_open(b) : -1;
	if (fa < 0 || fb < 0)
		return 1;
	d[0].in = d[1].out = fa;
	d[0].out = d[1].in = fb;
	d[0].q = calloc(NQ, sizeof(struct frame));
	d[1].q = calloc(NQ, sizeof(struct frame));
	if (d[0].q == NULL || d[1].q == NULL) {
		fprintf(stderr, "zila_link: out of memory\n");
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	uint8_t buf[FRAME_MAX];
	while (!stop) {
		uint64_t now = now_ns();
		uint64_t wait = deliver(&d[0], now), w2 = deliver(&d[1], now);
		if (w2 < wait)
			wait = w2;
		if (dump) {
			dump = 0;
			write_stats(d);
		}
		struct pollfd p[2] = { { fa, POLLIN, 0 }, { fb, POLLIN, 0 } };
		int ms = (int)((wait + 999999) / 1000000);
		if (poll(p, 2, ms > 1000 ? 1000 : ms) < 0 && errno != EINTR) {
			perror("zila_link: poll");
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			for (;;) {
				ssize_t n = read(p[i].fd, buf, sizeof(buf));
				if (n <= 0)
					break;
				take(&d[i], buf, (size_t)n, now_ns());
			}
		}
	}
	write_stats(d);
	free(d[0].q);
	free(d[1].q);
	close(fa);
	close(fb);
	return 0;
}
