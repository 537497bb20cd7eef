// SPDX-License-Identifier: LGPL-2.1-or-later
// Small tools the VM suites run inside the guest, which has no Python. Compiled on the host with
// `cc -static -O2` (Guest.add_c_program) so they need nothing from the initramfs.
//
//   vmtools timeit CMD [ARG...]      run CMD; print "@@timeit ELAPSED_USEC STATUS" last on stdout
//   vmtools kreq [-t SEC] CASE|all   speak to lkmd's kernel-request socket (see cases[] below);
//                                    print "case=NAME connect=.. send=.. events=.." per case
//   vmtools request NAME             a well-formed request, as lkmd-modprobe sends it
//   vmtools silent N SEC             hold N connections that send nothing for SEC seconds
//   vmtools socket FAMILY TYPE PROTO socket(2); print "socket=ok" or "socket=ERRNAME"
//   vmtools spray N FAMILIES         N socket(2) calls over families 1..FAMILIES in turn, as a
//                                    user probing address families; print counts and time
//   vmtools algbind TYPE NAME        bind an AF_ALG socket: any user makes the kernel request
//                                    "algif-TYPE" (and "crypto-NAME"), TYPE being user text
//   vmtools uevlog ROOT FILE         log every kernel uevent as "MONOTONIC_USEC ACTION DEVPATH"
//                                    to FILE (inside ROOT, chrooted there), at SCHED_FIFO so
//                                    the stamps are the events' times; runs until killed
//
// The socket is $LKMD_KREQ_SOCKET, else /run/lkmd/kernel-request.sock. The wire format (from
// protocol/kernel_request.h): request "LKRQ" u8 version(1) u8 reserved(0) u16le N, N name bytes,
// NUL; replies are 12 bytes "LKRP" u8 version u8 kind (1 accepted, 2 verdict) u16le 0 i32le status.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_alg.h>
#include <linux/netlink.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path(void) {
    const char *p = getenv("LKMD_KREQ_SOCKET");
    return p && *p ? p : "/run/lkmd/kernel-request.sock";
}

static size_t put_request(uint8_t *buf, const char *magic, int version, int reserved,
                          unsigned declared, const char *name, size_t name_len, int nul) {
    size_t n = 0;
    memcpy(buf, magic, 4);
    n = 4;
    buf[n++] = (uint8_t)version;
    buf[n++] = (uint8_t)reserved;
    buf[n++] = (uint8_t)(declared & 0xff);
    buf[n++] = (uint8_t)(declared >> 8);
    memcpy(buf + n, name, name_len);
    n += name_len;
    if (nul)
        buf[n++] = 0;
    return n;
}

static size_t good_request(uint8_t *buf, const char *name) {
    return put_request(buf, "LKRQ", 1, 0, (unsigned)strlen(name), name, strlen(name), 1);
}

// Each case builds one datagram. "bad" cases must never load anything: where they carry a name,
// it is fs-hfs (hfs is not loaded in the suite), so a lenient decoder shows as hfs in /proc/modules.
struct kcase {
    const char *name;
    size_t (*build)(uint8_t *buf, size_t cap);
};

#define NAME "fs-hfs"
static size_t c_truncated(uint8_t *b, size_t c) { (void)c; memcpy(b, "LKRQ\x01\x00", 6); return 6; }
static size_t c_header_only(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRQ", 1, 0, 6, "", 0, 0);
}
static size_t c_bad_magic(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRX", 1, 0, 6, NAME, 6, 1);
}
static size_t c_bad_version(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRQ", 2, 0, 6, NAME, 6, 1);
}
static size_t c_version_zero(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRQ", 0, 0, 6, NAME, 6, 1);
}
static size_t c_bad_reserved(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRQ", 1, 0x80, 6, NAME, 6, 1);
}
static size_t c_length_long(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRQ", 1, 0, 10, NAME, 6, 1);
}
static size_t c_length_short(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRQ", 1, 0, 3, NAME, 6, 1);
}
static size_t c_missing_nul(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRQ", 1, 0, 6, NAME, 6, 0);
}
static size_t c_embedded_nul(uint8_t *b, size_t c) {
    (void)c;
    return put_request(b, "LKRQ", 1, 0, 7, "fs-\0hfs", 7, 1);
}
static size_t c_trailing(uint8_t *b, size_t c) {
    (void)c;
    size_t n = put_request(b, "LKRQ", 1, 0, 6, NAME, 6, 1);
    memcpy(b + n, "junk", 4);
    return n + 4;
}
static size_t c_oversized(uint8_t *b, size_t c) {  // 300-byte name: over the wire maximum (255)
    char name[300];
    (void)c;
    memset(name, 'a', sizeof name);
    return put_request(b, "LKRQ", 1, 0, sizeof name, name, sizeof name, 1);
}
static size_t c_huge(uint8_t *b, size_t c) {  // a 60000-byte datagram
    size_t n = c < 60000 ? c : 60000;
    memset(b, 'A', n);
    memcpy(b, "LKRQ\x01\x00\xff\xff", 8);
    return n;
}
static size_t c_random(uint8_t *b, size_t c) {
    (void)c;
    FILE *f = fopen("/dev/urandom", "rb");
    size_t n = f ? fread(b, 1, 64, f) : 0;
    if (f)
        fclose(f);
    return n;
}
static size_t c_random_body(uint8_t *b, size_t c) {  // right magic and version, random rest
    size_t n = c_random(b, c);
    memcpy(b, "LKRQ\x01", 5);
    return n;
}
static size_t c_empty_datagram(uint8_t *b, size_t c) { (void)b; (void)c; return 0; }

