/*
 * supervisor.c -- the main process of isolation = process (supervisor.h).
 *
 * Worker slots: a worker process counts its gauges and plugin metrics as
 * one slot of the shared counters (stats.h), and its slot is cleaned when
 * it dies. While the workers a reload retired finish their connections,
 * old and new run side by side, so there are 4 slots per worker: a slot is
 * free once its process is gone.
 */
#include "daemon/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/activation.h"
#include "daemon/admin.h"
#include "daemon/crash_note.h"
#include "base/exit_codes.h"
#include "net/listener.h"
#include "net/listener_unix.h"
#include "base/log.h"
#include "daemon/metrics_http.h"
#include "daemon/notify.h"
#include "daemon/privileges.h"
#include "daemon/sandbox.h"
#include "daemon/server.h"
#include "base/shm.h"
#include "engine/stats.h"
#include "daemon/watchdog.h"
#include "daemon/worker.h"

#define SHM_SIZE ((size_t)1 << 30)  /* reserved; pages come as used */
#define SLOTS_PER_WORKER 4
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 10000        /* a worker up this long ends a crash loop */
#define READY_TIMEOUT_MS 30000 /* for new workers to load and listen */
/* after shutdown_timeout, what a worker gets before it is killed: less
 * than the 2 s its own watchdog gives it, so that the kill (and exit 1)
 * is the main process's, whichever way the worker is stuck */
#define SHUTDOWN_GRACE_MS 1500
#define SLOT_WAIT_MS 2000      /* for a retiring worker to free its slot */

#define HEARTBEAT_CHECK_MS 250
#define HEARTBEAT_GRACE_MS 1000

/* One configured endpoint: a socket per worker (SO_REUSEPORT), or copies
 * of one (unix://, or one systemd passed). */
typedef struct sockset {
    morphd_transport_t transport;
    char *service;
    size_t index; /* in the service's listen list */
    morphd_endpoint_t ep;
    char bound[MORPHD_ENDPOINT_TEXT];
    int *fds; /* [n_workers] */
    morphd_unix_file_t file;
    bool reused; /* by the configuration being built (reload) */
    bool adopted; /* systemd passed it */
    struct sockset *prev, *next; /* every set open (all_sets) */
} sockset_t;

/* Every socket set the main process holds, of any configuration: a worker
 * closes all but its own, so that a socket a reload retired is not kept
 * listening (unanswered) by a worker forked while it was still open. */
static sockset_t *all_sets;

typedef struct config_set {
    morphd_config_t cfg;
    sockset_t **sets;
    size_t n_sets;
    unsigned id;
} config_set_t;

typedef struct worker_proc {
    pid_t pid;         /* 0: the slot is free */
    unsigned index;    /* which of the `workers` */
    unsigned gen;      /* config_set id it serves */
    uint64_t started_ms;
    bool stalled; /* killed for a loop that did not turn */
} worker_proc_t;

typedef struct supervisor {
    uv_loop_t loop;
    const char *config_path;
    const char *const *overrides;
    size_t n_overrides;
    const char *default_plugin_dir;
    unsigned n; /* workers */
    unsigned n_slots;
    config_set_t cur;
    worker_proc_t *slots;
    morphd_crash_note_t *notes; /* [n_slots], shared */
    /* per worker index: crash loop state and the restart timer */
    unsigned *crashes;
    uv_timer_t *restart;
    morphd_stats_t **stats;
    morphd_server_counters_t counters;
    struct morphd_admin *admin;
    struct morphd_metrics_http *metrics;
    uv_signal_t sigchld, sigterm, sigint, sighup, sigusr1;
    uv_timer_t kill_timer;
    uv_timer_t heartbeat_timer; /* looks for workers whose loop stopped */
    uv_timer_t reload_timer; /* SIGHUPs of one turn of the loop: one reload */
    uint64_t reload_asked_ms; /* a reload waits for free slots since (0: none) */
    pid_t pid; /* the main process */
    unsigned last_id; /* of the configurations tried */
    bool stopping;
    bool killed; /* a worker outlived shutdown_timeout: exit 1 */
} supervisor_t;

static supervisor_t *the_sup; /* for the worker process's inherited socket */
static unsigned child_index;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

/* --- sockets ---------------------------------------------------------------- */

static void sockset_free(sockset_t *set, unsigned n)
{
    if (set == NULL)
        return;
    if (set->prev != NULL)
        set->prev->next = set->next;
    else if (all_sets == set)
        all_sets = set->next;
    if (set->next != NULL)
        set->next->prev = set->prev;
    for (unsigned k = 0; set->fds != NULL && k < n; k++)
        if (set->fds[k] >= 0)
            close(set->fds[k]);
    morphd_unix_remove(&set->file);
    free(set->fds);
    free(set->service);
    free(set);
}

