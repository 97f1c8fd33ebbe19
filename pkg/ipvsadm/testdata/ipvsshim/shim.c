/* LD_PRELOAD stand-in for the kernel's IPVS sockopt interface, so the real
 * ipvsadm binary can parse, list and save without IPVS in the kernel. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <netdb.h>

#define BASE (64+1024+64)
struct stats_user { uint32_t conns, inpkts, outpkts; uint64_t inbytes, outbytes; uint32_t cps, inpps, outpps, inbps, outbps; };
struct svc_entry { uint16_t protocol; uint32_t addr; uint16_t port; uint32_t fwmark; char sched[16]; unsigned flags, timeout; uint32_t netmask; unsigned num_dests; struct stats_user stats; };
struct dest_entry { uint32_t addr; uint16_t port; unsigned conn_flags; int weight; uint32_t uth, lth, act, inact, persist; struct stats_user stats; };
struct get_dests { uint16_t protocol; uint32_t addr; uint16_t port; uint32_t fwmark; unsigned num_dests; struct dest_entry e[]; };
struct get_services { unsigned num; struct svc_entry e[]; };
struct getinfo { unsigned version, size, num_services; };
struct svc_kern { uint16_t protocol; uint32_t addr; uint16_t port; uint32_t fwmark; char sched[16]; unsigned flags, timeout; uint32_t netmask; };
struct dest_kern { uint32_t addr; uint16_t port; unsigned conn_flags; int weight; uint32_t uth, lth; };

static struct svc_entry svcs[64]; static struct dest_entry dests[64][64]; static int nsvc;
static struct getinfo info = {0x010201, 4096, 0};
static int tmo[3] = {900, 120, 300};
static int loaded;

static void rdstats(char **p, struct stats_user *s) {
	unsigned long long v[10]; int i;
	for (i = 0; i < 10; i++) v[i] = strtoull(*p, p, 10);
	s->conns=v[0]; s->inpkts=v[1]; s->outpkts=v[2]; s->inbytes=v[3]; s->outbytes=v[4];
	s->cps=v[5]; s->inpps=v[6]; s->outpps=v[7]; s->inbps=v[8]; s->outbps=v[9];
}
static void load(void) {
	char line[1024], a[64], sched[32]; FILE *f; const char *fn = getenv("IPVSSHIM_STATE");
	if (loaded)
		return;
	loaded = 1;
	if (!fn || !(f = fopen(fn, "r"))) return;
	while (fgets(line, sizeof line, f)) {
		unsigned p1, p2, p3, p4, p5, p6, p7, p8; int n;
		if (sscanf(line, "info %u %u", &p1, &p2) == 2) { info.version = p1; info.size = p2; }
		else if (sscanf(line, "timeout %u %u %u", &p1, &p2, &p3) == 3) { tmo[0]=p1; tmo[1]=p2; tmo[2]=p3; }
		else if (sscanf(line, "svc %u %63s %u %u %31s %u %u %u%n", &p1, a, &p2, &p3, sched, &p4, &p5, &p6, &n) == 8) {
			struct svc_entry *s = &svcs[nsvc++]; char *q = line + n;
			s->protocol = p1; inet_pton(AF_INET, a, &s->addr); s->port = htons(p2); s->fwmark = p3;
			strncpy(s->sched, sched, 15); s->flags = p4; s->timeout = p5; s->netmask = htonl(p6);
			rdstats(&q, &s->stats);
		} else if (sscanf(line, "dest %63s %u %u %d %u %u %u %u %u%n", a, &p1, &p2, (int*)&p3, &p4, &p5, &p6, &p7, &p8, &n) == 9) {
			struct svc_entry *s = &svcs[nsvc-1]; struct dest_entry *d = &dests[nsvc-1][s->num_dests++]; char *q = line + n;
			inet_pton(AF_INET, a, &d->addr); d->port = htons(p1); d->conn_flags = p2; d->weight = (int)p3;
			d->uth = p4; d->lth = p5; d->act = p6; d->inact = p7; d->persist = p8; rdstats(&q, &d->stats);
		}
	}
	fclose(f);
	info.num_services = nsvc;
}
static int find(uint16_t proto, uint32_t addr, uint16_t port, uint32_t fwmark) {
	int i;
	for (i = 0; i < nsvc; i++) {
		if (fwmark) { if (svcs[i].fwmark == fwmark) return i; }
		else if (!svcs[i].fwmark && svcs[i].protocol == proto && svcs[i].addr == addr && svcs[i].port == port) return i;
	}
	return -1;
}
/* ipvsadm asks libnl for the generic-netlink family "IPVS" first and
 * takes the sockopt interface only when it is missing. On a kernel with
 * IPVS loaded (a stock Debian one) the family exists: hide it, so that
 * ipvsadm talks to this stand-in and not to the kernel's IPVS. */
