/*
 * mhd_symbols.h -- libmicrohttpd, loaded when metrics_listen is first set
 * rather than linked: the library and the TLS stack it brings (gnutls,
 * nettle, hogweed, gmp, p11-kit, idn2, unistring, tasn1, ffi) cost every
 * morphd start about 1.7 ms (docs/benchmarks.md), and most morphds serve
 * no metrics. The types come from <microhttpd.h>, so a call through these
 * pointers is checked as a direct call would be.
 */
#ifndef MORPHD_MHD_SYMBOLS_H
#define MORPHD_MHD_SYMBOLS_H

#include <stddef.h>

#include <microhttpd.h>

typedef struct morphd_mhd {
    __typeof__(&MHD_start_daemon) start_daemon;
    __typeof__(&MHD_stop_daemon) stop_daemon;
    __typeof__(&MHD_get_daemon_info) get_daemon_info;
    __typeof__(&MHD_run) run;
    __typeof__(&MHD_get_timeout) get_timeout;
    __typeof__(&MHD_create_response_from_buffer) create_response_from_buffer;
    __typeof__(&MHD_add_response_header) add_response_header;
    __typeof__(&MHD_queue_response) queue_response;
    __typeof__(&MHD_destroy_response) destroy_response;
} morphd_mhd_t;

/* Loads the library once (later calls return the same table; thread-safe).
 * NULL with the reason in err when it cannot be: the package that ships it
 * (libmicrohttpd12) is missing, or a symbol is. */
const morphd_mhd_t *morphd_mhd_load(char *err, size_t err_size);

#endif
