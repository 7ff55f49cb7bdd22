/*
 * main.c -- morphd's command line: parse options, load the configuration
 * (a file, or the built-in uppercase service), check it (-t) or serve it.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/activation.h"
#include "daemon/watchdog.h"
#include "engine/chain.h"
#include "conf/config.h"
#include "daemon/crash_note.h"
#include "base/exit_codes.h"
#include "base/log.h"
#include "base/paths.h"
#include "engine/plugin_loader.h"
#include "base/plugin_path.h"
#include "daemon/privileges.h"
#include "daemon/sandbox.h"
#include "daemon/supervisor.h"
#include "daemon/server.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: morphd [-c FILE] [-t [-q]] [-l LEVEL] [--set SECTION.KEY=VALUE]...\n"
            "\n"
            "morphd serves text transforms (plugins) over TCP and UDP, as\n"
            "configured in an INI file. Without -c it serves the packaged\n"
            "uppercase service: TCP and UDP on port 12000, IPv4 and IPv6.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   read the configuration from FILE\n"
            "  -t, --test          check the configuration and load its plugins,\n"
            "                      print what is wrong, and exit (0 when valid)\n"
            "  -q, --quiet         with -t: print nothing when the file is valid\n"
            "  -l, --log-level L   error, warn, info or debug (overrides the file)\n"
            "  -s, --set S.K=V     override one key of the file: S is morphd or a\n"
            "                      service name, e.g. --set 'uppercase.listen=\n"
            "                      tcp://127.0.0.1:0 udp://127.0.0.1:0'\n"
            "      --help-config   list every configuration key with its default,\n"
            "                      then every plugin's options (=markdown: the\n"
            "                      table of docs/configuration.md; =man: roff)\n"
            "  -h, --help          show this help and exit\n"
            "  -V, --version       show the version and the default plugin folder\n"
            "\n"
            "Signals: SIGINT and SIGTERM stop accepting, finish writing pending\n"
            "replies (up to shutdown_timeout) and exit 0. SIGHUP reloads the\n"
            "file (a bad one is logged and the running one kept). SIGUSR1 logs\n"
            "every service's counters. With isolation = process, SIGCHLD\n"
            "tells the main process a worker ended (it is replaced), and\n"
            "SIGUSR2 retires a worker process after a reload.\n"
            "\n"
            "Exit status: 0 success; %d bad configuration (EX_CONFIG), including\n"
            "plugins that fail to load and ports already in use; %d bad usage.\n",
            MORPH_EXIT_CONFIG, MORPH_EXIT_USAGE);
}

/* Under AddressSanitizer, crashes are reported the sanitizer's way. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(MORPH_SANITIZE)
#define MORPHD_CRASH_LOGGER 1

/* A crash -- most likely in a plugin, which runs in morphd's process --
 * is logged before the process dies of it, so that the log says why
 * systemd restarted the service (Restart=on-failure). Only
 * async-signal-safe calls here. */
static void on_fatal_signal(int sig)
{
    /* the same start as every other line: time and pid (in process mode,
     * the worker's) */
    morphd_signal_line_t l;
    morphd_signal_line_start(&l, MORPH_LOG_ERROR);
    morphd_signal_line_str(&l, "fatal signal ");
    morphd_signal_line_num(&l, (unsigned long)sig);
    /* the plugin this thread was running, if any (set around each call) */
    const morphd_stage_t *st = morphd_running_stage;
    if (morphd_watchdog_fired) {
        morphd_signal_line_str(&l, ": the watchdog aborted morphd for a "
                                   "plugin call past plugin_timeout (logged "
                                   "above)");
    } else if (st != NULL) {
        morphd_crash_note(st->plugin->name, st->chain->service);
        morphd_signal_line_str(&l, " in plugin ");
        morphd_signal_line_str(&l, st->plugin->name);
        morphd_signal_line_str(&l, " of service ");
        morphd_signal_line_str(&l, st->chain->service);
        morphd_signal_line_str(&l, "; the plugin crashed");
    } else {
        morphd_signal_line_str(&l, " outside any plugin call; morphd "
                                   "itself crashed");
    }
    morphd_signal_line_str(&l, morphd_watchdog_worker_process
                                   ? ". This worker process exits; the main "
                                     "process starts a new one."
                                   : ". Exiting; under systemd the service "
                                     "restarts.");
    morphd_signal_line_write(&l);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_logger(void)
{
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sa.sa_flags = SA_RESETHAND | SA_NODEFER;
        sigaction(sigs[i], &sa, NULL);
    }
}
#endif

