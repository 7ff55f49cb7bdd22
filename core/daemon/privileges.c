/*
 * privileges.c -- see privileges.h. The order is the classic one:
 * supplementary groups, then the group, then the user, then a check that
 * root cannot be regained.
 */
#include "daemon/privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/safe_path.h"

#define ROOT_REFUSED                                                           \
    "morphd refuses to run as root: set user = NAME in [morphd] to switch "   \
    "to that user once the sockets are bound (or allow_root = yes to stay "   \
    "root)"

/* The user and group, looked up by the check: the drop then needs no
 * /etc/passwd, which sandbox = on has put out of reach by then. */
static struct {
    bool resolved;
    uid_t uid;
    gid_t gid;
} ids;

int morphd_privileges_check(const morphd_config_t *cfg, char *err,
                            size_t err_size)
{
    if (geteuid() != 0)
        return 0; /* nothing to drop, nothing to refuse */
    ids.resolved = false;
    if (cfg->user == NULL) {
        if (cfg->allow_root)
            return 0;
        snprintf(err, err_size, ROOT_REFUSED);
        return -1;
    }
    struct passwd *pw = getpwnam(cfg->user);
    if (pw == NULL) {
        snprintf(err, err_size, "user = %s: no such user", cfg->user);
        return -1;
    }
    ids.uid = pw->pw_uid;
    ids.gid = pw->pw_gid;
    if (cfg->group != NULL) {
        struct group *gr = getgrnam(cfg->group);
        if (gr == NULL) {
            snprintf(err, err_size, "group = %s: no such group", cfg->group);
            return -1;
        }
        ids.gid = gr->gr_gid;
    }
    ids.resolved = true;
    morphd_path_trust_user(ids.uid);
    return 0;
}

bool morphd_privileges_target(uid_t *uid, gid_t *gid)
{
    if (geteuid() != 0 || !ids.resolved)
        return false;
    *uid = ids.uid;
    *gid = ids.gid;
    return true;
}

int morphd_drop_privileges(const morphd_config_t *cfg, char *err,
                           size_t err_size)
{
    if (geteuid() != 0) {
        if (cfg->user != NULL)
            morphd_log(MORPH_LOG_INFO, "not started as root: user = %s has "
                       "nothing to drop", cfg->user);
        return 0;
    }
    if (cfg->user == NULL) {
        if (cfg->allow_root) {
            morphd_log(MORPH_LOG_WARN, "running as root (allow_root = yes)");
            return 0;
        }
        snprintf(err, err_size, ROOT_REFUSED);
        return -1;
    }
    if (!ids.resolved && morphd_privileges_check(cfg, err, err_size) != 0)
        return -1;
    uid_t uid = ids.uid;
    gid_t gid = ids.gid;
    if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        snprintf(err, err_size, "cannot switch to user %s: %s", cfg->user,
                 strerror(errno));
        return -1;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(err, err_size, "could regain root after switching to %s",
                 cfg->user);
        return -1;
    }
    morphd_log(MORPH_LOG_INFO, "switched to user %s (uid %u, gid %u)",
               cfg->user, (unsigned)uid, (unsigned)gid);
    return 0;
}