/* Binds one endpoint for every worker. Returns NULL with the reason. */
static sockset_t *sockset_open(const morphd_service_conf_t *svc, size_t index,
                               unsigned n, char *err, size_t err_size)
{
    sockset_t *set = calloc(1, sizeof *set);
    if (set == NULL || (set->fds = malloc(n * sizeof *set->fds)) == NULL ||
        (set->service = strdup(svc->name)) == NULL) {
        if (set != NULL) {
            free(set->fds);
            free(set);
        }
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    for (unsigned k = 0; k < n; k++)
        set->fds[k] = -1;
    set->index = index;
    set->ep = svc->listen[index];
    set->transport = set->ep.transport;
    int first = morphd_activation_take(&set->ep); /* systemd's, if any */
    set->adopted = first >= 0;
    if (first < 0 && set->transport == MORPHD_UNIX)
        first = morphd_unix_listen(&set->ep, svc->unix_mode, svc->unix_group,
                                   511, &set->file, err, err_size);
    if (first >= 0 || set->transport == MORPHD_UNIX) {
        /* one socket, a copy for each worker */
        for (unsigned k = 0; first >= 0 && k < n; k++) {
            set->fds[k] = k == 0 ? first : fcntl(first, F_DUPFD_CLOEXEC, 0);
            if (set->fds[k] < 0) {
                snprintf(err, err_size, "%s: dup: %s", set->ep.text,
                         strerror(errno));
                sockset_free(set, n);
                return NULL;
            }
        }
        if (first < 0) {
            sockset_free(set, n);
            return NULL;
        }
    } else {
        morphd_listener_t l;
        memset(&l, 0, sizeof l);
        l.endpoint = set->ep;
        int type = set->transport == MORPHD_UDP ? SOCK_DGRAM : SOCK_STREAM;
        for (unsigned k = 0; k < n; k++) {
            int fd = morphd_listener_socket(&l, type);
            if (fd < 0 || (type == SOCK_STREAM && listen(fd, 511) != 0)) {
                snprintf(err, err_size, "%s: cannot bind: %s", set->ep.text,
                         fd < 0 ? uv_strerror(fd) : strerror(errno));
                if (fd >= 0)
                    close(fd);
                sockset_free(set, n);
                return NULL;
            }
            set->fds[k] = fd;
            if (k == 0) { /* port 0: the others take the port it got */
                socklen_t len = sizeof l.endpoint.addr;
                getsockname(fd, (struct sockaddr *)&l.endpoint.addr, &len);
            }
        }
        snprintf(set->bound, sizeof set->bound, "%s", set->ep.text);
        morphd_endpoint_format(set->transport,
                               (struct sockaddr *)&l.endpoint.addr, set->bound,
                               sizeof set->bound);
    }
    if (set->bound[0] == '\0')
        snprintf(set->bound, sizeof set->bound, "%s", set->ep.text);
    set->next = all_sets;
    if (all_sets != NULL)
        all_sets->prev = set;
    all_sets = set;
    return set;
}

/* The running socket set `cs` can give to endpoint (svc, index) of a new
 * configuration, not taken yet (morphd_endpoint_hands_over). */
static sockset_t *find_reusable(config_set_t *cs,
                                const morphd_service_conf_t *svc, size_t index)
{
    for (size_t i = 0; i < cs->n_sets; i++) {
        sockset_t *s = cs->sets[i];
        if (s != NULL && !s->reused &&
            morphd_endpoint_hands_over(&s->ep, s->service, &svc->listen[index],
                                       svc->name))
            return s;
    }
    return NULL;
}

/* Every endpoint of cs->cfg, reusing `from`'s sockets where they match. */
static int open_sets(supervisor_t *sup, config_set_t *cs, config_set_t *from,
                     morphd_errors_t *errs)
{
    size_t total = 0;
    for (size_t i = 0; i < cs->cfg.n_services; i++)
        total += cs->cfg.services[i].n_listen;
    cs->sets = calloc(total ? total : 1, sizeof *cs->sets);
    if (cs->sets == NULL) {
        morphd_errors_add(errs, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cs->cfg.n_services; i++) {
        const morphd_service_conf_t *svc = &cs->cfg.services[i];
        for (size_t j = 0; j < svc->n_listen; j++) {
            sockset_t *s = from ? find_reusable(from, svc, j) : NULL;
            char err[512];
            if (s != NULL) {
                s->reused = true;
                /* now this service's, at this position */
                char *name = strdup(svc->name);
                if (name == NULL) {
                    morphd_errors_add(errs, "out of memory");
                    return -1;
                }
                free(s->service);
                s->service = name;
                s->index = j;
            } else if ((s = sockset_open(svc, j, sup->n, err, sizeof err)) ==
                       NULL) {
                morphd_errors_add(errs, "%s:%d: service '%s': %s",
                                  cs->cfg.path, svc->listen_line, svc->name,
                                  err);
                return -1;
            }
            cs->sets[cs->n_sets++] = s;
        }
    }
    return 0;
}

/* Closes the sets of `cs` not reused by the next configuration. */
static void close_sets(supervisor_t *sup, config_set_t *cs, bool all)
{
    for (size_t i = 0; i < cs->n_sets; i++) {
        if (cs->sets[i] == NULL)
            continue;
        if (all || !cs->sets[i]->reused)
            sockset_free(cs->sets[i], sup->n);
        else
            cs->sets[i]->reused = false;
    }
    free(cs->sets);
    cs->sets = NULL;
    cs->n_sets = 0;
}

/* --- the worker process ----------------------------------------------------- */

static int inherited_socket(const morphd_listener_t *l)
{
    const morphd_worker_service_t *site = l->owner;
    size_t index = (size_t)(l - site->listeners);
    config_set_t *cs = &the_sup->cur;
    for (size_t i = 0; i < cs->n_sets; i++) {
        sockset_t *s = cs->sets[i];
        if (s->index == index && strcmp(s->service, l->service->conf->name) == 0) {
            int fd = s->fds[child_index];
            s->fds[child_index] = -1; /* the listener's now */
            return fd;
        }
    }
    return -1;
}

static void child_errors(unsigned index, const morphd_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "morphd: worker %u: %s\n", index, errs->msgs[i]);
}

/* The worker process: never returns. */
static void worker_main(supervisor_t *sup, unsigned slot, unsigned index,
                        int ready_fd)
{
    /* the main process's signal handlers write to its loop: not ours */
    const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGUSR1};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
    /* reloads are the main process's: a SIGHUP sent to the whole process
     * group must not make a worker do one of its own */
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR2, SIG_IGN); /* until it serves: then it retires on it */
    /* a main process that dies (SIGKILL) takes its workers along */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != sup->pid)
        _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    unsetenv("NOTIFY_SOCKET"); /* systemd hears from the main process */

    the_sup = sup;
    child_index = index;
    morphd_crash_note_t *child_note = &sup->notes[slot];
    memset(child_note, 0, sizeof *child_note);
    morphd_crash_note_attach(child_note);
    morphd_stats_slot = slot;
    morphd_watchdog_worker_process = true;
    /* only this worker's sockets of the current configuration */
    for (sockset_t *set = all_sets; set != NULL; set = set->next) {
        bool current = false;
        for (size_t i = 0; i < sup->cur.n_sets && !current; i++)
            current = sup->cur.sets[i] == set;
        for (unsigned k = 0; k < sup->n; k++)
            if ((k != index || !current) && set->fds[k] >= 0) {
                close(set->fds[k]);
                set->fds[k] = -1;
            }
    }

    morphd_config_t cfg = sup->cur.cfg; /* this process's copy */
    memset(&sup->cur.cfg, 0, sizeof sup->cur.cfg);
    cfg.admin_socket = NULL;   /* the main process serves those two */
    cfg.metrics_listen = NULL;
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    if (cfg.sandbox) {
        char why[512];
        if (morphd_sandbox_landlock(&cfg, sup->config_path,
                                    sup->default_plugin_dir, why,
                                    sizeof why) != 0) {
            morphd_errors_add(&errs, "%s", why);
            child_errors(index, &errs);
            _exit(MORPH_EXIT_CONFIG);
        }
    }
    morphd_worker_inherited_socket = inherited_socket;
    morphd_server_be_worker_process(slot, sup->n_slots, sup->stats,
                                    &child_note->heartbeat_ms);
    morphd_server_t server;
    int rc = morphd_server_init(&server, &cfg, sup->default_plugin_dir, &errs);
    if (rc == 0)
        rc = morphd_server_listen(&server, &errs);
    if (rc == 0 && server.gen->cfg.sandbox) {
        char why[512];
        if (morphd_sandbox_seccomp(why, sizeof why) != 0) {
            morphd_errors_add(&errs, "%s", why);
            rc = -1;
        }
    }
    if (rc != 0) {
        child_errors(index, &errs);
        _exit(MORPH_EXIT_CONFIG);
    }
    char ok = 'R';
    ssize_t w = write(ready_fd, &ok, 1); /* a replacement is not waited for */
    (void)w;
    close(ready_fd);
    morphd_server_run(&server);
    morphd_server_free(&server);
    morphd_errors_free(&errs);
    _exit(0);
}

