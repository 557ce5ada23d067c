// The avx512 copy of the tile engine (Note [ISA dispatch] in isa.h).
#define KERNOPS_ISA avx512
#include "tiles_prelude.h"
#define KERNOPS_VBYTES 64  // vector width of this instruction set, in bytes
#if KERNOPS_X86_DISPATCH
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#endif
#include "tiles.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
KERNOPS_TILES_UNAVAILABLE(avx512)
#endif
