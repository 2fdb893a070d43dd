// models/csa_internal.h: helpers shared by models/csa.c and models/csa_window.c.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"

double csa_now(void);  // monotonic seconds
// Byte copy within one device (host memcpy or device-to-device).
void csa_copy_bytes(void *dst, const void *src, size_t bytes, Device dev);
// Tokens [t0, t0 + n) of row `row` of a (B, L, C) tensor, as a (1, n, C) view.
Tensor csa_tokens(const Tensor *t, int64_t row, int64_t t0, int64_t n);