/* --- starting workers ------------------------------------------------------- */

static int free_slot(supervisor_t *sup)
{
    for (unsigned k = 0; k < sup->n_slots; k++)
        if (sup->slots[k].pid == 0)
            return (int)k;
    return -1;
}

/* Forks worker `index` of the current configuration. Returns the read end
 * of its readiness pipe (one byte once it serves; end of file if it
 * failed), or -1. */
static void reap(supervisor_t *sup);

static int spawn(supervisor_t *sup, unsigned index)
{
    int slot = free_slot(sup);
    /* never waited for here: the main loop serves morph stats, signals
     * and the metrics meanwhile (a reload waits for slots on a timer,
     * on_reload_timer) */
    if (slot < 0) {
        morphd_log(MORPH_LOG_ERROR, "no free worker slot for worker %u "
                   "(retired workers still finishing their connections)", index);
        return -1;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        morphd_log(MORPH_LOG_ERROR, "worker %u: pipe: %s", index,
                   strerror(errno));
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    /* cleared before the fork: cleared after it, it could wipe the
     * heartbeat the new worker has begun to write */
    memset(&sup->notes[slot], 0, sizeof sup->notes[slot]);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        /* the main loop's signal pipe is the main process's: this copy of
         * the loop gets its own, so that a signal here never reaches it */
        uv_loop_fork(&sup->loop);
        worker_main(sup, (unsigned)slot, index, p[1]);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (pid < 0) {
        morphd_log(MORPH_LOG_ERROR, "worker %u: fork: %s", index,
                   strerror(errno));
        close(p[0]);
        return -1;
    }
    worker_proc_t *w = &sup->slots[slot];
    w->pid = pid;
    w->index = index;
    w->gen = sup->cur.id;
    w->started_ms = now_ms();
    w->stalled = false;
    return p[0];
}

/* Waits until each worker behind fds[] says it serves, or fails. Returns
 * how many failed. */
static unsigned await_ready(int *fds, unsigned n)
{
    unsigned failed = 0, left = 0;
    struct pollfd pf[n];
    for (unsigned k = 0; k < n; k++) {
        pf[k].fd = fds[k];
        pf[k].events = POLLIN;
        if (fds[k] < 0)
            failed++;
        else
            left++;
    }
    uint64_t deadline = now_ms() + READY_TIMEOUT_MS;
    while (left > 0) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            failed += left;
            break;
        }
        int r = poll(pf, n, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            failed += left;
            break;
        }
        for (unsigned k = 0; k < n; k++) {
            if (pf[k].fd < 0 || pf[k].revents == 0)
                continue;
            char c;
            if (read(pf[k].fd, &c, 1) != 1)
                failed++;
            left--;
            close(pf[k].fd);
            pf[k].fd = -1;
            fds[k] = -1;
        }
    }
    for (unsigned k = 0; k < n; k++)
        if (fds[k] >= 0)
            close(fds[k]);
    return failed;
}

