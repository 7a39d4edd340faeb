/* Unit tests of ws_sql: the parameter count the dbd handler checks before
 * binding (it must equal apr_dbd_prepare's, or the driver reads past the
 * values), whether a statement returns rows, and SQLite's column-name
 * probe.
 */
#include <string.h>

#include <check.h>
#include <apr_general.h>
#include <apr_pools.h>

#include "check_main.h"
#include "ws_sql.h"

START_TEST(test_params)
{
    ck_assert_int_eq(ws_sql_params(""), 0);
    ck_assert_int_eq(ws_sql_params("SELECT 1"), 0);
    ck_assert_int_eq(ws_sql_params("SELECT * FROM t WHERE a = %s"), 1);
    ck_assert_int_eq(ws_sql_params("INSERT INTO t VALUES (%s, %d, %s)"), 3);
    /* the long conversions are one parameter each */
    ck_assert_int_eq(ws_sql_params("%lld %llu %hhd %hu %lf %f %u"), 7);
    ck_assert_int_eq(ws_sql_params("%pDt %pDi %pDz %pDn"), 4);
    /* any letter counts, as in apr_dbd.c (an unknown one is a string) */
    ck_assert_int_eq(ws_sql_params("%x %Q"), 2);
    /* %% is a literal percent sign, also before a letter */
    ck_assert_int_eq(ws_sql_params("SELECT 100%% FROM t"), 0);
    ck_assert_int_eq(ws_sql_params("WHERE a LIKE 'x%%s'"), 0);
    ck_assert_int_eq(ws_sql_params("%%%s"), 1);
    ck_assert_int_eq(ws_sql_params("%%%%s"), 0);
    /* a percent sign before anything but a letter is none */
    ck_assert_int_eq(ws_sql_params("% s %1 %"), 0);
    ck_assert_int_eq(ws_sql_params("50%"), 0);
    /* inside quotes too: apr_dbd does not look at quotes */
    ck_assert_int_eq(ws_sql_params("SELECT '%s' || %s"), 2);
}
END_TEST

START_TEST(test_returns_rows)
{
    static const char *const rows[] = {
        "SELECT 1", "select a from t", "  \n\tSELECT 1", "(SELECT 1) UNION (SELECT 2)",
        "WITH c AS (SELECT 1) SELECT * FROM c", "VALUES (1), (2)", "PRAGMA table_info(t)",
        "EXPLAIN SELECT 1", "SHOW server_version", "TABLE t", "SeLeCt 1", "select*from t",
        NULL
    };
    static const char *const changes[] = {
        "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t",
        "CREATE TABLE t (a INT)", "selectx", "sel", "", "   ", "-- x\nSELECT 1",
        "/* x */ SELECT 1", "1", NULL
    };
    const char *const *q;

    for (q = rows; *q; ++q) {
        ck_assert_msg(ws_sql_returns_rows(*q) == 1, "rows: %s", *q);
    }
    for (q = changes; *q; ++q) {
        ck_assert_msg(ws_sql_returns_rows(*q) == 0, "no rows: %s", *q);
    }
}
END_TEST

START_TEST(test_names_probe)
{
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    ck_assert_str_eq(ws_sql_names_probe(p, "SELECT a, b FROM t WHERE a = %s"),
                     "SELECT q.* FROM (SELECT 1) LEFT JOIN "
                     "(SELECT a, b FROM t WHERE a = %s) AS q ON 1");
    ck_assert_str_eq(ws_sql_names_probe(p, "SELECT 1 ; ;\n "),
                     "SELECT q.* FROM (SELECT 1) LEFT JOIN (SELECT 1) AS q ON 1");
    ck_assert_str_eq(ws_sql_names_probe(p, ""),
                     "SELECT q.* FROM (SELECT 1) LEFT JOIN () AS q ON 1");
    /* the probe keeps every placeholder: the same parameters bind */
    ck_assert_int_eq(ws_sql_params(ws_sql_names_probe(p, "SELECT %s, %d")), 2);
    apr_pool_destroy(p);
}
END_TEST

static Suite *sql_suite(void)
{
    Suite *s = suite_create("ws_sql");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_returns_rows);
    tcase_add_test(tc, test_names_probe);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ws_test_main(sql_suite());
}
