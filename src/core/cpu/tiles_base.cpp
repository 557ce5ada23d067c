// The baseline copy of the tile engine (Note [ISA dispatch] in isa.h).
#define KERNOPS_ISA base
#include "tiles_prelude.h"
#define KERNOPS_VBYTES 16  // vector width of this instruction set, in bytes
#include "tiles.h"