/* Descriptors: every connection is one. When the open-file limit is below
 * what the services may open (max_connections, the listeners of every
 * worker, and some to spare), connections beyond it are accepted and
 * closed at once (listener_stream.c counts and logs them). So the soft limit is raised as far
 * as the hard one allows, and what is still short is said at start. */
static void check_open_files(const morphd_config_t *cfg, unsigned workers)
{
    /* `need` is what the soft limit is raised towards; `asked` is what the
     * warning is about: only max_connections the file sets. A default is
     * a ceiling nobody chose, and defaults must not warn (two services at
     * their 10,000 each passed a hard limit of 20,000). */
    rlim_t need = 64, asked = 64; /* the loops, the log, the admin socket, plugins */
    for (size_t i = 0; i < cfg->n_services; i++) {
        const morphd_service_conf_t *svc = &cfg->services[i];
        need += (rlim_t)svc->n_listen * workers;
        asked += (rlim_t)svc->n_listen * workers;
        if (morphd_service_conf_has_stream(svc)) {
            rlim_t conns = svc->max_connections ? svc->max_connections : 65536;
            need += conns;
            if (morphd_service_conf_given(svc, "max_connections"))
                asked += conns;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need
                                                                     : rl.rlim_max;
    if (rl.rlim_cur > was && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        morphd_log(MORPH_LOG_INFO, "raised the open-file limit from %llu to "
                   "%llu", (unsigned long long)was,
                   (unsigned long long)rl.rlim_cur);
    else
        rl.rlim_cur = was;
    if (rl.rlim_cur < asked)
        morphd_log(MORPH_LOG_WARN, "open files: the limit is %llu, and the "
                   "services may need %llu (their max_connections and "
                   "listeners): connections beyond the limit are accepted "
                   "and closed at once, counted in connections_dropped and "
                   "logged (a line per 10 s at most). Raise it (ulimit -n; "
                   "LimitNOFILE= in a systemd unit) or lower max_connections",
                   (unsigned long long)rl.rlim_cur, (unsigned long long)asked);
    else if (rl.rlim_cur < need)
        morphd_log(MORPH_LOG_INFO, "open files: the limit is %llu, below the "
                   "%llu the services' default max_connections add up to; "
                   "beyond it connections are dropped at accept and counted "
                   "in connections_dropped", (unsigned long long)rl.rlim_cur,
                   (unsigned long long)need);
}

typedef struct {
    char *name;      /* the plugin's: NAME of NAME.so or NAME.lua */
    char *path;
    unsigned folder; /* which folder of plugin_dir, from 1 */
} listed_plugin_t;

typedef struct {
    listed_plugin_t *v;
    size_t n;
    unsigned folders; /* listed so far */
} plugin_list_t;

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const listed_plugin_t *)a)->name,
                  ((const listed_plugin_t *)b)->name);
}

/* Adds the NAME.so and NAME.lua files of one plugin folder not provided
 * by an earlier folder. */