int genl_ctrl_resolve(void *sk, const char *name) {
	(void)sk; (void)name;
	return -12; /* -NLE_OBJ_NOTFOUND */
}

int getsockopt(int fd, int level, int opt, void *val, socklen_t *len) {
	static int (*real)(int, int, int, void *, socklen_t *);
	if (level != IPPROTO_IP || opt < BASE || opt > BASE + 7) {
		if (!real) real = dlsym(RTLD_NEXT, "getsockopt");
		return real(fd, level, opt, val, len);
	}
	load();
	switch (opt - BASE) {
	case 1: memcpy(val, &info, sizeof info); return 0;
	case 2: { struct get_services *g = val; int i; g->num = nsvc; for (i = 0; i < nsvc; i++) g->e[i] = svcs[i]; return 0; }
	case 3: { struct svc_entry *s = val; int i = find(s->protocol, s->addr, s->port, s->fwmark); if (i < 0) { errno = ESRCH; return -1; } *s = svcs[i]; return 0; }
	case 4: { struct get_dests *g = val; int i = find(g->protocol, g->addr, g->port, g->fwmark); unsigned j; if (i < 0) { errno = ESRCH; return -1; }
		g->num_dests = svcs[i].num_dests; for (j = 0; j < svcs[i].num_dests; j++) g->e[j] = dests[i][j]; return 0; }
	case 6: memcpy(val, tmo, sizeof tmo); return 0;
	case 7: memset(val, 0, 2 * (4 + 16 + 4)); return 0; /* no sync daemons */
	}
	errno = EINVAL; return -1;
}
int setsockopt(int fd, int level, int opt, const void *val, socklen_t len) {
	static int (*real)(int, int, int, const void *, socklen_t);
	const char *log = getenv("IPVSSHIM_LOG"), *err = getenv("IPVSSHIM_SETERR");
	if (level != IPPROTO_IP || opt < BASE || opt > BASE + 15) {
		if (!real) real = dlsym(RTLD_NEXT, "setsockopt");
		return real(fd, level, opt, val, len);
	}
	if (log) {
		FILE *f = fopen(log, "a"); char a[32], b[32];
		if (f) {
			fprintf(f, "set %d", opt - BASE);
			if (len >= sizeof(struct svc_kern) && opt - BASE != 10) {
				const struct svc_kern *s = val; struct in_addr ia = { s->addr }, nm = { s->netmask };
				strcpy(a, inet_ntoa(ia)); strcpy(b, inet_ntoa(nm));
				fprintf(f, " svc proto=%u addr=%s port=%u fwmark=%u sched=%s flags=%#x timeout=%u netmask=%s", s->protocol, a, ntohs(s->port), s->fwmark, s->sched, s->flags, s->timeout, b);
				if (len >= sizeof(struct svc_kern) + sizeof(struct dest_kern)) {
					const struct dest_kern *d = (const void *)((const char *)val + sizeof(struct svc_kern)); struct in_addr da = { d->addr };
					fprintf(f, " dest addr=%s port=%u fwd=%u weight=%d uth=%u lth=%u", inet_ntoa(da), ntohs(d->port), d->conn_flags, d->weight, d->uth, d->lth);
				}
			} else if (opt - BASE == 10) { const int *t = val; fprintf(f, " timeout %d %d %d", t[0], t[1], t[2]); }
			fprintf(f, "\n"); fclose(f);
		}
	}
	if (err) { errno = atoi(err); return -1; }
	return 0;
}
/* Never ask DNS: listings without -n then show addresses, as xlb does. */
struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type) {
	(void)addr; (void)len; (void)type;
	return NULL;
}
FILE *fopen(const char *path, const char *mode) {
	static FILE *(*real)(const char *, const char *);
	const char *c = getenv("IPVSSHIM_CONN");
	if (!real) real = dlsym(RTLD_NEXT, "fopen");
	if (c && !strcmp(path, "/proc/net/ip_vs_conn")) path = c;
	return real(path, mode);
}
