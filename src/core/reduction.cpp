// Reduction table and Formula helpers (see reduction.h).
#include "reduction.h"

#include "errors.h"

namespace kernops {

namespace {
constexpr RedInfo kReds[] = {
    {RedKind::Sum, "Sum_Reduction", false, 0},
    {RedKind::Min, "Min_Reduction", false, 0},
    {RedKind::Max, "Max_Reduction", false, 0},
    {RedKind::ArgMin, "ArgMin_Reduction", false, 0},
    {RedKind::ArgMax, "ArgMax_Reduction", false, 0},
    {RedKind::MinArgMin, "Min_ArgMin_Reduction", false, 0},
    {RedKind::MaxArgMax, "Max_ArgMax_Reduction", false, 0},
    {RedKind::KMin, "KMin_Reduction", true, 0},
    {RedKind::ArgKMin, "ArgKMin_Reduction", true, 0},
    {RedKind::KMinArgKMin, "KMin_ArgKMin_Reduction", true, 0},
    {RedKind::LogSumExp, "LogSumExp_Reduction", false, 1},
    {RedKind::SumSoftMaxWeight, "SumSoftMaxWeight_Reduction", false, 2},
};
}  // namespace

const RedInfo& red_info(RedKind kind) { return kReds[static_cast<int>(kind)]; }

const RedInfo* red_by_name(const std::string& name) {
  for (const auto& r : kReds)
    if (name == r.name) return &r;
  return nullptr;
}

int Formula::out_dim() const {
  switch (kind) {
    case RedKind::MinArgMin:
    case RedKind::MaxArgMax:
      return 2 * f->dim;
    case RedKind::KMin:
    case RedKind::ArgKMin:
      return k * f->dim;
    case RedKind::KMinArgKMin:
      return 2 * k * f->dim;
    case RedKind::LogSumExp:
      return f2 ? f2->dim : f->dim;
    case RedKind::SumSoftMaxWeight:
      return f2->dim;
    default:
      return f->dim;
  }
}

bool Formula::returns_indices() const {
  switch (kind) {
    case RedKind::ArgMin: case RedKind::ArgMax: case RedKind::MinArgMin: case RedKind::MaxArgMax:
    case RedKind::ArgKMin: case RedKind::KMinArgKMin:
      return true;
    default:
      return false;
  }
}

VarNames Formula::names() const {
  VarNames n;
  for (const auto& v : vars) n[{static_cast<int>(v.cat), v.pos}] = v.name;
  return n;
}

std::string Formula::to_string() const {
  const VarNames n = names();
  std::string s = std::string(red_info(kind).name) + "(" + kernops::to_string(f, n);
  if (red_info(kind).has_k) s += "," + std::to_string(k);
  s += "," + std::to_string(axis);
  if (f2) s += "," + kernops::to_string(f2, n);
  return s + ")";
}

std::vector<std::string> Formula::decl_strings() const {
  std::vector<std::string> out;
  for (const auto& v : vars)
    out.push_back(v.name + " = " + cat_keyword(v.cat) + "(" + std::to_string(v.pos) + "," +
                  std::to_string(v.dim) + ")");
  return out;
}

}  // namespace kernops
