#include "ws_close.h"
