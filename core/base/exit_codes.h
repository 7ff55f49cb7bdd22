/*
 * exit_codes.h -- the exit statuses of morphd and morph, defined once.
 * They follow sysexits.h where one fits, so scripts and systemd
 * (RestartPreventExitStatus=) can tell a bad configuration from a crash.
 */
#ifndef MORPH_EXIT_CODES_H
#define MORPH_EXIT_CODES_H

#define MORPH_EXIT_OK 0
#define MORPH_EXIT_FAILURE 1  /* the work failed: a message, a connection */
#define MORPH_EXIT_USAGE 64   /* EX_USAGE: bad command line */
#define MORPH_EXIT_CONFIG 78  /* EX_CONFIG: bad configuration or plugin */

#endif
