/*
 * A plugin author's test that happens to define names morphd uses inside
 * the test library (issue 22): it must link and run. The library's
 * objects are linked into one and every name but morph_test_* made local
 * (CMakeLists.txt, morph_testing), so the author's definitions are theirs
 * alone: these two are called by the test, and the library goes on
 * logging and loading with its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/testing.h>

static int level_set = -1;

/* morphd's own names, as an author might pick them */
void morphd_log_set_level(int level);
void morphd_log_set_level(int level) { level_set = level; }
int morphd_chain_run(void);
int morphd_chain_run(void) { return 42; }

int main(void)
{
    char err[512];
    morph_test_t *t = morph_test_load(PLUGIN_DIR, "reverse", NULL, err,
                                      sizeof err);
    if (t == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    char *out = morph_test_transform(t, "abc\n");
    int ok = out != NULL && strcmp(out, "cba\n") == 0;
    free(out);
    morph_test_free(t);
    morphd_log_set_level(3);
    ok = ok && level_set == 3 && morphd_chain_run() == 42;
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
