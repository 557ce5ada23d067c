// The baseline copy of the tile engine (Note [ISA dispatch] in isa.h).
#define KERNOPS_ISA base
#include "tiles_prelude.h"
#include "tiles.h"
