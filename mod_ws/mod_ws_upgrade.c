#include "mod_ws_private.h"
