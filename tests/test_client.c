/* The `morph` client against a real morphd: messages as arguments, lines
 * from a pipe, the interactive prompt on a terminal, and its errors. */
#include <arpa/inet.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static morphd_proc_t proc;
static char tcp_target[32], udp_target[32], http_target[48];

static void setup(void)
{
    char ini[512];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n[service up]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0 http://127.0.0.1:0\n"
             "transform = uppercase\nmax_message = 1K\n",
             PLUGIN_DIR);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    snprintf(tcp_target, sizeof tcp_target, "127.0.0.1:%d",
             morphd_proc_port(&proc, "up", "tcp", false));
    snprintf(udp_target, sizeof udp_target, "127.0.0.1:%d",
             morphd_proc_port(&proc, "up", "udp", false));
    snprintf(http_target, sizeof http_target, "http://127.0.0.1:%d/path",
             morphd_proc_port(&proc, "up", "http", false));
}

static void teardown(void) { morphd_proc_cleanup(&proc); }

static int client(const char *const *args, const char *input, char **out,
                  char **err)
{
    const char *argv[16] = {MORPH_BIN};
    int n = 1;
    for (; *args; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return run_program(argv, input, strlen(input), out, NULL, err);
}

START_TEST(message_as_arguments_tcp_and_udp)
{
    char *out, *err;
    const char *tcp[] = {tcp_target, "hello", "world", NULL};
    ck_assert_int_eq(client(tcp, "", &out, &err), 0);
    ck_assert_str_eq(out, "HELLO WORLD\n");
    free(out);
    free(err);
    const char *udp[] = {"--udp", udp_target, "straße", NULL};
    ck_assert_int_eq(client(udp, "", &out, &err), 0);
    ck_assert_str_eq(out, "STRASSE\n");
    free(out);
    free(err);
    const char *dash[] = {tcp_target, "--", "-n", "x", NULL};
    ck_assert_int_eq(client(dash, "", &out, &err), 0);
    ck_assert_str_eq(out, "-N X\n");
    free(out);
    free(err);
}
END_TEST

START_TEST(lines_from_a_pipe_each_answered)
{
    char *out, *err;
    const char *tcp[] = {tcp_target, NULL};
    ck_assert_int_eq(client(tcp, "one\ntwo\nthree\n", &out, &err), 0);
    ck_assert_str_eq(out, "ONE\nTWO\nTHREE\n");
    free(out);
    free(err);
    const char *udp[] = {"-u", udp_target, NULL};
    ck_assert_int_eq(client(udp, "one\ntwo", &out, &err), 0);
    ck_assert_str_eq(out, "ONE\nTWO\n");
    free(out);
    free(err);
}
END_TEST

/* On a terminal it is the textbook client: a prompt, then the reply. */
START_TEST(interactive_prompt_on_a_terminal)
{
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl(MORPH_BIN, MORPH_BIN, tcp_target, (char *)NULL);
        _exit(127);
    }
    char screen[4096] = "";
    size_t len = 0;
    /* read until the prompt shows, answer, read until the next prompt */
    int prompts_seen = 0;
    for (int step = 0; step < 200 && prompts_seen < 2; step++) {
        struct pollfd p = {master, POLLIN, 0};
        if (poll(&p, 1, 50) == 1) {
            ssize_t r = read(master, screen + len, sizeof screen - len - 1);
            if (r <= 0)
                break;
            len += (size_t)r;
            screen[len] = '\0';
        }
        int count = 0;
        for (char *at = screen; (at = strstr(at, "Input lowercase sentence: ")); at++)
            count++;
        if (count > prompts_seen) {
            prompts_seen = count;
            if (count == 1)
                ck_assert_int_eq(write(master, "hello tty\n", 10), 10);
        }
    }
    ck_assert_msg(strstr(screen, "HELLO TTY"), "screen: %s", screen);
    ck_assert_int_eq(prompts_seen, 2);
    ck_assert_int_eq(write(master, "\x04", 1), 1); /* Ctrl-D: end of input */
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(master);
}
END_TEST

START_TEST(errors_exit_1_with_a_reason)
{
    char *out, *err;
    /* a UDP socket that never answers: timeout after the retries */
    int silent = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(silent, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(silent, (struct sockaddr *)&a, &al);
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%d", ntohs(a.sin_port));
    const char *udp[] = {"-u", "-w", "0.1", "-r", "3", target, "hi", NULL};
    ck_assert_int_eq(client(udp, "", &out, &err), 1);
    ck_assert_msg(strstr(err, "no reply from 127.0.0.1 port") &&
                      strstr(err, "after 3 tries of 100 ms"), "%s", err);
    free(out);
    free(err);
    /* the three tries really were sent */
    char buf[8];
    int got = 0;
    while (recv(silent, buf, sizeof buf, MSG_DONTWAIT) > 0)
        got++;
    ck_assert_int_eq(got, 3);
    close(silent);

    /* TCP to a closed port */
    snprintf(target, sizeof target, "127.0.0.1:%d", ntohs(a.sin_port));
    const char *tcp[] = {target, "hi", NULL};
    ck_assert_int_eq(client(tcp, "", &out, &err), 1);
    ck_assert_msg(strstr(err, "cannot connect to 127.0.0.1 port"), "%s", err);
    free(out);
    free(err);

    const char *bad[] = {"--retries", "0", "x", NULL};
    ck_assert_int_eq(client(bad, "", &out, &err), 64);
    free(out);
    free(err);
}
END_TEST

/* Issue 24: morph http://HOST:PORT/PATH POSTs each message and prints the
 * response's body; a status other than 200 exits 1 and says which. */
START_TEST(http_targets)
{
    char *out, *err;
    const char *args[] = {http_target, "over", "http", NULL};
    ck_assert_int_eq(client(args, "", &out, &err), 0);
    ck_assert_str_eq(out, "OVER HTTP\n");
    free(out);
    free(err);
    const char *lines[] = {http_target, NULL}; /* one connection, kept */
    ck_assert_int_eq(client(lines, "one\ntwo\n", &out, &err), 0);
    ck_assert_str_eq(out, "ONE\nTWO\n");
    free(out);
    free(err);
    char big[1100];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *over[] = {http_target, big, NULL};
    ck_assert_int_eq(client(over, "", &out, &err), 1);
    ck_assert_msg(strstr(err, "morph: HTTP 413 Content Too Large"), "%s", err);
    free(out);
    free(err);
    const char *mixed[] = {"--udp", http_target, "x", NULL};
    ck_assert_int_eq(client(mixed, "", &out, &err), 64);
    ck_assert_msg(strstr(err, "http:// is HTTP/1.1 over TCP"), "%s", err);
    free(out);
    free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, message_as_arguments_tcp_and_udp);
    tcase_add_test(tc, lines_from_a_pipe_each_answered);
    tcase_add_test(tc, interactive_prompt_on_a_terminal);
    tcase_add_test(tc, errors_exit_1_with_a_reason);
    tcase_add_test(tc, http_targets);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