/* Starts every worker of the current configuration and waits for them.
 * Returns 0, or -1 (those that started are told to stop). */
static int start_generation(supervisor_t *sup)
{
    int fds[sup->n];
    for (unsigned k = 0; k < sup->n; k++)
        fds[k] = spawn(sup, k);
    if (await_ready(fds, sup->n) == 0)
        return 0;
    for (unsigned k = 0; k < sup->n_slots; k++)
        if (sup->slots[k].pid > 0 && sup->slots[k].gen == sup->cur.id)
            kill(sup->slots[k].pid, SIGTERM);
    return -1;
}

/* /healthz: the main process answers from its loop, so it serves it. */
static bool sup_healthy(void *arg, char *why, size_t why_size)
{
    (void)arg;
    (void)why;
    (void)why_size;
    return true;
}

/* /readyz: every worker of the current configuration serves (its loop
 * turned within the last second); not while one restarts. */
static bool sup_ready(void *arg, char *why, size_t why_size)
{
    supervisor_t *sup = arg;
    if (sup->stopping) {
        snprintf(why, why_size, "shutting down");
        return false;
    }
    uint64_t now = now_ms();
    unsigned up = 0;
    for (unsigned k = 0; k < sup->n_slots; k++) {
        uint64_t beat = __atomic_load_n(&sup->notes[k].heartbeat_ms,
                                        __ATOMIC_RELAXED);
        up += sup->slots[k].pid > 0 && sup->slots[k].gen == sup->cur.id &&
              !sup->slots[k].stalled && beat != 0 && now - beat < 1000;
    }
    if (up >= sup->n)
        return true;
    snprintf(why, why_size, "%u of %u worker processes serving", up, sup->n);
    return false;
}

/* A worker whose loop has not turned for plugin_timeout -- stopped
 * (SIGSTOP), or stuck outside a plugin call, where its own watchdog
 * cannot see -- takes its share of new connections with it: it is killed,
 * and the death path starts a new one (issue 21: a worker stopped for 8 s
 * went unnoticed, and its share of clients timed out). */
static void on_heartbeat_check(uv_timer_t *t)
{
    supervisor_t *sup = t->data;
    /* A worker's end is heard of by SIGCHLD; but libuv drops a signal
     * when its signal pipe is full (a storm of SIGTERMs fills it), so a
     * worker that ended then would never be reaped, and a stopping
     * morphd never exit (test_isolation's sigterms_while_exiting...).
     * Looking at every check costs a waitpid that finds nothing. */
    reap(sup);
    /* a second past the plugin_timeout of the worker's own watchdog, which
     * names the plugin of a stuck call and acts first */
    uint64_t limit = sup->cur.cfg.plugin_timeout_ms;
    if (limit == 0)
        return;
    limit += HEARTBEAT_GRACE_MS;
    uint64_t now = now_ms();
    for (unsigned k = 0; k < sup->n_slots; k++) {
        worker_proc_t *w = &sup->slots[k];
        uint64_t beat = __atomic_load_n(&sup->notes[k].heartbeat_ms,
                                        __ATOMIC_RELAXED);
        if (w->pid <= 0 || w->stalled || beat == 0 || now < beat ||
            now - beat < limit)
            continue;
        morphd_log(MORPH_LOG_ERROR, "worker %u (pid %d) has not turned its "
                   "loop for %.1f s (plugin_timeout = %.1f s, and %d ms more): "
                   "stopped, or stuck outside a plugin call; killing it%s",
                   w->index, (int)w->pid, (double)(now - beat) / 1000,
                   (double)sup->cur.cfg.plugin_timeout_ms / 1000,
                   HEARTBEAT_GRACE_MS,
                   w->gen == sup->cur.id ? ", a new one starts" : "");
        w->stalled = true;
        kill(w->pid, SIGKILL);
    }
}

