/*
 * notify.c -- sd_notify(3) messages for notify.h, when built with
 * libsystemd (MORPHD_HAVE_SYSTEMD); empty functions otherwise.
 */
#include "daemon/notify.h"

#ifdef MORPHD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void morphd_notify_ready(void) { sd_notify(0, "READY=1\nSTATUS=serving"); }
void morphd_notify_reloading(void) { sd_notify(0, "RELOADING=1"); }
void morphd_notify_stopping(void) { sd_notify(0, "STOPPING=1"); }
#else
void morphd_notify_ready(void) {}
void morphd_notify_reloading(void) {}
void morphd_notify_stopping(void) {}
#endif
