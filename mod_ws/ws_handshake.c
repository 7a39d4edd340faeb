#include "ws_handshake.h"
