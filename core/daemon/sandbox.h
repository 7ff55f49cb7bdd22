/*
 * sandbox.h -- `[morphd] sandbox = on`: what a plugin may do, bounded by
 * the kernel rather than by trust. Two layers, each applied once:
 *
 *  - Landlock (morphd_sandbox_landlock), before any thread exists and
 *    before plugins are loaded, so that every thread -- and every plugin
 *    call, create() included -- runs inside it. Read-only: the plugin
 *    folders, the config file's folder, the TLS files' folders and the
 *    system libraries (for a plugin's dependencies); write: the folders of
 *    the access log, the admin socket and unix:// endpoints. Outbound TCP
 *    connections are refused.
 *  - seccomp-bpf through libseccomp (morphd_sandbox_seccomp), once the
 *    sockets are bound and root is dropped, on every thread at once: an
 *    allow-list of what libuv, OpenSSL, ICU and glibc need. Anything else
 *    -- execve, fork, ptrace, mount, ... -- fails with EPERM and is logged
 *    once per system call with the plugin and service that made it.
 *
 * A kernel without Landlock or seccomp gets a warning, and morphd goes on
 * without that layer. Paths a reload brings that were not allowed at start
 * (a new plugin folder, new TLS files elsewhere) stay out of reach until a
 * restart.
 */
#ifndef MORPHD_SANDBOX_H
#define MORPHD_SANDBOX_H

#include <stddef.h>

#include "conf/config.h"

/* Restricts the calling thread -- which must be the only one -- and every
 * thread and process it makes later to the paths `cfg` needs;
 * `config_path` is the file SIGHUP re-reads (NULL: none), and the plugin
 * folders are cfg's plugin_dir (or `default_plugin_dir`). Returns 0
 * (applied, or unsupported: warned), or -1 with the reason in err. */
int morphd_sandbox_landlock(const morphd_config_t *cfg,
                            const char *config_path,
                            const char *default_plugin_dir, char *err,
                            size_t err_size);

/* Loads the system call filter on every thread of the process. Returns 0
 * (applied, or unsupported: warned), or -1 with the reason in err. */
int morphd_sandbox_seccomp(char *err, size_t err_size);

#endif
