/*
 * notify.h -- tells systemd (Type=notify) what morphd is doing: READY=1
 * once every listener is open and again after each reload, RELOADING=1
 * and STOPPING=1. A no-op when morphd is not run by systemd
 * ($NOTIFY_SOCKET unset).
 *
 * READY=1 comes with what a program can read rather than parse out of the
 * log (the tests do; sd_notify(3) keeps X_ names for a service's own):
 *   STATUS=serving | serving (reloaded) | serving the previous
 *          configuration: the reload failed      (systemctl status shows it)
 *   X_MORPHD_RELOAD=ok | failed                  (after a reload only)
 *   X_MORPHD_LISTENING=SERVICE=ENDPOINT ...      (as bound: port 0 resolved;
 *                                                 one per listener, by spaces)
 */
#ifndef MORPHD_NOTIFY_H
#define MORPHD_NOTIFY_H

#include <stddef.h>

typedef enum morphd_ready_kind {
    MORPHD_READY_STARTED,
    MORPHD_READY_RELOADED,
    MORPHD_READY_RELOAD_FAILED,
} morphd_ready_kind_t;

/* `listening`: "SERVICE=ENDPOINT" items separated by spaces (NULL: none). */
void morphd_notify_ready(morphd_ready_kind_t kind, const char *listening);
void morphd_notify_reloading(void);
void morphd_notify_stopping(void);

/* Appends "SERVICE=ENDPOINT" to the list in buf (a space before it unless
 * it is the first), cut at size; for the callers that build `listening`. */
void morphd_notify_listening_add(char *buf, size_t size, const char *service,
                                 const char *endpoint);

#endif