static void on_restart(uv_timer_t *t)
{
    supervisor_t *sup = t->data;
    unsigned index = (unsigned)(t - sup->restart);
    if (sup->stopping)
        return;
    int fd = spawn(sup, index);
    if (fd >= 0)
        close(fd); /* a replacement is not waited for */
    else /* no slot or no fork: try again, as for a crash loop */
        uv_timer_start(t, on_restart, BACKOFF_MAX_MS, 0);
}

/* --- deaths ------------------------------------------------------------------- */

static void describe_death(char *buf, size_t size, int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(buf, size, "was killed by signal %d (SIG%s)", sig,
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    } else {
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    }
}

static bool all_gone(const supervisor_t *sup)
{
    for (unsigned k = 0; k < sup->n_slots; k++)
        if (sup->slots[k].pid > 0)
            return false;
    return true;
}

static void finish(supervisor_t *sup);

static void on_sigchld(uv_signal_t *h, int signum)
{
    (void)signum;
    reap(h->data);
}

/* Takes note of every worker that has ended (SIGCHLD; and before a reload
 * needs free slots, since SIGCHLDs queued behind SIGHUPs come later). */
static void reap(supervisor_t *sup)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        unsigned slot;
        for (slot = 0; slot < sup->n_slots; slot++)
            if (sup->slots[slot].pid == pid)
                break;
        if (slot == sup->n_slots)
            continue; /* not a worker (a plugin's child, say) */
        worker_proc_t w = sup->slots[slot];
        sup->slots[slot].pid = 0;
        morphd_stats_forget_slot(sup->stats, slot);
        char how[96];
        describe_death(how, sizeof how, status);
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (sup->stopping || w.gen != sup->cur.id) {
            morphd_log(clean ? MORPH_LOG_INFO : MORPH_LOG_WARN,
                       "worker %u (pid %d%s) %s", w.index, (int)pid,
                       w.gen < sup->cur.id   ? ", previous configuration"
                       : w.gen > sup->cur.id ? ", a configuration that did "
                                               "not start"
                                             : "",
                       how);
            continue;
        }
        const morphd_crash_note_t *note = &sup->notes[slot];
        char in[200] = "";
        if (note->plugin[0] != '\0')
            snprintf(in, sizeof in, " in plugin %s of service %s",
                     note->plugin, note->service);
        uint64_t lived = now_ms() - w.started_ms;
        unsigned *crashes = &sup->crashes[w.index];
        *crashes = lived >= STABLE_MS ? 1 : *crashes + 1;
        /* the first is replaced at once; a loop backs off */
        uint64_t delay = 0;
        if (*crashes > 1) {
            delay = BACKOFF_FIRST_MS;
            for (unsigned i = 2; i < *crashes && delay < BACKOFF_MAX_MS; i++)
                delay *= 2;
            if (delay > BACKOFF_MAX_MS)
                delay = BACKOFF_MAX_MS;
        }
        __atomic_fetch_add(&sup->counters.worker_restarts, 1, __ATOMIC_RELAXED);
        if (delay == 0)
            morphd_log(MORPH_LOG_ERROR, "worker %u (pid %d) %s%s; starting a "
                       "new one", w.index, (int)pid, how, in);
        else
            morphd_log(MORPH_LOG_ERROR, "worker %u (pid %d) %s%s; crash %u in "
                       "a row: starting a new one in %llu ms", w.index,
                       (int)pid, how, in, *crashes, (unsigned long long)delay);
        uv_timer_start(&sup->restart[w.index], on_restart, delay, 0);
    }
    if (sup->stopping && all_gone(sup))
        finish(sup);
}

/* --- stop, reload, stats -------------------------------------------------------- */

static void on_closed_noop(uv_handle_t *h) { (void)h; }

static void finish(supervisor_t *sup)
{
    uv_timer_stop(&sup->kill_timer);
    uv_timer_stop(&sup->reload_timer);
    morphd_admin_close(sup->admin);
    sup->admin = NULL;
    morphd_metrics_http_stop(sup->metrics);
    sup->metrics = NULL;
    uv_stop(&sup->loop);
}

/* shutdown_timeout is a hard limit: a worker still running 1.5 s after it
 * (a plugin stuck in a call) is killed, and morphd exits 1, as with
 * threads. */
static void on_kill_timer(uv_timer_t *t)
{
    supervisor_t *sup = t->data;
    for (unsigned k = 0; k < sup->n_slots; k++)
        if (sup->slots[k].pid > 0) {
            morphd_log(MORPH_LOG_ERROR, "worker %u (pid %d) still running "
                       "%u ms after SIGTERM (shutdown_timeout = %u ms); "
                       "killing it", sup->slots[k].index,
                       (int)sup->slots[k].pid,
                       sup->cur.cfg.shutdown_timeout_ms + SHUTDOWN_GRACE_MS,
                       sup->cur.cfg.shutdown_timeout_ms);
            kill(sup->slots[k].pid, SIGKILL);
            sup->killed = true;
        }
}

