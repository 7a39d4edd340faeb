#include "httpd.h"
#include "http_config.h"
static void ws_register_hooks(apr_pool_t *p) { (void)p; }
AP_DECLARE_MODULE(ws) = { STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, ws_register_hooks, 0 };
