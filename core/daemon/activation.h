/*
 * activation.h -- systemd socket activation: the listening sockets a
 * socket unit (or systemd-socket-activate) passed in LISTEN_FDS. Each
 * one whose address is a configured endpoint's -- same transport, address
 * and port, or unix:// path -- is adopted by that endpoint's listener
 * instead of a socket of morphd's own; endpoints with none are bound as
 * usual, and sockets that match no endpoint are closed with a warning.
 * While systemd holds the sockets, `systemctl restart morphd` refuses no
 * connection: they wait in the socket's queue for the new morphd.
 */
#ifndef MORPHD_ACTIVATION_H
#define MORPHD_ACTIVATION_H

#include "base/endpoint.h"

/* Takes the sockets passed to this process (and unsets LISTEN_FDS, so that
 * nothing started from morphd inherits them). Returns how many. */
int morphd_activation_init(void);

/* The passed socket for `ep`, or -1. The caller owns it from then on. */
int morphd_activation_take(const morphd_endpoint_t *ep);

/* Closes the passed sockets no endpoint took, logging each. */
void morphd_activation_close_unused(void);

#endif
