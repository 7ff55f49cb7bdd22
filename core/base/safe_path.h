/*
 * safe_path.h -- file-system steps that morphd takes as root (before it
 * switches to `user`) without following a name someone else can change:
 * the writers of a folder checked, a socket file made and given its owner
 * and mode inside a private folder, and a log file opened without following
 * a link. Errors: 0 or -1, with a reason a person can act on in `why`.
 */
#ifndef MORPHD_SAFE_PATH_H
#define MORPHD_SAFE_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Like sshd's StrictModes: refuses `path` when it, or any folder above it,
 * is owned or can be written by someone other than root or `allowed` (a
 * uid). A world-writable folder with the sticky bit is accepted from
 * `sticky_from` levels up (0: `path` itself, 1: its folder, ...): others
 * cannot rename or remove what is in it, but can add names beside it --
 * which matters for a plugin folder (NAME.lua beside NAME.so), so the
 * loader passes 2. stat() follows a link at `path`: the caller checks the
 * file it names (its realpath) as well. */
int morphd_path_check_writers(const char *path, uid_t allowed,
                              int sticky_from, char *why, size_t why_size);

/* The uid that morphd switches to from root (privileges.c sets it when it
 * resolves `user`): the one besides root that may own or write the folders
 * morphd_path_check_folder checks. */
void morphd_path_trust_user(uid_t uid);

/* The same check for the folder that holds `path` (a socket or log file
 * that may not exist yet), made only when morphd runs as root: someone
 * else who could write the folder could rename or remove what root puts
 * there. A sticky folder (/tmp) is accepted. */
int morphd_path_check_folder(const char *path, char *why, size_t why_size);

/* Binds the AF_UNIX socket `fd` at `path` with `mode` and, where not -1,
 * owner `uid` and group `gid`. The file is made, given its mode and owner
 * in a folder of its own that only this process can write, then renamed
 * into place (never over an existing name): no step acts on a name that
 * someone else could have replaced, and no client can connect under
 * looser permissions. `made` receives the file's stat. */
int morphd_socket_file_bind(int fd, const char *path, mode_t mode, uid_t uid,
                            gid_t gid, struct stat *made, char *why,
                            size_t why_size);

/* Opens `path` to append (created with mode 0640 when missing), never
 * through a link at its last part, and checks what was opened: a regular
 * file with one name, a FIFO or a character device. Returns the
 * descriptor (non-blocking, close-on-exec), or -1 with errno set. */
int morphd_file_open_append(const char *path, char *why, size_t why_size);

#endif
