#include "ws_utf8.h"
