/*
 * access_log.c -- the access log (access_log.h). Lines go into a ring of
 * MORPHD_ACCESS_LOG_QUEUE bytes under a mutex, whole or not at all; the
 * writer thread takes what is there and writes it with the lock released.
 * The file descriptor is non-blocking, so a writer stuck on a pipe or a
 * FIFO still sees a stop or a reopen within a poll's timeout.
 */
#include "net/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "base/endpoint.h"
#include "base/log.h"
#include "base/safe_path.h"

#define CHUNK (64 * 1024) /* what the writer takes at once */

struct morphd_access_log {
    char *path; /* NULL: syslog */
    bool json;
    int fd;     /* -1: not open (or syslog) */

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    char *ring;
    size_t head, len;  /* the queued bytes: ring[head .. head+len) mod size */
    uint64_t queued, taken; /* bytes queued and taken by the writer, ever */
    uint64_t reopen_at;     /* reopen once `taken` reaches it */
    bool stop, reopen;
    uint64_t dropped;  /* atomic */
    uint64_t lost_reported; /* by the writer: dropped when last reported */
    time_t last_report;
};

/* Never through a link at its name, and only into a file with one name:
 * the log may be opened as root, in a folder the service user can write. */
static int open_file(const char *path, char *why, size_t why_size)
{
    return morphd_file_open_append(path, why, why_size);
}

/* Reports lost lines at most once a minute (the writer's thread). */
static void report_lost(morphd_access_log_t *a, const char *why)
{
    uint64_t lost = __atomic_load_n(&a->dropped, __ATOMIC_RELAXED);
    time_t now = time(NULL);
    if (lost == a->lost_reported || (a->last_report != 0 && now - a->last_report < 60))
        return;
    morphd_log(MORPH_LOG_WARN, "access log %s: %llu line%s lost so far%s%s "
               "(reported at most once a minute; serving goes on)",
               a->path ? a->path : "(syslog)", (unsigned long long)lost,
               lost == 1 ? "" : "s", why ? ": " : "", why ? why : "");
    a->lost_reported = lost;
    a->last_report = now;
}

static void do_reopen(morphd_access_log_t *a)
{
    if (a->path == NULL)
        return;
    char why[256];
    int fd = open_file(a->path, why, sizeof why);
    if (fd < 0) {
        /* keep the old one (logrotate's renamed file) rather than nothing */
        morphd_log(MORPH_LOG_WARN, "access log %s: cannot reopen: %s%s",
                   a->path, why,
                   a->fd >= 0 ? "; writing on to the file open before" : "");
        return;
    }
    if (a->fd >= 0)
        close(a->fd);
    a->fd = fd;
}

/* Writes n bytes to the file; returns false when they are lost, with
 * the reason in why. */
static bool write_all(morphd_access_log_t *a, const char *p, size_t n,
                      char *why, size_t why_size)
{
    while (n > 0) {
        if (a->fd < 0) {
            snprintf(why, why_size, "the file is not open");
            return false;
        }
        ssize_t w = write(a->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) { /* a pipe that is not read */
            struct pollfd pf = {.fd = a->fd, .events = POLLOUT};
            if (poll(&pf, 1, 200) == 0 &&
                __atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
                snprintf(why, why_size, "not taken before the end");
                return false;
            }
            continue;
        }
        snprintf(why, why_size, "%s", w < 0 ? strerror(errno) : "short write");
        return false;
    }
    return true;
}

/* Counts the lines in p[0..n) (each ends in \n). */
static uint64_t lines_in(const char *p, size_t n)
{
    uint64_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        k++;
    return k;
}

