#ifndef MOD_WS_PRIVATE_H
#define MOD_WS_PRIVATE_H
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
APLOG_USE_MODULE(ws);
#endif
