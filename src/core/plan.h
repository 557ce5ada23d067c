// The plan: a formula linearised into programs of instructions, one program per index
// level, with repeated subexpressions shared. Backends consume it: the CPU engine
// interprets it tile by tile, the CUDA backend (later) prints it as kernel source.
// No R headers here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "reduction.h"

namespace kernops {

// Index level of a value: parameter-only (computed once), i-only (once per i),
// j-only (once per j) or pair (per (i, j)). Levels combine by bitwise or.
enum Level : int { kP = 0, kI = 1, kJ = 2, kIJ = 3 };

struct Slot {
  Level level;
  int dim;
  int arg = -1;         // >= 0: the slot is input argument number `arg` (no instruction)
  std::int64_t offset = 0;  // start in the level's buffer, in units of "dim x rows"
};

struct Instr {
  Op op;
  int out;                  // slot written
  std::vector<int> in;      // slots read
  std::vector<int> params;  // integer parameters of the op
  double value = 0;         // Const
};

struct Plan {
  Formula formula;  // as the user wrote it (axis and names as declared)
  // Engine view: the formula with i and j swapped when axis == 1, so that the result is
  // always indexed by "i" and reduced over "j".
  NodeP f, f2;
  RedKind kind;
  int k = 0;
  std::vector<Slot> slots;
  std::vector<Instr> prog[4];  // by Level: kP, kI, kJ, kIJ, each in dependency order
  int root = -1, root2 = -1;   // slots of F and of the second formula (weight / values)
  // What the reducer reads, per part (Note [Sum parts] in plan.cpp). For a Sum, part k
  // adds sum_j a (or sum_j a*b when b >= 0) to output columns [offset, offset + dim);
  // other reductions have one part {root, root2}.
  struct Part {
    int a;
    int b;
    int dim;
    int offset;
  };
  std::vector<Part> parts;
  std::int64_t level_width[4] = {0, 0, 0, 0};  // total dims stored per level (non-input slots)
  std::vector<int> arg_level;  // level of each argument after the axis swap (kI, kJ or kP)

  int out_dim() const { return formula.out_dim(); }
};

// From this dimension on, the squared distance between an i-only and a j-only value is
// computed by the CPU engine for groups of rows at once (Note [Blocked distances] in
// cpu/sqdist_block.h), so radial kernels of such points are not fused (fuse.h).
constexpr int kBlockedSqDistDim = 16;

// What the planner may do beyond linearising; the defaults are what users get. Tests turn
// fast paths off to compare them with the generic interpreter.
struct PlanOptions {
  bool fuse_radial = true;  // radial kernels as one RadialKernel instruction (fuse.h)
};

Plan make_plan(const Formula& f, const PlanOptions& options = {});

// Whether `ins`, a pair-level instruction, is a squared distance that the CPU engine
// computes for groups of rows at once: SqDistFused of an i-only and a j-only value of
// dimension >= kBlockedSqDistDim.
bool is_blocked_sqdist(const Plan& p, const Instr& ins);

// The fast paths this plan takes, one phrase each (e.g. "fused Gauss kernel (dimension 3)"),
// for printing: users never choose them, but may want to know.
std::vector<std::string> fast_paths(const Plan& p);

}  // namespace kernops