static void *writer(void *arg)
{
    morphd_access_log_t *a = arg;
    char *chunk = malloc(CHUNK);
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (a->len == 0 && !a->stop && !a->reopen)
            pthread_cond_wait(&a->wake, &a->lock);
        if (a->reopen && a->taken == a->reopen_at) {
            a->reopen = false;
            pthread_mutex_unlock(&a->lock);
            do_reopen(a);
            pthread_mutex_lock(&a->lock);
            continue;
        }
        if (a->len == 0 && a->stop)
            break;
        /* whole lines only, so syslog gets one message per line */
        size_t n = a->len < CHUNK ? a->len : CHUNK;
        if (a->reopen && a->reopen_at - a->taken < n) /* the old file's last */
            n = (size_t)(a->reopen_at - a->taken);
        for (size_t i = 0; i < n; i++)
            chunk[i] = a->ring[(a->head + i) % MORPHD_ACCESS_LOG_QUEUE];
        while (n > 0 && chunk[n - 1] != '\n')
            n--;
        a->head = (a->head + n) % MORPHD_ACCESS_LOG_QUEUE;
        a->len -= n;
        a->taken += n;
        pthread_mutex_unlock(&a->lock);
        if (a->path == NULL) {
            for (char *p = chunk, *e = chunk + n, *nl; p < e; p = nl + 1) {
                nl = memchr(p, '\n', (size_t)(e - p));
                syslog(LOG_INFO, "%.*s", (int)(nl - p), p);
            }
        } else {
            char why[128];
            if (!write_all(a, chunk, n, why, sizeof why)) {
                __atomic_fetch_add(&a->dropped, lines_in(chunk, n),
                                   __ATOMIC_RELAXED);
                report_lost(a, why);
            }
        }
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    free(chunk);
    return NULL;
}

/* Frees a log whose writer is not running (ended, or never started). */
static void free_log(morphd_access_log_t *a)
{
    if (a->fd >= 0)
        close(a->fd);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    free(a->ring);
    free(a->path);
    free(a);
}

morphd_access_log_t *morphd_access_log_open(const char *target, bool json)
{
    morphd_access_log_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->json = json;
    a->fd = -1;
    a->ring = malloc(MORPHD_ACCESS_LOG_QUEUE);
    if (strcmp(target, "syslog") != 0)
        a->path = strdup(target);
    if (a->ring == NULL || (strcmp(target, "syslog") != 0 && a->path == NULL)) {
        free(a->ring);
        free(a->path);
        free(a);
        return NULL;
    }
    if (a->path != NULL) {
        char why[256];
        a->fd = open_file(a->path, why, sizeof why);
        if (a->fd < 0)
            morphd_log(MORPH_LOG_WARN, "access log %s: cannot open: %s; "
                       "serving without it (SIGHUP tries again)", a->path,
                       why);
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    if (pthread_create(&a->thread, NULL, writer, a) != 0) {
        free_log(a);
        return NULL;
    }
    return a;
}

/* "1.2.3.4:5678", "[::1]:5678", "uid=1000 pid=42", "-" */
static void client_text(const morphd_access_entry_t *e, char *buf, size_t size)
{
    const struct sockaddr *sa = e->client;
    if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
        morphd_sockaddr_format(sa, buf, size);
    } else if (e->uid >= 0) {
        snprintf(buf, size, "uid=%lld pid=%lld", e->uid, e->pid);
    } else {
        snprintf(buf, size, "-");
    }
}

/* An HTTP request's method or target, at most 256 bytes of it (a longer
 * one ends in "..."), with " and \\ escaped for JSON; "-" when empty. */
static void request_text(const char *p, size_t len, bool json, char *buf,
                         size_t size)
{
    size_t n = 0, cut = len > 256 ? 256 : len;
    if (len == 0)
        p = "-", len = cut = 1;
    for (size_t i = 0; i < cut && n + 6 < size; i++) {
        if (json && (p[i] == '"' || p[i] == '\\'))
            buf[n++] = '\\';
        buf[n++] = p[i];
    }
    if (cut < len && n + 4 < size)
        memcpy(buf + n, "...", 3), n += 3;
    buf[n] = '\0';
}

