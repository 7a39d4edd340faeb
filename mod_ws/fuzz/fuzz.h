/* The libFuzzer entry point each target defines; replay.c calls it too. */
#ifndef WS_FUZZ_H
#define WS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* WS_FUZZ_H */