static int list_folder(const char *folder, void *arg)
{
    plugin_list_t *list = arg;
    list->folders++;
    DIR *d = opendir(folder);
    if (d == NULL) {
        fprintf(stderr, "morphd: %s: %s; its plugins are not listed\n", folder,
                strerror(errno));
        return 0;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t stem = morphd_plugin_file_stem(e->d_name);
        if (stem == 0)
            continue;
        /* the first folder's NAME.so or NAME.lua is plugin NAME (both in
         * one folder: each is listed, and loading it says why not) */
        bool shadowed = false;
        for (size_t i = 0; i < list->n && !shadowed; i++)
            shadowed = list->v[i].folder != list->folders &&
                       strlen(list->v[i].name) == stem &&
                       strncmp(list->v[i].name, e->d_name, stem) == 0;
        if (shadowed)
            continue;
        listed_plugin_t *grown = realloc(list->v, (list->n + 1) * sizeof *grown);
        if (grown == NULL)
            break;
        list->v = grown;
        listed_plugin_t *p = &list->v[list->n];
        p->name = strndup(e->d_name, stem);
        p->folder = list->folders;
        if (p->name == NULL || asprintf(&p->path, "%s/%s", folder, e->d_name) < 0) {
            free(p->name);
            break;
        }
        list->n++;
    }
    closedir(d);
    return 0;
}

/* --help-config: every key, then the options each plugin in the plugin
 * folders declares (in name order, the one plugin_dir would load for each
 * name; a plugin that cannot be read is noted on stderr and skipped). */
static int print_help_config(const char *config_path,
                             morphd_ref_format_t format)
{
    morphd_config_print_reference(stdout, format);
    morphd_config_t cfg;
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    char *dirs = NULL;
    if (config_path != NULL &&
        morphd_config_read(config_path, NULL, 0, &cfg, &errs) == 0) {
        dirs = morphd_config_plugin_dir(&cfg, morphd_default_plugin_dir());
        morphd_config_free(&cfg);
    }
    morphd_errors_free(&errs);
    if (dirs == NULL)
        dirs = strdup(morphd_default_plugin_dir());
    if (dirs == NULL)
        return 0;
    plugin_list_t list = {0};
    morphd_plugin_path_each(dirs, list_folder, &list);
    if (list.n > 0)
        qsort(list.v, list.n, sizeof *list.v, compare_names);
    if (format == MORPHD_REF_TEXT && list.n > 0)
        printf("\n[service NAME] options of the plugins in %s\n", dirs);
    char codecs[1024] = ""; /* the codec plugins: framing = NAME */
    for (size_t i = 0; i < list.n; i++) {
        char err[1024];
        morphd_plugin_t p;
        if (morphd_plugin_inspect(list.v[i].path, &p, err, sizeof err) != 0) {
            fprintf(stderr, "morphd: %s\n", err);
        } else {
            morphd_plugin_print_options(stdout, &p, format);
            if (p.codec != NULL && strlen(codecs) + strlen(p.name) + 3 < sizeof codecs)
                snprintf(codecs + strlen(codecs), sizeof codecs - strlen(codecs),
                         "%s%s", codecs[0] ? ", " : "", p.name);
            morphd_plugin_unload(&p);
        }
        free(list.v[i].name);
        free(list.v[i].path);
    }
    if (format == MORPHD_REF_TEXT)
        printf("\n[service NAME] framing = NAME: the built-in framings are %s; "
               "the codec plugins in %s: %s\n", morphd_codec_builtin_names,
               dirs, codecs[0] ? codecs : "none");
    free(list.v);
    free(dirs);
    return 0;
}

static void print_errors(const morphd_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "morphd: %s\n", errs->msgs[i]);
}

/* The command line. */
typedef struct options {
    const char *config_path;
    int help_config; /* a morphd_ref_format_t when asked for, else -1 */
    int test_only;
    int quiet;
    int log_level; /* -1: the configuration's */
    const char *overrides[32];
    size_t n_overrides;
} options_t;

/* Reads the command line into `o`. Returns -1 to go on, or the exit
 * status to end with now (--help, --version, a usage error). */
