// Load-time limits of the model readers (format/), checked before any
// allocation a corrupt file could make absurd.
#pragma once

#include <cstdint>

namespace pif {

// Load-time limits. Defaults allow every real model (CLIP ViT-L is ~1.2 GB of
// fp32 weights) while refusing absurd sizes from corrupt files before any
// allocation is made.
struct LoadLimits {
  uint64_t max_file_bytes = 8ull << 30;          // any single input file
  uint64_t max_tensor_bytes = 4ull << 30;        // one tensor record
  uint64_t max_total_param_bytes = 16ull << 30;  // all parameters together
  uint32_t max_rank = 16;                        // dims per tensor
  uint32_t max_ops = 1u << 20;                   // ops over all blocks
  uint32_t max_values = 1u << 22;                // variables / PIR values
  uint32_t max_blocks = 1u << 16;
  uint32_t max_depth = 128;  // JSON / protobuf nesting
};

}  // namespace pif
