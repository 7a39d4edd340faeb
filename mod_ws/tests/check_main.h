/* The main() every unit test program shares: run one Check suite with APR
 * initialised, exit non-zero when a test failed. */
#ifndef WS_TEST_CHECK_MAIN_H
#define WS_TEST_CHECK_MAIN_H

#include <check.h>

int ws_test_main(Suite *suite);

#endif /* WS_TEST_CHECK_MAIN_H */