static int parse_command_line(int argc, char **argv, options_t *o)
{
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"log-level", required_argument, NULL, 'l'},
        {"set", required_argument, NULL, 's'},
        {"help-config", optional_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->help_config = -1;
    o->log_level = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tql:s:hV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            o->config_path = optarg;
            break;
        case 't':
            o->test_only = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'l':
            o->log_level = morphd_log_level_parse(optarg);
            if (o->log_level < 0) {
                fprintf(stderr, "morphd: '%s' is not a log level (error, "
                        "warn, info, debug)\n", optarg);
                return MORPH_EXIT_USAGE;
            }
            break;
        case 's':
            if (o->n_overrides == sizeof o->overrides / sizeof *o->overrides) {
                fprintf(stderr, "morphd: too many --set options\n");
                return MORPH_EXIT_USAGE;
            }
            o->overrides[o->n_overrides++] = optarg;
            break;
        case 'H':
            if (optarg == NULL)
                o->help_config = MORPHD_REF_TEXT;
            else if (strcmp(optarg, "markdown") == 0)
                o->help_config = MORPHD_REF_MARKDOWN;
            else if (strcmp(optarg, "man") == 0)
                o->help_config = MORPHD_REF_MAN;
            else {
                fprintf(stderr, "morphd: --help-config takes no value, "
                        "=markdown or =man\n");
                return MORPH_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("morphd %s (plugin ABI %d)\nplugins: %s\n", MORPH_VERSION,
                   MORPH_PLUGIN_ABI_VERSION, morphd_default_plugin_dir());
            return 0;
        default:
            usage(stderr);
            return MORPH_EXIT_USAGE;
        }
    }
    if (o->quiet && !o->test_only) {
        fprintf(stderr, "morphd: -q goes with -t\n");
        return MORPH_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "morphd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return MORPH_EXIT_USAGE;
    }
    return -1;
}

/* isolation = process: the main process supervises worker processes,
 * which load the plugins and sandbox themselves (supervisor.h). Returns
 * the exit status. */
static int supervise(morphd_config_t *cfg, const options_t *o,
                     morphd_errors_t *errs)
{
    signal(SIGPIPE, SIG_IGN);
#ifdef MORPHD_CRASH_LOGGER
    install_crash_logger();
#endif
    morphd_activation_init(); /* systemd's sockets, if it passed any */
    check_open_files(cfg, 1);
    int status = morphd_supervise(cfg, o->config_path, o->overrides,
                                  o->n_overrides, morphd_default_plugin_dir(),
                                  errs);
    if (status == MORPH_EXIT_CONFIG) {
        print_errors(errs);
        fprintf(stderr, "morphd: %zu error%s in %s; not started\n", errs->n,
                errs->n == 1 ? "" : "s",
                o->config_path ? o->config_path : "the built-in configuration");
    }
    morphd_errors_free(errs);
    return status;
}

/* morphd -t: what the configuration would serve, with which plugins. */
static void print_test_summary(const morphd_server_t *server)
{
    printf("morphd: %s: configuration OK\n", server->gen->cfg.path);
    for (size_t i = 0; i < server->n_services; i++) {
        const morphd_service_conf_t *c = server->services[i]->conf;
        printf("  service %s:", c->name);
        for (size_t j = 0; j < c->n_chain; j++)
            printf("%s %s", j ? " |" : "", c->chain[j]);
        printf(" (%s framing) on", c->codec.ops->name);
        for (size_t j = 0; j < c->n_listen; j++)
            printf(" %s", c->listen[j].text);
        printf("\n");
    }
    for (size_t i = 0; i < server->n_plugins; i++) {
        const morphd_plugin_t *p = server->plugins[i];
        printf("  plugin %s %s: %s (%s)\n", p->name,
               p->desc->version ? p->desc->version : "(no version)",
               p->desc->description ? p->desc->description
                                    : "(no description)",
               p->path);
    }
}

/* Binds, drops root, turns the sandbox's system call filter on, and serves
 * until stopped. Returns 0, or -1 with the reasons in errs. */
