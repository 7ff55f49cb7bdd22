/* no_sandbox_kernel PROGRAM ARGS...: runs PROGRAM as on a kernel without
 * Landlock or seccomp filters -- landlock_create_ruleset and seccomp fail
 * with ENOSYS, prctl(PR_SET_SECCOMP) with EINVAL -- so that the test of
 * morphd's warnings runs the real code path on this kernel. */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: no_sandbox_kernel PROGRAM ARGS...\n");
        return 2;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = ctx == NULL ? -1 : 0;
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
                              SCMP_SYS(landlock_create_ruleset), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(seccomp), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(prctl), 1,
                              (struct scmp_arg_cmp){.arg = 0,
                                                    .op = SCMP_CMP_EQ,
                                                    .datum_a = PR_SET_SECCOMP,
                                                    .datum_b = 0});
    if (rc == 0)
        rc = seccomp_load(ctx); /* sets no_new_privs itself */
    if (rc != 0) {
        fprintf(stderr, "no_sandbox_kernel: cannot load the filter (%d)\n", rc);
        return 2;
    }
    execv(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
