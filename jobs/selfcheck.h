// jobs/selfcheck.h: the op self-check behind `storyrun selfcheck`, also run by the unit
// tests. Each op runs on a small seeded problem and is compared with a direct computation
// written out in plain loops (double accumulation).
#pragma once
#include <stdio.h>

#include "kernels/ops.h"

// CPU (fp32) ops vs the direct computations; one line per op on out (NULL: quiet).
// Returns the number of failing ops.
int selfcheck_cpu(FILE *out);

// CUDA ops (f16 storage) vs the CPU ops on the same inputs; one line per op.
// Returns the number of failing ops, or -1 (after printing why) when there is no device.
int selfcheck_cuda(FILE *out);

// Direct attention for tests: softmax(scale * q k^T) v per head, keys of all segments in
// order, causal masking j > i; all tensors f32 on the host, shapes as in ops.h.
void selfcheck_attention_ref(float *out, const Tensor *q, const KVSegment *segs, int nsegs, int heads,
                             int causal, float scale);