static void on_stop(uv_signal_t *h, int signum)
{
    supervisor_t *sup = h->data;
    if (sup->stopping)
        return;
    reap(sup); /* a worker that died before the stop died of its own */
    sup->stopping = true;
    morphd_notify_stopping();
    morphd_log(MORPH_LOG_INFO, "received %s; the workers finish pending "
               "replies, then morphd exits",
               signum == SIGINT ? "SIGINT" : "SIGTERM");
    for (unsigned i = 0; i < sup->n; i++)
        uv_timer_stop(&sup->restart[i]);
    for (unsigned k = 0; k < sup->n_slots; k++)
        if (sup->slots[k].pid > 0)
            kill(sup->slots[k].pid, SIGTERM);
    uv_timer_start(&sup->kill_timer, on_kill_timer,
                   (uint64_t)sup->cur.cfg.shutdown_timeout_ms + SHUTDOWN_GRACE_MS,
                   0);
    if (all_gone(sup))
        finish(sup);
}

/* The listening sets of the running configuration, as bound, for READY=1
 * (notify.h). The main loop's (a static buffer). */
static const char *listening_text(const supervisor_t *sup)
{
    static char text[16384];
    text[0] = '\0';
    for (size_t i = 0; i < sup->cur.n_sets; i++)
        if (sup->cur.sets[i] != NULL)
            morphd_notify_listening_add(text, sizeof text,
                                        sup->cur.sets[i]->service,
                                        sup->cur.sets[i]->bound);
    return text;
}

static void reload(supervisor_t *sup)
{
    const char *name = sup->config_path ? sup->config_path
                                        : "(built-in default)";
    morphd_log(MORPH_LOG_INFO, "reloading the configuration from %s", name);
    morphd_notify_reloading();
    reap(sup); /* the slots of workers already gone are free */
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    config_set_t next = {.id = ++sup->last_id};
    int rc = morphd_config_read(sup->config_path, sup->overrides,
                                sup->n_overrides, &next.cfg, &errs);
    bool have_cfg = rc == 0;
    if (rc == 0) {
        unsigned want = next.cfg.workers ? next.cfg.workers
                                         : uv_available_parallelism();
        if (want != sup->n)
            morphd_log(MORPH_LOG_WARN, "workers = %u takes effect at the "
                       "next start; still running %u", want, sup->n);
        if (!next.cfg.isolation_process)
            morphd_log(MORPH_LOG_WARN, "isolation = thread takes effect at "
                       "the next start; still running worker processes");
        rc = open_sets(sup, &next, &sup->cur, &errs);
    }
    if (rc == 0) {
        /* the new workers start from `cur`: swap, and back on failure */
        config_set_t old = sup->cur;
        sup->cur = next;
        if (start_generation(sup) == 0) {
            for (unsigned k = 0; k < sup->n_slots; k++)
                if (sup->slots[k].pid > 0 && sup->slots[k].gen == old.id)
                    kill(sup->slots[k].pid, SIGUSR2); /* they retire */
            close_sets(sup, &old, false);
            morphd_config_free(&old.cfg);
            for (unsigned i = 0; i < sup->n; i++)
                sup->crashes[i] = 0;
            morphd_log_set_level(sup->cur.cfg.log_level);
            morphd_log_use_syslog(sup->cur.cfg.log_syslog);
            __atomic_fetch_add(&sup->counters.reloads, 1, __ATOMIC_RELAXED);
            morphd_metrics_http_set_config(sup->metrics, &sup->cur.cfg);
            morphd_log(MORPH_LOG_INFO, "configuration reloaded from %s: %zu "
                       "service%s; the previous workers finish their "
                       "connections", name, sup->cur.cfg.n_services,
                       sup->cur.cfg.n_services == 1 ? "" : "s");
            morphd_errors_free(&errs);
            morphd_notify_ready(MORPHD_READY_RELOADED, listening_text(sup));
            return;
        }
        morphd_errors_add(&errs, "the new workers did not start (their "
                          "errors are above)");
        next = sup->cur;
        sup->cur = old;
    }
    /* what the new configuration took over from the running one stays
     * the running one's */
    for (size_t i = 0; i < next.n_sets; i++)
        if (next.sets[i] != NULL && next.sets[i]->reused)
            next.sets[i] = NULL;
    for (size_t j = 0; j < sup->cur.n_sets; j++)
        sup->cur.sets[j]->reused = false;
    close_sets(sup, &next, true);
    if (have_cfg)
        morphd_config_free(&next.cfg);
    for (size_t i = 0; i < errs.n; i++)
        morphd_log(MORPH_LOG_ERROR, "%s", errs.msgs[i]);
    __atomic_fetch_add(&sup->counters.reload_failures, 1, __ATOMIC_RELAXED);
    morphd_log(MORPH_LOG_ERROR, "reload failed (%zu error%s); still serving "
               "the previous configuration", errs.n, errs.n == 1 ? "" : "s");
    morphd_errors_free(&errs);
    morphd_notify_ready(MORPHD_READY_RELOAD_FAILED, listening_text(sup));
}