static size_t c_named(uint8_t *b, const char *name) { return good_request(b, name); }
static size_t c_shell(uint8_t *b, size_t c) { (void)c; return c_named(b, "fs-x;reboot"); }
static size_t c_shell_touch(uint8_t *b, size_t c) {
    (void)c;
    return c_named(b, "fs-x;touch${IFS}/tmp/pwned;`touch /tmp/pwned2`");
}
static size_t c_slash(uint8_t *b, size_t c) { (void)c; return c_named(b, "fs-../../tmp/x"); }
static size_t c_slash2(uint8_t *b, size_t c) { (void)c; return c_named(b, "/tmp/evil"); }
static size_t c_control(uint8_t *b, size_t c) { (void)c; return c_named(b, "fs-\x01\x7f\x1b[2J"); }
static size_t c_space(uint8_t *b, size_t c) { (void)c; return c_named(b, "fs-hfs --force"); }
static size_t c_dash(uint8_t *b, size_t c) { (void)c; return c_named(b, "-r"); }
static size_t c_empty(uint8_t *b, size_t c) { (void)c; return c_named(b, ""); }
static size_t c_name56(uint8_t *b, size_t c) {
    (void)c;
    return c_named(b, "fs-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");  // 56 bytes
}
static size_t c_name55(uint8_t *b, size_t c) {  // the longest the kernel sends: a valid name
    (void)c;
    return c_named(b, "fs-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");  // 55 bytes
}

static const struct kcase cases[] = {
    {"truncated", c_truncated},       {"header-only", c_header_only},
    {"bad-magic", c_bad_magic},       {"bad-version", c_bad_version},
    {"version-zero", c_version_zero}, {"bad-reserved", c_bad_reserved},
    {"length-long", c_length_long},   {"length-short", c_length_short},
    {"missing-nul", c_missing_nul},   {"embedded-nul", c_embedded_nul},
    {"trailing", c_trailing},         {"oversized", c_oversized},
    {"huge", c_huge},                 {"random", c_random},
    {"random-body", c_random_body},   {"empty-datagram", c_empty_datagram},
    {"shell", c_shell},               {"shell-touch", c_shell_touch},
    {"slash", c_slash},               {"slash-abs", c_slash2},
    {"control", c_control},           {"space", c_space},
    {"dash", c_dash},                 {"empty-name", c_empty},
    {"name56", c_name56},             {"name55", c_name55},
};

static int connect_socket(void) {
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strncpy(sa.sun_path, sock_path(), sizeof sa.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

// Send one datagram, then report every reply until the peer closes or `timeout` seconds pass
// without a message.
static void exchange(const char *label, const uint8_t *msg, size_t len, int timeout) {
    printf("case=%s", label);
    int fd = connect_socket();
    if (fd < 0) {
        printf(" connect=%s events=\n", strerrorname_np(-fd));
        return;
    }
    printf(" connect=ok");
    ssize_t w = send(fd, msg, len, MSG_NOSIGNAL);
    if (w < 0)
        printf(" send=%s", strerrorname_np(errno));
    else
        printf(" send=%zd", w);
    printf(" events=");
    const char *sep = "";
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout * 1000);
        if (r == 0) {
            printf("%stimeout", sep);
            break;
        }
        uint8_t buf[64];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_TRUNC);
        if (n < 0) {
            printf("%serror:%s", sep, strerrorname_np(errno));
            break;
        }
        if (n == 0) {
            printf("%sclosed", sep);
            break;
        }
        if (n == 12 && memcmp(buf, "LKRP", 4) == 0 && buf[5] >= 1 && buf[5] <= 2) {
            int32_t st;
            memcpy(&st, buf + 8, 4);  // little-endian host
            printf("%s%s:%d", sep, buf[5] == 1 ? "accepted" : "verdict", st);
        } else {
            printf("%sbadreply:%zd", sep, n);
        }
        sep = ",";
    }
    printf("\n");
    fflush(stdout);
    close(fd);
}

static int cmd_kreq(int argc, char **argv) {
    int timeout = 10;
    int i = 0;
    if (argc >= 2 && strcmp(argv[0], "-t") == 0) {
        timeout = atoi(argv[1]);
        i = 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: vmtools kreq [-t SEC] CASE|all\n");
        return 2;
    }
    static uint8_t buf[65536];
    int found = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (strcmp(argv[i], "all") != 0 && strcmp(argv[i], cases[k].name) != 0)
            continue;
        found = 1;
        size_t n = cases[k].build(buf, sizeof buf);
        exchange(cases[k].name, buf, n, timeout);
    }
    if (!found) {
        fprintf(stderr, "vmtools: no case %s\n", argv[i]);
        return 2;
    }
    return 0;
}

