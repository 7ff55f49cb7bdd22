/*
 * status_page.h -- the HTML status page served at `/` on metrics_listen:
 * services, endpoints, connections, messages per second, per-plugin
 * latency histograms, reloads and worker restarts, from /stats.json.
 */
#ifndef MORPHD_STATUS_PAGE_H
#define MORPHD_STATUS_PAGE_H

#include <stddef.h>

extern const char morphd_status_page[];
extern const size_t morphd_status_page_len;

#endif
