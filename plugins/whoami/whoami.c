/*
 * whoami -- answers every message with who is asking, for operators:
 *
 *     TRANSPORT ADDRESS PORT SERVICE
 *
 * e.g. "tcp 192.0.2.7 51234 uppercase": the transport, the client's address
 * and port as morphd sees them (after the PROXY protocol, the proxied
 * client), and the service. Over unix:// the client has no address, and
 * its process follows: "unix - 0 uppercase uid=1000 gid=1000 pid=4242". One line of words separated by spaces; in line
 * framing the client's line ending follows, over UDP a "\n". The message
 * itself is not looked at. Over UDP the reply is held to
 * udp_max_reply_ratio like any other: with the default ratio of 4, send a
 * datagram of 8 bytes or more (a 1-byte probe gets no answer).
 *
 * Demonstrates the connection context (morph_host_t.conn_info).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/plugin.h>

static int whoami_create(const morph_host_t *host, const morph_option_t *opts,
                         size_t n_opts, void **instance, char *err,
                         size_t err_size)
{
    (void)opts;
    (void)n_opts;
    (void)err;
    (void)err_size;
    *instance = (void *)host; /* all it needs: conn_info */
    return MORPH_OK;
}

static int whoami_transform(void *instance, void *conn, const morph_msg_t *msg,
                            morph_out_t *out)
{
    const morph_host_t *host = instance;
    (void)conn;
    if ((msg->flags & MORPH_MSG_END) && msg->len == 0)
        return morph_out_no_reply(out);
    /* peer_uid stays -1 where a host does not fill it */
    morph_conn_info_t info = {.struct_size = sizeof info, .peer_uid = -1};
    if (host->conn_info(host, msg->conn, &info) != MORPH_OK)
        return morph_out_fail(out, "no connection information");
    char process[96] = "";
    if (info.peer_uid >= 0)
        snprintf(process, sizeof process, " uid=%lld gid=%lld pid=%lld",
                 (long long)info.peer_uid, (long long)info.peer_gid,
                 (long long)info.peer_pid);
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s %u %s%s%s", info.transport,
                     info.peer_address[0] ? info.peer_address : "-",
                     (unsigned)info.peer_port, info.service, process,
                     strcmp(info.transport, "udp") == 0 ? "\n" : "");
    if (n < 0 || (size_t)n >= sizeof line ||
        morph_out_append(out, line, (size_t)n) != MORPH_OK)
        return morph_out_fail(out, "reply too long");
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "whoami",
    .version = MORPH_VERSION,
    .description = "answers each message with TRANSPORT ADDRESS PORT SERVICE",
    .create = whoami_create,
    .transform = whoami_transform,
    .options = (const morph_option_decl_t[]){MORPH_OPTIONS_END},
};
