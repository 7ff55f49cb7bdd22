/*
 * privileges.h -- leaving root once the sockets are bound: `user` and
 * `group` in [morphd], and the refusal to go on as root without them
 * unless `allow_root = yes`.
 */
#ifndef MORPHD_PRIVILEGES_H
#define MORPHD_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf/config.h"

/* What morphd_drop_privileges would refuse, found without changing
 * anything: running as root with neither `user` nor `allow_root`, or a
 * user or group that does not exist. Returns 0, or -1 with the reason.
 * `morphd -t` and start-up check this before any socket is opened. */
int morphd_privileges_check(const morphd_config_t *cfg, char *err,
                            size_t err_size);

/* Whether morphd, running as root, will switch to a user (resolved by
 * morphd_privileges_check): then `uid` and `gid` are that user's, for the
 * files it must own (the admin socket). */
bool morphd_privileges_target(uid_t *uid, gid_t *gid);

/* When running as root: switches to cfg->user / cfg->group, or refuses
 * (returns -1 with the reason) when no user is set and !allow_root. When
 * not root there is nothing to drop and it returns 0. */
int morphd_drop_privileges(const morphd_config_t *cfg, char *err,
                           size_t err_size);

#endif