static unsigned free_slots(supervisor_t *sup)
{
    unsigned n = 0;
    for (unsigned k = 0; k < sup->n_slots; k++)
        n += sup->slots[k].pid == 0;
    return n;
}

/* Reloads once the new workers have slots: reloads in a row can come
 * faster than the workers they retire end (those without connections end
 * within moments), so a reload waits up to SLOT_WAIT_MS for them -- on
 * this timer, never in a call: the main loop serves on meanwhile (issue
 * 21: it slept 2 s per worker, and morph stats and SIGTERM waited). */
static void on_reload_timer(uv_timer_t *t)
{
    supervisor_t *sup = t->data;
    if (sup->stopping) {
        sup->reload_asked_ms = 0;
        return;
    }
    reap(sup);
    uint64_t now = now_ms();
    if (sup->reload_asked_ms == 0)
        sup->reload_asked_ms = now;
    if (free_slots(sup) < sup->n && now - sup->reload_asked_ms < SLOT_WAIT_MS) {
        uv_timer_start(&sup->reload_timer, on_reload_timer, 10, 0);
        return;
    }
    sup->reload_asked_ms = 0;
    reload(sup);
}

static void on_signal(uv_signal_t *h, int signum)
{
    supervisor_t *sup = h->data;
    if (sup->stopping)
        return;
    if (signum == SIGHUP) {
        /* after this turn of the loop: the SIGHUPs that queued up during
         * the last reload (each takes new processes) make one more, and a
         * SIGTERM among them goes first */
        uv_timer_start(&sup->reload_timer, on_reload_timer, 0, 0);
        return;
    }
    morphd_stats_log(*sup->stats); /* SIGUSR1 */
}

/* --- start --------------------------------------------------------------------- */