static int serve(morphd_server_t *server, bool sandbox, morphd_errors_t *errs)
{
    check_open_files(&server->gen->cfg, server->n_workers);
    morphd_activation_init(); /* systemd's sockets, if it passed any */
    if (morphd_server_listen(server, errs) != 0)
        return -1;
    char why[512];
    if (morphd_drop_privileges(&server->gen->cfg, why, sizeof why) != 0) {
        morphd_errors_add(errs, "%s: %s", server->gen->cfg.path, why);
        return -1; /* morphd_server_free closes what was opened */
    }
    if (sandbox && morphd_sandbox_seccomp(why, sizeof why) != 0) {
        morphd_errors_add(errs, "%s: %s", server->gen->cfg.path, why);
        return -1;
    }
    morphd_server_run(server);
    morphd_log(MORPH_LOG_INFO, "morphd stopped");
    return 0;
}

int main(int argc, char **argv)
{
    options_t o;
    int early = parse_command_line(argc, argv, &o);
    if (early >= 0)
        return early;
    if (o.help_config >= 0)
        return print_help_config(o.config_path,
                                 (morphd_ref_format_t)o.help_config);

    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    morphd_config_t cfg;
    int rc = morphd_config_read(o.config_path, o.overrides, o.n_overrides,
                                &cfg, &errs);
    if (rc == 0) {
        morphd_log_set_level(o.log_level >= 0 ? o.log_level : cfg.log_level);
        if (!o.test_only)
            morphd_log_use_syslog(cfg.log_syslog);
    }
    if (o.test_only && o.log_level < 0)
        morphd_log_set_level(MORPH_LOG_WARN); /* -t prints its own summary */

    /* what dropping root would refuse, before any socket is opened (and
     * by -t, for a configuration the same user could not start) */
    if (rc == 0) {
        char why[512];
        if (morphd_privileges_check(&cfg, why, sizeof why) != 0)
            morphd_errors_add(&errs, "%s: %s", cfg.path, why);
    }
    if (rc == 0 && !o.test_only && cfg.isolation_process && errs.n == 0)
        return supervise(&cfg, &o, &errs);

    /* sandbox = on: Landlock now, while this is the only thread and
     * before any plugin code runs (its create() included); the system call
     * filter once the sockets are bound and root is dropped (serve) */
    bool sandbox = rc == 0 && !o.test_only && cfg.sandbox && errs.n == 0;
    if (sandbox) {
        char why[512];
        if (morphd_sandbox_landlock(&cfg, o.config_path,
                                    morphd_default_plugin_dir(), why,
                                    sizeof why) != 0) {
            morphd_errors_add(&errs, "%s: %s", cfg.path, why);
            rc = -1;
            morphd_config_free(&cfg);
        }
    }

    morphd_server_t server;
    int server_made = rc == 0;
    if (server_made) {
        rc = morphd_server_init(&server, &cfg, morphd_default_plugin_dir(), &errs);
        if (rc == 0 && errs.n > 0)
            rc = -1; /* the privilege check's */
        /* what SIGHUP re-reads */
        server.config_path = o.config_path;
        server.overrides = o.overrides;
        server.n_overrides = o.n_overrides;
    }
    if (rc == 0 && o.test_only) {
        if (!o.quiet)
            print_test_summary(&server);
        morphd_server_free(&server);
        return 0;
    }

    signal(SIGPIPE, SIG_IGN); /* a closed peer is an error return, not death */
#ifdef MORPHD_CRASH_LOGGER
    install_crash_logger();
#endif
    if (rc == 0)
        rc = serve(&server, sandbox, &errs);
    if (rc != 0) {
        print_errors(&errs);
        fprintf(stderr, "morphd: %zu error%s in %s%s\n", errs.n,
                errs.n == 1 ? "" : "s",
                o.config_path ? o.config_path : "the built-in configuration",
                o.test_only ? "" : "; not started");
    }
    if (server_made)
        morphd_server_free(&server);
    morphd_errors_free(&errs);
    return rc == 0 ? 0 : MORPH_EXIT_CONFIG;
}
