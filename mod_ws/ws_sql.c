/* ws_sql.c: reading a DBDPrepareSQL statement's text (see ws_sql.h).
 *
 * Part of the protocol core: APR only, no httpd header, no I/O.
 */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "ws_sql.h"

int ws_sql_params(const char *sql)
{
    int n = 0;

    for (; *sql; ++sql) {
        if (sql[0] == '%') {
            if (apr_isalpha(sql[1])) {
                n++;
            }
            else if (sql[1] == '%') {
                ++sql;
            }
        }
    }
    return n;
}

int ws_sql_returns_rows(const char *sql)
{
    static const char *const words[] = {
        "select", "with", "values", "pragma", "explain", "show", "table",
        NULL
    };
    const char *const *w;
    apr_size_t n = 0;

    while (apr_isspace(*sql) || *sql == '(') {
        ++sql;
    }
    while (apr_isalpha(sql[n])) {
        ++n;
    }
    for (w = words; *w; ++w) {
        if (n == strlen(*w) && !strncasecmp(sql, *w, n)) {
            return 1;
        }
    }
    return 0;
}

char *ws_sql_names_probe(apr_pool_t *p, const char *sql)
{
    apr_size_t len = strlen(sql);

    while (len && (apr_isspace(sql[len - 1]) || sql[len - 1] == ';')) {
        --len;
    }
    return apr_psprintf(p, "SELECT q.* FROM (SELECT 1) LEFT JOIN (%.*s) AS q "
                        "ON 1", (int)len, sql);
}
