/* What the dbd handler reads from a DBDPrepareSQL statement's text.
 *
 * Part of the protocol core: APR only, no httpd header, no I/O.  The text
 * is apr_dbd's: placeholders are printf-like conversions (%s, %d, %lld,
 * %pDt, ...), "%%" is a literal percent sign.
 */
#ifndef WS_SQL_H
#define WS_SQL_H

#include <apr_pools.h>

/* The number of parameters apr_dbd_prepare finds in the statement: each
 * '%' followed by a letter is one, as apr_dbd.c counts them (inside quotes
 * too).  Binding fewer values than this would make the driver read past
 * them, so the handler refuses any other count. */
int ws_sql_params(const char *sql);

/* 1 when the statement returns rows, judged by its first word (after
 * blanks and opening parentheses): SELECT, WITH, VALUES, PRAGMA, EXPLAIN,
 * SHOW or TABLE, in any case.  Anything else (INSERT, UPDATE, DELETE, DDL)
 * answers the rows it changed.  A leading comment makes it 0. */
int ws_sql_returns_rows(const char *sql);

/* A query that gives exactly one row whose columns are the statement's,
 * NULLs when the statement gives no row:
 *   SELECT q.* FROM (SELECT 1) LEFT JOIN (<sql>) AS q ON 1
 * with trailing blanks and semicolons of sql dropped; the same
 * parameters.  SQLite names a result's columns only from a row. */
char *ws_sql_names_probe(apr_pool_t *p, const char *sql);

#endif /* WS_SQL_H */
