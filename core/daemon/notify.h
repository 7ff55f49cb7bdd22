/*
 * notify.h -- tells systemd (Type=notify) what morphd is doing: READY=1
 * once every listener is open, RELOADING=1 and STOPPING=1. A no-op when
 * morphd is not run by systemd ($NOTIFY_SOCKET unset).
 */
#ifndef MORPHD_NOTIFY_H
#define MORPHD_NOTIFY_H

void morphd_notify_ready(void);
void morphd_notify_reloading(void);
void morphd_notify_stopping(void);

#endif
