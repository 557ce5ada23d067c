// Included first by every cpu/tiles_<isa>.cpp, before the file raises its target: the
// standard and shared kernops headers, which must stay compiled for the baseline target
// (Note [ISA dispatch] in isa.h). No R headers here.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "../fp_env.h"
#include "../kernops.h"
#include "isa.h"

// On a non-x86 build the wider copies are never selected (select_isa) but must exist.
#define KERNOPS_TILES_UNAVAILABLE(ns)                                                              \
  namespace kernops {                                                                              \
  namespace cpu {                                                                                  \
  inline namespace ns {                                                                            \
  void run_tiles(const Plan&, const std::vector<ArgData>&, const OutShape&, double*, double*,      \
                 const RunConfig&) {                                                               \
    throw InternalError("the " #ns " engine was selected on a non-x86 build");                     \
  }                                                                                                \
  }                                                                                                \
  }                                                                                                \
  }