int morphd_supervise(morphd_config_t *cfg, const char *config_path,
                     const char *const *overrides, size_t n_overrides,
                     const char *default_plugin_dir, morphd_errors_t *errs)
{
    static supervisor_t sup;
    memset(&sup, 0, sizeof sup);
    the_sup = &sup;
    sup.config_path = config_path;
    sup.overrides = overrides;
    sup.n_overrides = n_overrides;
    sup.default_plugin_dir = default_plugin_dir;
    sup.pid = getpid();
    sup.cur.cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    sup.n = sup.cur.cfg.workers ? sup.cur.cfg.workers
                                : uv_available_parallelism();
    sup.n_slots = sup.n * SLOTS_PER_WORKER;
    const char *path = sup.cur.cfg.path;
    int rc = 0;
    if (morphd_shm_init(SHM_SIZE) != 0 ||
        (sup.stats = morphd_stats_share(sup.n_slots)) == NULL ||
        (sup.notes = morphd_shm_calloc(sup.n_slots, sizeof *sup.notes)) == NULL ||
        (sup.slots = calloc(sup.n_slots, sizeof *sup.slots)) == NULL ||
        (sup.crashes = calloc(sup.n, sizeof *sup.crashes)) == NULL ||
        (sup.restart = calloc(sup.n, sizeof *sup.restart)) == NULL) {
        morphd_errors_add(errs, "%s: cannot set up worker processes: out of "
                          "memory", path);
        return MORPH_EXIT_CONFIG;
    }
    uv_loop_init(&sup.loop);
    for (unsigned i = 0; i < sup.n; i++) {
        uv_timer_init(&sup.loop, &sup.restart[i]);
        sup.restart[i].data = &sup;
    }
    uv_timer_init(&sup.loop, &sup.kill_timer);
    sup.kill_timer.data = &sup;
    uv_timer_init(&sup.loop, &sup.heartbeat_timer);
    sup.heartbeat_timer.data = &sup;
    uv_timer_start(&sup.heartbeat_timer, on_heartbeat_check,
                   HEARTBEAT_CHECK_MS, HEARTBEAT_CHECK_MS);
    uv_unref((uv_handle_t *)&sup.heartbeat_timer);
    uv_timer_init(&sup.loop, &sup.reload_timer);
    sup.reload_timer.data = &sup;
    sup.counters.workers = sup.n;

    rc = open_sets(&sup, &sup.cur, NULL, errs);
    morphd_activation_close_unused();
    for (size_t i = 0; rc == 0 && i < sup.cur.n_sets; i++)
        morphd_log(MORPH_LOG_INFO, "service %s: listening on %s (%u worker "
                   "process%s%s)", sup.cur.sets[i]->service,
                   sup.cur.sets[i]->bound, sup.n, sup.n == 1 ? "" : "es",
                   sup.cur.sets[i]->adopted ? ", from systemd" : "");
    if (rc == 0 && sup.cur.cfg.admin_socket != NULL) {
        char err[512];
        sup.admin = morphd_admin_open(&sup.loop, sup.cur.cfg.admin_socket,
                                      sup.stats, err, sizeof err);
        if (sup.admin == NULL) {
            morphd_errors_add(errs, "%s: admin_socket: %s", path, err);
            rc = -1;
        } else {
            morphd_log(MORPH_LOG_INFO, "admin endpoint on %s",
                       sup.cur.cfg.admin_socket);
        }
    }
    if (rc == 0 && sup.cur.cfg.metrics_listen != NULL) {
        char err[512], bound[MORPHD_ENDPOINT_TEXT + 8];
        /* on the main loop: the main process forks, so it has no threads */
        sup.counters.healthy = sup_healthy;
        sup.counters.ready = sup_ready;
        sup.counters.health_arg = &sup;
        sup.counters.isolation = "process";
        sup.metrics = morphd_metrics_http_start(sup.cur.cfg.metrics_listen,
                                                sup.stats, &sup.counters,
                                                &sup.loop, bound, sizeof bound,
                                                err, sizeof err);
        if (sup.metrics == NULL) {
            morphd_errors_add(errs, "%s: %s", path, err);
            rc = -1;
        } else {
            morphd_log(MORPH_LOG_INFO, "metrics on %s/metrics", bound);
            morphd_metrics_http_set_config(sup.metrics, &sup.cur.cfg);
        }
    }
    if (rc == 0) {
        char why[512];
        if (morphd_drop_privileges(&sup.cur.cfg, why, sizeof why) != 0) {
            morphd_errors_add(errs, "%s: %s", path, why);
            rc = -1;
        }
    }
    uv_signal_init(&sup.loop, &sup.sigchld);
    uv_signal_init(&sup.loop, &sup.sigterm);
    uv_signal_init(&sup.loop, &sup.sigint);
    uv_signal_init(&sup.loop, &sup.sighup);
    uv_signal_init(&sup.loop, &sup.sigusr1);
    sup.sigchld.data = sup.sigterm.data = sup.sigint.data = &sup;
    sup.sighup.data = sup.sigusr1.data = &sup;
    if (rc == 0) {
        uv_signal_start(&sup.sigchld, on_sigchld, SIGCHLD);
        uv_signal_start(&sup.sigterm, on_stop, SIGTERM);
        uv_signal_start(&sup.sigint, on_stop, SIGINT);
        if (start_generation(&sup) != 0) {
            morphd_errors_add(errs, "%s: the workers did not start (their "
                              "errors are above)", path);
            rc = -1;
            sup.stopping = true; /* reap them below */
        }
    }
    if (rc == 0) {
        uv_signal_start(&sup.sighup, on_signal, SIGHUP);
        uv_signal_start(&sup.sigusr1, on_signal, SIGUSR1);
        morphd_log(MORPH_LOG_INFO, "morphd %s started (pid %d, %u worker "
                   "process%s)", MORPH_VERSION, (int)getpid(), sup.n,
                   sup.n == 1 ? "" : "es");
        morphd_notify_ready(MORPHD_READY_STARTED, listening_text(&sup));
        uv_run(&sup.loop, UV_RUN_DEFAULT);
        morphd_log(MORPH_LOG_INFO, "morphd stopped");
    } else {
        for (unsigned k = 0; k < sup.n_slots; k++)
            if (sup.slots[k].pid > 0) {
                kill(sup.slots[k].pid, SIGKILL);
                waitpid(sup.slots[k].pid, NULL, 0);
            }
        morphd_admin_close(sup.admin);
        morphd_metrics_http_stop(sup.metrics);
    }
    close_sets(&sup, &sup.cur, true);
    /* Closing the signal handles restores their default actions, which
     * kill: a second SIGTERM (systemd's, a test's) must not end a morphd
     * that is exiting cleanly with "killed by SIGTERM" (server.c keeps its
     * handler for that). Blocked while the actions change, then ignored:
     * one that came meanwhile is dropped, not delivered by default. */
    sigset_t stops, old_mask;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGHUP);
    sigaddset(&stops, SIGUSR1);
    sigprocmask(SIG_BLOCK, &stops, &old_mask);
    uv_close((uv_handle_t *)&sup.sigchld, on_closed_noop);
    uv_close((uv_handle_t *)&sup.sigterm, on_closed_noop);
    uv_close((uv_handle_t *)&sup.sigint, on_closed_noop);
    uv_close((uv_handle_t *)&sup.sighup, on_closed_noop);
    uv_close((uv_handle_t *)&sup.sigusr1, on_closed_noop);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    uv_close((uv_handle_t *)&sup.kill_timer, on_closed_noop);
    uv_close((uv_handle_t *)&sup.heartbeat_timer, on_closed_noop);
    uv_close((uv_handle_t *)&sup.reload_timer, on_closed_noop);
    for (unsigned i = 0; i < sup.n; i++)
        uv_close((uv_handle_t *)&sup.restart[i], on_closed_noop);
    uv_run(&sup.loop, UV_RUN_DEFAULT);
    uv_loop_close(&sup.loop);
    morphd_config_free(&sup.cur.cfg);
    free(sup.slots);
    free(sup.crashes);
    free(sup.restart);
    if (rc != 0)
        return MORPH_EXIT_CONFIG;
    return sup.killed ? 1 : 0;
}