/* An HTTP request's line. */
static int request_line(const morphd_access_log_t *a,
                        const morphd_access_entry_t *e, const char *when,
                        const char *client, char *line, size_t size)
{
    char method[80], target[560];
    request_text(e->method, e->method_len, a->json, method, sizeof method);
    request_text(e->target, e->target_len, a->json, target, sizeof target);
    return a->json
               ? snprintf(line, size,
                          "{\"time\":\"%s\",\"transport\":\"%s\",\"client\":"
                          "\"%s\",\"service\":\"%s\",\"method\":\"%s\","
                          "\"path\":\"%s\",\"status\":%d,\"bytes_in\":%llu,"
                          "\"bytes_out\":%llu}\n",
                          when, e->transport, client, e->service, method,
                          target, e->status, (unsigned long long)e->bytes_in,
                          (unsigned long long)e->bytes_out)
               : snprintf(line, size,
                          "%s transport=%s client=%s service=%s method=%s "
                          "path=%s status=%d bytes_in=%llu bytes_out=%llu\n",
                          when, e->transport, client, e->service, method,
                          target, e->status, (unsigned long long)e->bytes_in,
                          (unsigned long long)e->bytes_out);
}

void morphd_access_log_write(morphd_access_log_t *a,
                             const morphd_access_entry_t *e)
{
    char line[1024], when[40], client[80];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);
    client_text(e, client, sizeof client);
    /* service names and the rest are plain ([A-Za-z0-9_-], digits, our
     * own words): nothing here needs JSON escaping */
    int n = e->status > 0
                ? request_line(a, e, when, client, line, sizeof line)
            : a->json
                ? snprintf(line, sizeof line,
                           "{\"time\":\"%s\",\"transport\":\"%s\",\"client\":"
                           "\"%s\",\"service\":\"%s\",\"bytes_in\":%llu,"
                           "\"bytes_out\":%llu,\"messages\":%llu,"
                           "\"duration_ms\":%llu,\"end\":\"%s\"}\n",
                           when, e->transport, client, e->service,
                           (unsigned long long)e->bytes_in,
                           (unsigned long long)e->bytes_out,
                           (unsigned long long)e->messages,
                           (unsigned long long)e->duration_ms, e->end)
                : snprintf(line, sizeof line,
                           "%s transport=%s client=%s service=%s bytes_in=%llu "
                           "bytes_out=%llu messages=%llu duration_ms=%llu "
                           "end=%s\n",
                           when, e->transport, client, e->service,
                           (unsigned long long)e->bytes_in,
                           (unsigned long long)e->bytes_out,
                           (unsigned long long)e->messages,
                           (unsigned long long)e->duration_ms, e->end);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    pthread_mutex_lock(&a->lock);
    if (a->len + (size_t)n > MORPHD_ACCESS_LOG_QUEUE) {
        pthread_mutex_unlock(&a->lock);
        __atomic_fetch_add(&a->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    size_t tail = (a->head + a->len) % MORPHD_ACCESS_LOG_QUEUE;
    size_t first = MORPHD_ACCESS_LOG_QUEUE - tail < (size_t)n
                       ? MORPHD_ACCESS_LOG_QUEUE - tail
                       : (size_t)n;
    memcpy(a->ring + tail, line, first);
    memcpy(a->ring, line + first, (size_t)n - first);
    a->len += (size_t)n;
    a->queued += (size_t)n;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
}

void morphd_access_log_reopen(morphd_access_log_t *a)
{
    pthread_mutex_lock(&a->lock);
    a->reopen = true;
    a->reopen_at = a->queued; /* what is queued now goes to the old file */
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
}

uint64_t morphd_access_log_dropped(const morphd_access_log_t *a)
{
    return __atomic_load_n(&a->dropped, __ATOMIC_RELAXED);
}

void morphd_access_log_close(morphd_access_log_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    __atomic_store_n(&a->stop, true, __ATOMIC_RELEASE);
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    free_log(a);
}
