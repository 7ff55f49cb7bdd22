/* Unit tests for the plugin, with Check and <morph/testing.h>. */
#include <check.h>
#include <stdlib.h>

#include <morph/testing.h>

START_TEST(transforms_a_message)
{
    char err[512];
    morph_test_t *t = morph_test_load(PLUGIN_DIR, PLUGIN_NAME, NULL, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    char *out = morph_test_transform(t, "Hello, World");
    ck_assert_str_eq(out, "hELLO, wORLD"); /* CHANGE ME */
    free(out);
    morph_test_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create(PLUGIN_NAME);
    TCase *tc = tcase_create("transform");
    tcase_add_test(tc, transforms_a_message);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
