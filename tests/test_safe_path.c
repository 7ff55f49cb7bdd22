/* What morphd does as root to files whose names someone else can change
 * (issue 21's three holes): a racer renames a link over the admin socket's
 * or a unix:// socket's name the moment inotify says it appeared -- the
 * race as it was won -- many times, and the root-only file the link names
 * must keep its owner, mode and bytes; the access log is never opened
 * through a link or into a file with other names; socket and log folders
 * others can write are refused while morphd runs as root. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <poll.h>

#include "harness.h"

#define ROUNDS 20
#define SECRET "root's secret\n"

static morphd_proc_t proc;
static char dir[64];    /* the folder the attacker can write */
static char target[96]; /* the file they aim at */

static bool as_root(void) { return geteuid() == 0 && getpwnam("nobody"); }

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/morph-race-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755);
    /* in a folder of its own, like /etc/shadow: not the attacker's */
    snprintf(target, sizeof target, "%s.secret", dir);
    int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, SECRET, strlen(SECRET)), (ssize_t)strlen(SECRET));
    close(fd);
}

static void teardown(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, target);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* The root-only file is as it was. */
static void assert_target_untouched(const char *what, int round)
{
    struct stat sb;
    ck_assert_int_eq(lstat(target, &sb), 0);
    ck_assert_msg((sb.st_mode & 07777) == 0600 && sb.st_uid == geteuid() &&
                      sb.st_gid == getegid(),
                  "%s, round %d: the target became mode %04o, owner %u:%u",
                  what, round, (unsigned)(sb.st_mode & 07777),
                  (unsigned)sb.st_uid, (unsigned)sb.st_gid);
    char *text = read_file(target);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strcmp(text, SECRET) == 0, "%s, round %d: the target now "
                  "holds '%s'", what, round, text);
    free(text);
}

/* --- the racer: a link renamed over NAME as soon as NAME appears ------- */

typedef struct racer {
    pthread_t thread;
    const char *name;
    int inotify;
    atomic_bool stop;
    atomic_int swaps;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    char link_path[160], name_path[160];
    snprintf(link_path, sizeof link_path, "%s/.planted", dir);
    snprintf(name_path, sizeof name_path, "%s/%s", dir, r->name);
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!atomic_load(&r->stop)) {
        struct pollfd pfd = {.fd = r->inotify, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        ssize_t n = read(r->inotify, buf, sizeof buf);
        for (char *p = buf; n > 0 && p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->len > 0 && strcmp(ev->name, r->name) == 0 &&
                (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
                unlink(link_path);
                if (symlink(target, link_path) == 0 &&
                    rename(link_path, name_path) == 0)
                    atomic_fetch_add(&r->swaps, 1);
            }
            p += sizeof *ev + ev->len;
        }
    }
    return NULL;
}

static void racer_start(racer_t *r, const char *name)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ck_assert_int_ge(r->inotify, 0);
    ck_assert_int_ge(inotify_add_watch(r->inotify, dir, IN_CREATE | IN_MOVED_TO), 0);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, race, r), 0);
}

static int racer_stop(racer_t *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->inotify);
    return atomic_load(&r->swaps);
}

/* Starts morphd on `ini` (as root: switching to nobody), stops it, and
 * returns whether it started. */
static bool start_and_stop(const char *ini)
{
    const char *args[] = {"--as-is", NULL};
    int rc = morphd_proc_start_args(&proc, ini, as_root() ? args : NULL);
    if (rc == 0)
        morphd_proc_stop(&proc);
    morphd_proc_cleanup(&proc);
    return rc == 0;
}

/* Runs the race ROUNDS times: morphd started on `ini` (its one "%s" the
 * socket's path, dir/`name`) while the racer waits for `name` to appear.
 * The target is checked after each round; the racer must have swapped in
 * most rounds, and morphd started in some, or the test proved nothing. */
static void race_rounds(const char *what, const char *name, const char *ini_fmt)
{
    int swaps = 0, started = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char ini[1024], sock[128];
        snprintf(sock, sizeof sock, "%s/%s", dir, name);
        unlink(sock);
        snprintf(ini, sizeof ini, ini_fmt, sock);
        racer_t r;
        racer_start(&r, name);
        started += start_and_stop(ini);
        swaps += racer_stop(&r);
        assert_target_untouched(what, round);
    }
    ck_assert_int_ge(swaps, ROUNDS / 2);
    ck_assert_int_ge(started, 1);
}

/* Hole 1: chown(admin_socket) at the privilege drop followed a link put
 * over the name after the bind. */
START_TEST(admin_socket_race_never_reaches_the_target)
{
    if (as_root())
        chown(dir, 65534, 65534); /* the service user's folder, as allowed */
    char fmt[512];
    snprintf(fmt, sizeof fmt,
             "[morphd]\nplugin_dir = %s\nadmin_socket = %%s\n%s\n"
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = echo\n",
             PLUGIN_DIR, as_root() ? "user = nobody" : "");
    race_rounds("admin socket", "admin.sock", fmt);
}
END_TEST

