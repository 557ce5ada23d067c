// The base copy of the tile engine (Note [ISA dispatch] in isa.h).
#define KERNOPS_ISA base
// Standard and shared headers first, compiled for the baseline target.
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

#include "../kernops.h"
#include "isa.h"

#include "tiles.h"
