#include "ws_session.h"