/* Hole 2: chmod and chown by path after bind() on a unix:// endpoint. */
START_TEST(unix_endpoint_race_never_reaches_the_target)
{
    char fmt[512];
    snprintf(fmt, sizeof fmt,
             "[morphd]\nplugin_dir = %s\n%s\n"
             "[service s]\nlisten = unix://%%s\ntransform = echo\n"
             "unix_mode = 0666\nunix_group = %d\n",
             PLUGIN_DIR, as_root() ? "user = nobody" : "", (int)getegid());
    race_rounds("unix endpoint", "u.sock", fmt);
}
END_TEST

/* The socket is made with its mode and group before it has its name: a
 * client never sees it looser. */
START_TEST(unix_socket_has_its_mode_from_the_start)
{
    char ini[1024], sock[128];
    snprintf(sock, sizeof sock, "%s/m.sock", dir);
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n[service s]\nlisten = unix://%s\n"
             "transform = echo\nunix_mode = 0600\n", PLUGIN_DIR, sock);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    struct stat sb;
    ck_assert_int_eq(lstat(sock, &sb), 0);
    ck_assert(S_ISSOCK(sb.st_mode));
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    /* no private folder is left behind */
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    FILE *ls = popen(cmd, "r");
    char line[256];
    int names = 0;
    while (ls && fgets(line, sizeof line, ls))
        names++, ck_assert_msg(strncmp(line, ".morphd-", 8) != 0, "%s", line);
    pclose(ls);
    ck_assert_int_eq(names, 1);
    free(out);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    morphd_proc_cleanup(&proc);
}
END_TEST

/* Hole 3: the access log opened through a link the service user planted
 * at its name, at start and again at SIGHUP. */
START_TEST(access_log_never_follows_a_link)
{
    char log_path[128], ini[1024];
    snprintf(log_path, sizeof log_path, "%s/access.log", dir);
    ck_assert_int_eq(symlink(target, log_path), 0);
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\naccess_log = %s\n"
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = echo\n",
             PLUGIN_DIR, log_path);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    char buf[64];
    for (int i = 0; i < 2; i++) {
        int fd = tcp_connect(port, false);
        ck_assert_int_eq(send_all(fd, "hi\n", 3), 0);
        ck_assert_ptr_nonnull(recv_line(fd, buf, sizeof buf, 5000));
        close(fd);
        if (i == 0)
            ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    }
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "is a symbolic link"), 2);
    morphd_proc_cleanup(&proc);
    assert_target_untouched("access log link", 0);

    /* a second name of the target (a hard link) is refused the same way */
    unlink(log_path);
    if (link(target, log_path) == 0) {
        ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
        port = morphd_proc_need_port(&proc, "s", "tcp", false);
        int fd = tcp_connect(port, false);
        ck_assert_int_eq(send_all(fd, "hi\n", 3), 0);
        ck_assert_ptr_nonnull(recv_line(fd, buf, sizeof buf, 5000));
        close(fd);
        ck_assert_int_eq(morphd_proc_stop(&proc), 0);
        ck_assert_int_ge(morphd_proc_log_count(&proc, "other names"), 1);
        morphd_proc_cleanup(&proc);
        assert_target_untouched("access log hard link", 0);
    }
}
END_TEST

/* As root, a socket or log folder that others can write is refused with
 * the reason; a sticky one (/tmp) is accepted, since nobody else can rename
 * or remove what morphd puts there; any folder is fine for a morphd that
 * is not root (it can only hurt its own files). */
START_TEST(folders_others_can_write_are_refused_as_root)
{
    const char *what[] = {"admin_socket = %s/a.sock",
                          "access_log = %s/access.log", NULL};
    for (int mode_i = 0; mode_i < 2; mode_i++) {
        chmod(dir, mode_i == 0 ? 0777 : 01777);
        for (int w = 0; w <= 2; w++) {
            char line[256], ini[1024];
            if (what[w] != NULL)
                snprintf(line, sizeof line, what[w], dir);
            snprintf(ini, sizeof ini,
                     "[morphd]\nplugin_dir = %s\n%s\n%s\n[service s]\n"
                     "listen = %s%s%s\ntransform = echo\n",
                     PLUGIN_DIR, as_root() ? "user = nobody" : "",
                     what[w] ? line : "", what[w] ? "tcp://127.0.0.1:0" : "unix://",
                     what[w] ? "" : dir, what[w] ? "" : "/u.sock");
            const char *args[] = {"--as-is", NULL};
            int rc = morphd_proc_start_args(&proc, ini, as_root() ? args : NULL);
            if (as_root() && mode_i == 0) {
                ck_assert_msg(rc == -1, "%s", ini);
                ck_assert_int_eq(morphd_proc_log_count(&proc, "refused while "
                                                       "morphd runs as root"), 1);
                ck_assert_int_eq(morphd_proc_log_count(&proc, "is writable by "
                                                       "everyone"), 1);
            } else {
                ck_assert_int_eq(rc, 0);
                morphd_proc_stop(&proc);
            }
            morphd_proc_cleanup(&proc);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("safe_path");
    TCase *tc = tcase_create("safe_path");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, admin_socket_race_never_reaches_the_target);
    tcase_add_test(tc, unix_endpoint_race_never_reaches_the_target);
    tcase_add_test(tc, unix_socket_has_its_mode_from_the_start);
    tcase_add_test(tc, access_log_never_follows_a_link);
    tcase_add_test(tc, folders_others_can_write_are_refused_as_root);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