static int cmd_request(int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "usage: vmtools request NAME\n");
        return 2;
    }
    uint8_t buf[512];
    if (strlen(argv[0]) > 400)
        return 2;
    exchange("request", buf, good_request(buf, argv[0]), 130);
    return 0;
}

static int cmd_silent(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: vmtools silent N SEC\n");
        return 2;
    }
    int n = atoi(argv[0]), ok = 0;
    for (int i = 0; i < n; i++) {
        int fd = connect_socket();
        if (fd < 0)
            printf("silent connect %d: %s\n", i, strerrorname_np(-fd));
        else
            ok++;
    }
    printf("silent: %d of %d connected\n", ok, n);
    fflush(stdout);
    sleep((unsigned)atoi(argv[1]));
    return 0;
}

static int cmd_socket(int argc, char **argv) {
    if (argc != 3)
        return 2;
    int fd = socket(atoi(argv[0]), atoi(argv[1]), atoi(argv[2]));
    printf("socket=%s\n", fd >= 0 ? "ok" : strerrorname_np(errno));
    return fd >= 0 ? 0 : 1;
}

static int cmd_spray(int argc, char **argv) {
    if (argc != 2)
        return 2;
    const long n = atol(argv[0]), families = atol(argv[1]);
    if (n <= 0 || families <= 0)
        return 2;
    long opened = 0, refused = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        int fd = socket((int)(1 + i % families), SOCK_DGRAM, 0);
        if (fd >= 0) {
            opened++;
            close(fd);
        } else {
            refused++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
    printf("spray calls=%ld opened=%ld failed=%ld usec=%lld\n", n, opened, refused, us);
    return 0;
}

static int cmd_algbind(int argc, char **argv) {
    if (argc != 2)
        return 2;
    int fd = socket(AF_ALG, SOCK_SEQPACKET, 0);
    if (fd < 0) {
        printf("algbind=socket:%s\n", strerrorname_np(errno));
        return 1;
    }
    struct sockaddr_alg sa = {.salg_family = AF_ALG};
    strncpy((char *)sa.salg_type, argv[0], sizeof sa.salg_type - 1);
    strncpy((char *)sa.salg_name, argv[1], sizeof sa.salg_name - 1);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    printf("algbind=%s\n", r == 0 ? "ok" : strerrorname_np(errno));
    return r == 0 ? 0 : 1;
}

static int cmd_timeit(int argc, char **argv) {
    if (argc < 1)
        return 2;
    struct timespec t0, t1;
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0)
        return 125;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("@@timeit %lld %d\n", us, status);
    return status;
}

// Started by the systemd guest's initramfs before switch_root (bench/boot_vs_udev.py), so it
// hears every uevent of the boot, whoever handles them.
static int cmd_uevlog(int argc, char **argv) {
    if (argc != 2)
        return 2;
    if (chroot(argv[0]) != 0 || chdir("/") != 0) {
        perror("uevlog: chroot");
        return 1;
    }
    int out = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
    if (out < 0 || fd < 0) {
        perror("uevlog");
        return 1;
    }
    int size = 16 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = 1};
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        perror("uevlog: bind");
        return 1;
    }
    struct sched_param param = {.sched_priority = 50};
    sched_setscheduler(0, SCHED_FIFO, &param);
    char buf[8192];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (n < 0) {
            if (errno == ENOBUFS)
                dprintf(out, "%lld OVERFLOW -\n", (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000);
            continue;
        }
        buf[n] = '\0';
        char *at = strchr(buf, '@');  // "ACTION@DEVPATH", then KEY=VALUE strings
        if (at == NULL)
            continue;
        *at = '\0';
        dprintf(out, "%lld %s %s\n", (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000, buf,
                at + 1);
    }
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: vmtools timeit|kreq|request|silent|socket|spray|algbind|uevlog ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    argc -= 2;
    argv += 2;
    if (strcmp(cmd, "timeit") == 0)
        return cmd_timeit(argc, argv);
    if (strcmp(cmd, "kreq") == 0)
        return cmd_kreq(argc, argv);
    if (strcmp(cmd, "request") == 0)
        return cmd_request(argc, argv);
    if (strcmp(cmd, "silent") == 0)
        return cmd_silent(argc, argv);
    if (strcmp(cmd, "socket") == 0)
        return cmd_socket(argc, argv);
    if (strcmp(cmd, "spray") == 0)
        return cmd_spray(argc, argv);
    if (strcmp(cmd, "algbind") == 0)
        return cmd_algbind(argc, argv);
    if (strcmp(cmd, "uevlog") == 0)
        return cmd_uevlog(argc, argv);
    fprintf(stderr, "vmtools: unknown command %s\n", cmd);
    return 2;
}
