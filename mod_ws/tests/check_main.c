/* The main() every unit test program shares (see check_main.h). */
#include <stdlib.h>

#include <apr_general.h>

#include "check_main.h"

int ws_test_main(Suite *suite)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
