/*
 * access_log.h -- `access_log = FILE | syslog | off`: one line per stream
 * connection when it closes (and per datagram with access_log_udp), and
 * one per HTTP request when it is answered. The
 * serving loops only format a line and copy it into a bounded queue; a
 * thread of the log's own writes it. So a slow, full or unwritable disk
 * costs log lines -- dropped, counted, and reported at most once a minute
 * -- and never blocks a loop or stops the service.
 */
#ifndef MORPHD_ACCESS_LOG_H
#define MORPHD_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct morphd_access_log morphd_access_log_t;

/* Bytes of lines the queue holds while the writer catches up. */
#define MORPHD_ACCESS_LOG_QUEUE (1024 * 1024)

/* Starts the writer for `target`: an absolute file name (opened for
 * appending, created 0640) or "syslog". A file that cannot be opened now
 * is not an error: morphd serves, counts the lines lost, and tries again
 * at each reopen. Returns NULL only when out of memory or threads. */
morphd_access_log_t *morphd_access_log_open(const char *target, bool json);

/* What one connection or datagram was, for its line. */
typedef struct morphd_access_entry {
    const char *transport;      /* "tcp", "tls", "unix", "udp" */
    const char *service;
    const struct sockaddr *client; /* NULL: unknown; AF_UNIX: see uid/pid */
    long long uid, pid;         /* unix:// clients; -1 when unknown */
    uint64_t bytes_in, bytes_out, messages;
    uint64_t duration_ms;
    const char *end;            /* how it ended: "closed", "idle", ... */
    /* an HTTP request's line instead (status > 0): its method and target
     * (the client's bytes: visible ASCII, as http1.c takes them), status,
     * and bytes_in/bytes_out its body's and its response's; `messages`,
     * `duration_ms` and `end` are its connection's line's */
    int status;
    const char *method, *target;
    size_t method_len, target_len;
} morphd_access_entry_t;

/* Formats the entry and queues its line; never blocks (a full queue drops
 * the line, counted). Any thread. */
void morphd_access_log_write(morphd_access_log_t *a,
                             const morphd_access_entry_t *e);

/* Asks the writer to reopen the file (SIGHUP, for logrotate): the lines
 * queued after this call go to the new file. */
void morphd_access_log_reopen(morphd_access_log_t *a);

/* Lines lost so far (queue full, or the file could not be written). */
uint64_t morphd_access_log_dropped(const morphd_access_log_t *a);

/* Writes what is queued (a writer held up by a pipe nobody reads gives up
 * on each chunk after 200 ms), stops the writer, frees. */
void morphd_access_log_close(morphd_access_log_t *a);

#endif
