/*
 * morph_stats.c -- `morph stats [--json] [-s SOCKET]`: reads morphd's
 * counters from its admin endpoint (admin_socket in [morphd]).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "morph_cli.h"

#define DEFAULT_SOCKET "/run/morphd/admin.sock"

static void stats_usage(FILE *out)
{
    fprintf(out,
            "Usage: morph stats [--json] [-s SOCKET]\n"
            "\n"
            "Prints morphd's per-service counters: connections accepted,\n"
            "rejected, open and closed for idleness; messages and bytes in and\n"
            "out; errors; UDP datagrams dropped.\n"
            "\n"
            "  -s, --socket PATH   morphd's admin_socket (default %s)\n"
            "  -j, --json          print JSON instead of a table\n"
            "  -h, --help          show this help\n"
            "\n"
            "Exit status: 0 success; 1 morphd could not be reached; 64 bad usage.\n",
            DEFAULT_SOCKET);
}

int morph_stats_main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_SOCKET;
    int json = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "s:jh", long_opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            path = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            stats_usage(stdout);
            return 0;
        default:
            stats_usage(stderr);
            return MORPH_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        stats_usage(stderr);
        return MORPH_EXIT_USAGE;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        fprintf(stderr, "morph stats: socket path too long: %s\n", path);
        return MORPH_EXIT_USAGE;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "morph stats: cannot reach morphd at %s: %s (is "
                "admin_socket set in its [morphd] section?)\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return MORPH_EXIT_FAILURE;
    }
    const char *req = json ? "stats json\n" : "stats\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        fprintf(stderr, "morph stats: %s: %s\n", path, strerror(errno));
        close(fd);
        return MORPH_EXIT_FAILURE;
    }
    char buf[8192];
    ssize_t n;
    size_t total = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, (size_t)n, stdout);
        total += (size_t)n;
    }
    close(fd);
    if (total == 0) {
        fprintf(stderr, "morph stats: no answer from %s\n", path);
        return MORPH_EXIT_FAILURE;
    }
    return 0;
}
