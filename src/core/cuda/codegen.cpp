// Plan -> CUDA C++ (see codegen.h and kernel_abi.h).
//
// Note [CUDA kernel shape]
// One thread per output row i (the engine view: after the axis swap "i" is the output).
// A thread computes the parameter-level program and its row's i-level program once, into
// registers. The block then walks its share of j (block y of the split: kernel_abi.h) in
// tiles of K_TILE points: for each tile, thread t computes the j-level program of point
// j0 + t and stores the j-level values that pair instructions read into shared memory
// (arrays sh<slot>[component * K_TILE + t]); after a barrier every thread runs the pair
// program for each point of the tile, reading those values (all threads read the same
// address: a broadcast), and folds the result into its reducer's registers. The N x M
// matrix never exists. Rows past n_i (the last block) still load their tile share and
// pass the barriers, but skip the pairs and write nothing.
//
// Note [CUDA reducer states]
// Registers per thread, as the CPU reducers (cpu/reducers.h) keep them, with the same NaN
// rules: sums accumulate each tile in T (`part`) and add it to a double total at the end of
// the tile (the CPU's block-wise accumulation: float32 sums stay accurate); min / max keep
// (value, index) with the first index on ties and NaN skipped; K-min keeps per component
// the K smallest (value, index) sorted, NaN skipped; LogSumExp and SumSoftMaxWeight keep
// the running maximum m per group with the sums relative to it (rescaled when m grows,
// +inf terms weigh 1 once m is +inf, a NaN term makes the result NaN). When the j range is
// split (LaunchArgs::direct == 0) each block writes its state to LaunchArgs::state and the
// merge kernel folds the splits in order, after the state carried from earlier launches over
// j (kernel_abi.h): float32 states keep each double total as two floats
// (hi + lo) and each int64 index as two exact 24-bit halves, so a split changes nothing.
#include "codegen.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../errors.h"
#include "../fuse.h"
#include "../scalar_ops.h"

namespace kernops {
namespace cuda {

namespace {

// A literal of type T with every digit of v (the CPU casts the same double to T).
std::string literal(double v) {
  if (std::isnan(v)) return "k_nan()";
  if (std::isinf(v)) return v > 0 ? "k_inf()" : "(-k_inf())";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s(buf);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return "T(" + s + ")";
}

// `snippet` with $0, $1, $2 replaced by args (Note [CUDA snippets] in scalar_ops.h).
std::string fill(const std::string& snippet, const std::vector<std::string>& args) {
  std::string out;
  for (size_t q = 0; q < snippet.size(); ++q) {
    if (snippet[q] == '$' && q + 1 < snippet.size() && snippet[q + 1] >= '0' && snippet[q + 1] <= '2') {
      out += args.at(static_cast<size_t>(snippet[q + 1] - '0'));
      ++q;
    } else {
      out += snippet[q];
    }
  }
  return out;
}

// The CUDA expression of an elementwise op with these arguments; empty when `op` is not one.
std::string elementwise(Op op, const std::vector<std::string>& a) {
  std::string s;
  const auto take = [&](auto tag) { s = fill(decltype(tag)::cuda, a); };
  if (visit_unary(op, take) || visit_binary(op, take) || visit_ternary(op, take)) return s;
  return "";
}

// `for (int k = 0; k < n; ++k) { body }`, unrolled for small n (the per-thread arrays then
// live in registers), by 4 past 16 (such arrays are in local memory anyway, and a full
// unroll of a 400-dimensional loop multiplied NVRTC's time); for n == 1 the body alone,
// with k = 0. Starts on a new line: a #pragma must begin one.
std::string loop(int n, const std::string& k, const std::string& body) {
  if (n == 1) return "\n{\nconst int " + k + " = 0;\n" + body + "\n}\n";
  return std::string(n <= 16 ? "\n#pragma unroll" : "\n#pragma unroll 4") + "\nfor (int " + k + " = 0; " + k + " < " +
         std::to_string(n) + "; ++" + k + ") {\n" + body + "\n}\n";
}

// Indents by brace depth and drops blank lines, so that NVRTC's line numbers (and a person)
// can read the source. The generated text has braces in code only, never in comments.
std::string tidy(const std::string& src) {
  std::istringstream in(src);
  std::string line, out;
  int depth = 0;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    line = line.substr(b);
    int opens = 0, closes = 0;
    for (char ch : line) {
      opens += ch == '{';
      closes += ch == '}';
    }
    const int here = line[0] == '}' ? depth - 1 : depth;
    if (line[0] != '#') out += std::string(static_cast<size_t>(2 * std::max(0, here)), ' ');
    out += line + "\n";
    depth += opens - closes;
  }
  return out;
}

// The generic prelude: types, the LaunchArgs of kernel_abi.h (same fields, same order: the
// emulation test checks the layout), constants, state encoding (Note [CUDA reducer states]).
std::string prelude(bool f32) {
  std::string s = R"(typedef long long int64;
typedef )" + std::string(f32 ? "float" : "double") + R"( T;
#ifndef KERNOPS_EXTERN_C
#define KERNOPS_EXTERN_C extern "C"
#endif
struct LaunchArgs {
  const void* const* args;
  int64 i0;
  int64 n_i;
  int64 j_begin;
  int64 j_end;
  int64 j_per_split;
  int64 n_split;
  int64 direct;
  int64 carry_in;
  int64 finish;
  void* state;
  void* carry;
  void* values;
  int64* indices;
};
__device__ __forceinline__ T k_inf() { return (T)__longlong_as_double(0x7ff0000000000000LL); }
__device__ __forceinline__ T k_nan() { return (T)__longlong_as_double(0x7ff8000000000000LL); }
)";
  if (f32)
    s += R"(constexpr int K_WIDE = 2;  // a double total or an int64 index takes two floats of state
__device__ __forceinline__ void k_put_acc(T* p, double v) {
  const float hi = (float)v;
  p[0] = hi;
  p[1] = hi - hi == 0.0f ? (float)(v - (double)hi) : 0.0f;
}
__device__ __forceinline__ double k_get_acc(const T* p) { return (double)p[0] + (double)p[1]; }
__device__ __forceinline__ void k_put_idx(T* p, int64 v) {
  const int64 u = v + 1;
  p[0] = (float)(u >> 24);
  p[1] = (float)(u & 0xFFFFFF);
}
__device__ __forceinline__ int64 k_get_idx(const T* p) { return ((int64)p[0] << 24) + (int64)p[1] - 1; }
)";
  else
    s += R"(constexpr int K_WIDE = 1;
__device__ __forceinline__ void k_put_acc(T* p, double v) { p[0] = v; }
__device__ __forceinline__ double k_get_acc(const T* p) { return p[0]; }
__device__ __forceinline__ void k_put_idx(T* p, int64 v) { p[0] = (T)v; }
__device__ __forceinline__ int64 k_get_idx(const T* p) { return (int64)p[0]; }
)";
  s += FPowf::cuda_helper;
  s += pow_int_cuda();
  return s;
}

// The reducer's parts of the kernels (Note [CUDA reducer states]): declarations, init, the
// fold of one pair, the end of a tile, the state written by a split and merged from one,
// and the output row. `ref(slot, component)` reads a value in pair context.
struct ReducerCode {
  std::string decl, init, fold, tile_end, put, merge, finish, helpers;
  std::string part_decl;  // the tile's partial sums: reduce kernel only
  int state_width = 0;  // in T, K_WIDE counted as `wide`
};

class Generator {
 public:
  Generator(const Plan& p, Dtype dt, const CodegenOptions& o)
      : p_(p), f32_(dt == Dtype::Float32), wide_(f32_ ? 2 : 1), block_(o.block_size) {
    if (block_ < 1 || block_ > 1024)
      throw InputError("CUDA block size must be in 1..1024, got " + std::to_string(block_));
  }

  KernelSource run() {
    find_uses();
    for (int l = kP; l <= kIJ; ++l)
      for (const auto& ins : p_.prog[l]) check_supported(ins);
    choose_tile();
    KernelSource ks;
    ReducerCode rc = reducer();
    const std::int64_t thread_bytes = check_thread_arrays(rc);
    std::ostringstream o;
    o << "// kernops: " << p_.formula.to_string() << ", " << (f32_ ? "float32" : "float64") << "\n";
    o << prelude(f32_);
    o << "constexpr int K_TILE = " << tile_ << ";\n";
    o << "constexpr int K_SW = " << rc.state_width << ";  // state width per row, in T\n";
    o << rc.helpers;
    o << reduce_kernel(rc) << merge_kernel(rc);
    ks.source = tidy(o.str());
    ks.reduce_name = "kernops_reduce";
    ks.merge_name = "kernops_merge";
    ks.block_size = block_;
    ks.shared_bytes = 0;  // static __shared__ arrays only (K_TILE is fixed per source)
    ks.state_width = rc.state_width;
    ks.thread_bytes = thread_bytes;
    ks.value_cols = value_cols_;
    ks.index_cols = index_cols_;
    return ks;
  }

 private:
  const Slot& slot(int s) const { return p_.slots[static_cast<size_t>(s)]; }
  static std::string v(int s) { return "v" + std::to_string(s); }
  static std::string sh(int s) { return "sh" + std::to_string(s); }

  // Slots read by instructions or by the reducer; the j-level ones read in pair context
  // go through shared memory.
  void find_uses() {
    used_.assign(p_.slots.size(), false);
    shared_.assign(p_.slots.size(), false);
    const auto use = [&](int s, Level ctx) {
      if (s < 0) return;
      used_[s] = true;
      if (ctx == kIJ && slot(s).level == kJ) shared_[s] = true;
    };
    for (int l = kP; l <= kIJ; ++l)
      for (const auto& ins : p_.prog[l])
        for (int s : ins.in) use(s, static_cast<Level>(l));
    for (const auto& q : p_.parts) {
      use(q.a, kIJ);
      use(q.b, kIJ);
    }
    use(p_.root, kIJ);
    use(p_.root2, kIJ);
  }

  void check_supported(const Instr& ins) const {
    if (!elementwise(ins.op, {"a", "b", "c"}).empty()) return;
    switch (ins.op) {
      case Op::Const: case Op::Zero: case Op::Pow: case Op::Sum: case Op::SqNorm2: case Op::SqDistFused:
      case Op::RadialKernel: case Op::Scalprod: case Op::SumT: case Op::Elem: case Op::ElemT: case Op::Extract:
      case Op::ExtractT: case Op::Concat: case Op::MatVecMult: case Op::VecMatMult: case Op::TensorProd:
        return;
      default:
        throw UnsupportedError(std::string("the CUDA backend cannot compile the operation ") + op_info(ins.op).name +
                               " (no CUDA code for it); use backend = \"cpu\"");
    }
  }

  // The tile: K_TILE points of every shared j-level value within kMaxSharedBytes.
  void choose_tile() {
    std::int64_t width = 0;
    for (size_t s = 0; s < shared_.size(); ++s)
      if (shared_[s]) width += slot(static_cast<int>(s)).dim;
    const std::int64_t point = width * (f32_ ? 4 : 8);
    tile_ = block_;
    while (tile_ > 1 && tile_ * point > kMaxSharedBytes) tile_ /= 2;
    if (tile_ * point > kMaxSharedBytes)
      throw UnsupportedError("the CUDA backend cannot stage this formula's j-level values (" + std::to_string(width) +
                             " numbers per point) in shared memory; use backend = \"cpu\"");
  }

  // Every slot's values and the reducer's state are per-thread arrays, in local memory when
  // large. Their sum is an upper bound of the thread's stack frame (ptxas may overlap dead
  // arrays; for Sum(TensorProd(x, y)) of two 256-vectors the frame is the sum, 516 KB).
  // ptxas accepts frames the hardware refuses at launch (over 512 KB), so those are refused
  // here, before any compile; the runtime budgets the rest (KernelSource::thread_bytes).
  std::int64_t check_thread_arrays(const ReducerCode& rc) const {
    std::int64_t values = 0;
    for (size_t s = 0; s < p_.slots.size(); ++s)
      if (used_[s]) values += p_.slots[s].dim;
    const std::int64_t elem = f32_ ? 4 : 8;  // state_width counts T values (double totals take two in float32)
    const std::int64_t bytes = (values + 2 * static_cast<std::int64_t>(rc.state_width)) * elem;
    if (bytes > kMaxThreadArrayBytes)
      throw UnsupportedError("the CUDA backend cannot hold this formula's values in one GPU thread (" +
                             std::to_string(bytes / 1024) + " KB of arrays per thread, limit " +
                             std::to_string(kMaxThreadArrayBytes / 1024) + " KB); use backend = \"cpu\"");
    return bytes;
  }

  // Component c (a C++ expression) of slot s, read from context ctx.
  std::string ref(int s, const std::string& c, Level ctx) const {
    if (ctx == kIJ && slot(s).level == kJ) return sh(s) + "[(" + c + ") * K_TILE + t]";
    return v(s) + "[" + c + "]";
  }
  // Component k of an elementwise argument, broadcast when its dimension is 1.
  std::string bref(int s, Level ctx) const { return ref(s, slot(s).dim == 1 ? "0" : "k", ctx); }

  // Declaration and computation of an argument slot's values at its level: P from the
  // parameter array, I at row `i`, J at point `j` (row-major rows, kernel_abi.h).
  std::string load_arg(int s) const {
    const Slot& sl = slot(s);
    const std::string d = std::to_string(sl.dim);
    const std::string a = "arg" + std::to_string(sl.arg);
    const std::string row = sl.level == kP ? "" : (sl.level == kI ? "i * " + d + " + " : "j * " + d + " + ");
    return "T " + v(s) + "[" + d + "];\n" + loop(sl.dim, "k", v(s) + "[k] = " + a + "[" + row + "k];");
  }

  std::string instr(const Instr& ins, Level ctx) const {
    const int o = ins.out;
    const int D = slot(o).dim;
    const std::string out = v(o) + "[k]";
    std::string code = "T " + v(o) + "[" + std::to_string(D) + "];\n";
    const auto in = [&](int q) { return ins.in[static_cast<size_t>(q)]; };
    const auto r = [&](int q, const std::string& c) { return ref(in(q), c, ctx); };
    std::vector<std::string> a;
    for (size_t q = 0; q < ins.in.size(); ++q) a.push_back(bref(ins.in[q], ctx));
    const std::string e = elementwise(ins.op, a);
    if (!e.empty()) return code + loop(D, "k", out + " = " + e + ";");
    const std::string o0 = v(o) + "[0]";
    switch (ins.op) {
      case Op::Const:
        return code + o0 + " = " + literal(ins.value) + ";\n";
      case Op::Zero:
        return code + loop(D, "k", out + " = T(0);");
      case Op::Pow:
        return code + loop(D, "k", out + " = k_pow_int(" + r(0, "k") + ", " + std::to_string(ins.params[0]) + ");");
      case Op::Sum:
        return code + o0 + " = T(0);\n" + loop(slot(in(0)).dim, "k", o0 + " += " + r(0, "k") + ";");
      case Op::SqNorm2:
        return code + o0 + " = T(0);\n" + loop(slot(in(0)).dim, "k", o0 + " += " + r(0, "k") + " * " + r(0, "k") + ";");
      case Op::SqDistFused:
        return code + o0 + " = T(0);\n" +
               loop(slot(in(0)).dim, "k", "const T d = " + r(0, "k") + " - " + r(1, "k") + "; " + o0 + " += d * d;");
      case Op::Scalprod:
        return code + o0 + " = T(0);\n" + loop(slot(in(0)).dim, "k", o0 + " += " + r(0, "k") + " * " + r(1, "k") + ";");
      case Op::RadialKernel:  // in = {x, y, s, c}: r2 = |x - y|^2, then phi (fuse.h)
        return code + "{\nT r2 = T(0);\n" +
               loop(slot(in(0)).dim, "k", "const T d = " + r(0, "k") + " - " + r(1, "k") + "; r2 += d * d;") +
               "const T s = " + r(2, "0") + ", c = " + r(3, "0") + ";\n(void)c;\nT phi;\n" +
               radial_cuda(static_cast<RadialKind>(ins.params[0])) + "\n" + o0 + " = phi;\n}\n";
      case Op::SumT:
        return code + loop(D, "k", out + " = " + r(0, "0") + ";");
      case Op::Elem:
        return code + o0 + " = " + r(0, std::to_string(ins.params[0])) + ";\n";
      case Op::ElemT:
        return code + loop(D, "k", out + " = k == " + std::to_string(ins.params[1]) + " ? " + r(0, "0") + " : T(0);");
      case Op::Extract:
        return code + loop(D, "k", out + " = " + r(0, std::to_string(ins.params[0]) + " + k") + ";");
      case Op::ExtractT: {
        const std::string start = std::to_string(ins.params[0]);
        const std::string end = std::to_string(ins.params[0] + slot(in(0)).dim);
        return code + loop(D, "k", out + " = k >= " + start + " && k < " + end + " ? " + r(0, "k - " + start) + " : T(0);");
      }
      case Op::Concat: {
        const int da = slot(in(0)).dim;
        return code + loop(da, "k", out + " = " + r(0, "k") + ";") +
               loop(slot(in(1)).dim, "k", v(o) + "[" + std::to_string(da) + " + k] = " + r(1, "k") + ";");
      }
      case Op::MatVecMult: {  // out_m = sum_c A[m * nc + c] v_c
        const std::string nc = std::to_string(slot(in(1)).dim);
        return code + loop(D, "m", v(o) + "[m] = T(0); " +
                                       loop(slot(in(1)).dim, "c", v(o) + "[m] += " + r(0, "m * " + nc + " + c") + " * " + r(1, "c") + ";"));
      }
      case Op::VecMatMult: {  // out_c = sum_m v_m A[m * D + c]
        return code + loop(D, "c", v(o) + "[c] = T(0); " +
                                       loop(slot(in(0)).dim, "m", v(o) + "[c] += " + r(0, "m") + " * " + r(1, "m * " + std::to_string(D) + " + c") + ";"));
      }
      case Op::TensorProd: {  // out[m * q + c] = a_m b_c
        const std::string q = std::to_string(slot(in(1)).dim);
        return code + loop(slot(in(0)).dim, "m", loop(slot(in(1)).dim, "c", v(o) + "[m * " + q + " + c] = " + r(0, "m") + " * " + r(1, "c") + ";"));
      }
      default:
        throw UnsupportedError(std::string("the CUDA backend cannot compile the operation ") + op_info(ins.op).name);
    }
  }

  // The program of one level, arguments of that level first.
  std::string level_program(Level l, Level ctx) const {
    std::string s;
    for (size_t q = 0; q < p_.slots.size(); ++q)
      if (used_[q] && p_.slots[q].arg >= 0 && p_.slots[q].level == l) s += load_arg(static_cast<int>(q));
    for (const auto& ins : p_.prog[l]) s += instr(ins, ctx);
    return s;
  }

  ReducerCode reducer();
  ReducerCode sum_reducer();
  ReducerCode extreme_reducer(bool is_max, bool want_val, bool want_idx);
  ReducerCode kmin_reducer(bool want_val, bool want_idx);
  ReducerCode lse_reducer(bool softmax);

  std::string reduce_kernel(const ReducerCode& rc) const {
    std::string s = "KERNOPS_EXTERN_C __global__ void kernops_reduce(LaunchArgs la) {\n";
    s += "const int tid = (int)threadIdx.x;\n";
    s += "const int64 r = (int64)blockIdx.x * blockDim.x + tid;  // output row, relative to i0\n";
    s += "const bool active = r < la.n_i;\n";
    s += "const int64 i = la.i0 + (active ? r : 0);  // the row read (rows past n_i read row i0)\n";
    s += "const int64 jb = la.j_begin + (int64)blockIdx.y * la.j_per_split;\n";
    s += "const int64 je = la.j_end < jb + la.j_per_split ? la.j_end : jb + la.j_per_split;\n";
    std::set<int> args;  // the arguments read (declared but unused ones are skipped)
    for (size_t q = 0; q < p_.slots.size(); ++q)
      if (used_[q] && p_.slots[q].arg >= 0) args.insert(p_.slots[q].arg);
    for (int q : args) s += "const T* arg" + std::to_string(q) + " = (const T*)la.args[" + std::to_string(q) + "];\n";
    s += "// parameter level\n" + level_program(kP, kP);
    s += "// i level\n" + level_program(kI, kI);
    for (size_t q = 0; q < shared_.size(); ++q)
      if (shared_[q])
        s += "__shared__ T " + sh(static_cast<int>(q)) + "[" + std::to_string(slot(static_cast<int>(q)).dim) +
             " * K_TILE];\n";
    s += rc.decl + rc.init + rc.part_decl;
    s += "for (int64 j0 = jb; j0 < je; j0 += K_TILE) {\n";
    s += "const int nt = je - j0 < K_TILE ? (int)(je - j0) : K_TILE;\n";
    s += "__syncthreads();  // the previous tile is consumed\n";
    s += "if (tid < nt) {\nconst int64 j = j0 + tid;\n(void)j;\n" + level_program(kJ, kJ);
    for (size_t q = 0; q < shared_.size(); ++q)
      if (shared_[q]) {
        const int sq = static_cast<int>(q);
        s += loop(slot(sq).dim, "k", sh(sq) + "[k * K_TILE + tid] = " + v(sq) + "[k];");
      }
    s += "}\n__syncthreads();\n";
    s += "if (active) {\nfor (int t = 0; t < nt; ++t) {\nconst int64 j = j0 + t;\n(void)j;\n";
    s += level_program(kIJ, kIJ) + rc.fold + "}\n" + rc.tile_end + "}\n}\n";
    s += "if (!active) return;\n";
    s += "if (la.direct) {\n" + finish_code(rc) + "} else {\n";
    s += "T* st = (T*)la.state + ((int64)blockIdx.y * la.n_i + r) * K_SW;\n" + rc.put + "}\n}\n";
    return s;
  }

  std::string finish_code(const ReducerCode& rc) const {
    std::string s;
    if (value_cols_) s += "T* vals = (T*)la.values;\n";
    if (index_cols_) s += "int64* idx = la.indices;\n";
    return s + rc.finish;
  }

  std::string merge_kernel(const ReducerCode& rc) const {
    std::string s = "KERNOPS_EXTERN_C __global__ void kernops_merge(LaunchArgs la) {\n";
    s += "const int64 r = (int64)blockIdx.x * blockDim.x + threadIdx.x;\n";
    s += "if (r >= la.n_i) return;\n";
    s += rc.decl + rc.init;
    s += "if (la.carry_in) {  // the windows of the reduced side before this launch\n";
    s += "const T* st = (const T*)la.carry + r * K_SW;\n" + rc.merge + "}\n";
    s += "for (int64 y = 0; y < la.n_split; ++y) {  // in split order: ties keep the first index\n";
    s += "const T* st = (const T*)la.state + (y * la.n_i + r) * K_SW;\n" + rc.merge + "}\n";
    s += "if (la.finish) {\n" + finish_code(rc) + "} else {\n";
    s += "T* st = (T*)la.carry + r * K_SW;\n" + rc.put + "}\n}\n";
    // Run once per row: its loops stay rolled, which saves about a third of NVRTC's time.
    for (size_t at = s.find("#pragma unroll\n"); at != std::string::npos; at = s.find("#pragma unroll\n", at))
      s.replace(at, 15, "#pragma unroll 1\n");
    return s;
  }

  const Plan& p_;
  bool f32_;
  int wide_;  // K_WIDE
  int block_;
  int tile_ = 1;
  int value_cols_ = 0, index_cols_ = 0;
  std::vector<bool> used_, shared_;
};

ReducerCode Generator::reducer() {
  switch (p_.kind) {
    case RedKind::Sum: return sum_reducer();
    case RedKind::Min: return extreme_reducer(false, true, false);
    case RedKind::Max: return extreme_reducer(true, true, false);
    case RedKind::ArgMin: return extreme_reducer(false, false, true);
    case RedKind::ArgMax: return extreme_reducer(true, false, true);
    case RedKind::MinArgMin: return extreme_reducer(false, true, true);
    case RedKind::MaxArgMax: return extreme_reducer(true, true, true);
    case RedKind::KMin: return kmin_reducer(true, false);
    case RedKind::ArgKMin: return kmin_reducer(false, true);
    case RedKind::KMinArgKMin: return kmin_reducer(true, true);
    case RedKind::LogSumExp: return lse_reducer(false);
    case RedKind::SumSoftMaxWeight: return lse_reducer(true);
  }
  throw InternalError("unknown reduction");
}

// Sum parts (Note [Sum parts] in plan.cpp): part q adds a (or a * b) into columns
// [offset, offset + dim), a dimension-1 factor broadcast.
ReducerCode Generator::sum_reducer() {
  ReducerCode rc;
  const int W = p_.out_dim();
  const std::string w = std::to_string(W);
  value_cols_ = W;
  rc.decl = "double r_tot[" + w + "];\n";
  rc.part_decl = "T r_part[" + w + "];\n" + loop(W, "k", "r_part[k] = T(0);");
  rc.init = loop(W, "k", "r_tot[k] = 0.0;");
  for (const auto& q : p_.parts) {
    const std::string off = std::to_string(q.offset);
    std::string term = bref(q.a, kIJ);
    if (q.b >= 0) term += " * " + bref(q.b, kIJ);
    rc.fold += loop(q.dim, "k", "r_part[" + off + " + k] += " + term + ";");
  }
  rc.tile_end = loop(W, "k", "r_tot[k] += (double)r_part[k]; r_part[k] = T(0);");
  rc.put = loop(W, "k", "k_put_acc(st + k * K_WIDE, r_tot[k]);");
  rc.merge = loop(W, "k", "r_tot[k] += k_get_acc(st + k * K_WIDE);");
  rc.finish = loop(W, "k", "vals[r * " + w + " + k] = (T)r_tot[k];");
  rc.state_width = W * wide_;
  return rc;
}

ReducerCode Generator::extreme_reducer(bool is_max, bool want_val, bool want_idx) {
  ReducerCode rc;
  const int D = p_.f->dim;
  const std::string d = std::to_string(D), cmp = is_max ? " > " : " < ";
  value_cols_ = want_val ? D : 0;
  index_cols_ = want_idx ? D : 0;
  rc.decl = "T r_v[" + d + "];\nint64 r_i[" + d + "];\n";
  rc.init = loop(D, "k", std::string("r_v[k] = ") + (is_max ? "-k_inf()" : "k_inf()") + "; r_i[k] = -1;");
  // Strictly better, or equal to the start value with no index yet (F = +inf for a Min):
  // the first j of the block extreme wins, NaN never compares.
  rc.fold = loop(D, "k", "const T f = " + ref(p_.root, "k", kIJ) + "; if (f" + cmp +
                             "r_v[k] || (r_i[k] < 0 && f == r_v[k])) { r_v[k] = f; r_i[k] = j; }");
  rc.put = loop(D, "k", "st[k * (1 + K_WIDE)] = r_v[k]; k_put_idx(st + k * (1 + K_WIDE) + 1, r_i[k]);");
  rc.merge = loop(D, "k", "const T ov = st[k * (1 + K_WIDE)]; const int64 oi = k_get_idx(st + k * (1 + K_WIDE) + 1); "
                          "if (oi >= 0 && (r_i[k] < 0 || ov" + cmp + "r_v[k])) { r_v[k] = ov; r_i[k] = oi; }");
  if (want_val) rc.finish += loop(D, "k", "vals[r * " + d + " + k] = r_i[k] < 0 ? k_nan() : r_v[k];");
  if (want_idx) rc.finish += loop(D, "k", "idx[r * " + d + " + k] = r_i[k];");
  rc.state_width = D * (1 + wide_);
  return rc;
}

// Per component k, list [k * K, (k + 1) * K) sorted by (value, index), -1 = empty.
ReducerCode Generator::kmin_reducer(bool want_val, bool want_idx) {
  ReducerCode rc;
  const int D = p_.f->dim, K = p_.k;
  const std::string d = std::to_string(D), n = std::to_string(D * K);
  value_cols_ = want_val ? D * K : 0;
  index_cols_ = want_idx ? D * K : 0;
  rc.helpers = "constexpr int K_K = " + std::to_string(K) + R"(;
// (v, i) before (v2, i2): smaller value, then smaller index, an empty entry (-1) last.
__device__ __forceinline__ bool k_less(T v, int64 i, T v2, int64 i2) {
  return v < v2 || (v == v2 && (i2 < 0 || (i >= 0 && i < i2)));
}
__device__ __forceinline__ void k_insert(T* lv, int64* li, T v, int64 i) {
  if (!k_less(v, i, lv[K_K - 1], li[K_K - 1])) return;
  int p = K_K - 1;
  while (p > 0 && k_less(v, i, lv[p - 1], li[p - 1])) {
    lv[p] = lv[p - 1];
    li[p] = li[p - 1];
    --p;
  }
  lv[p] = v;
  li[p] = i;
}
)";
  rc.decl = "T r_v[" + n + "];\nint64 r_i[" + n + "];\n";
  rc.init = loop(D * K, "q", "r_v[q] = k_inf(); r_i[q] = -1;");
  rc.fold = loop(D, "k", "const T f = " + ref(p_.root, "k", kIJ) + "; if (f == f) k_insert(r_v + k * K_K, r_i + k * K_K, f, j);");
  rc.put = loop(D * K, "q", "st[q * (1 + K_WIDE)] = r_v[q]; k_put_idx(st + q * (1 + K_WIDE) + 1, r_i[q]);");
  rc.merge = loop(D * K, "q", "const int64 oi = k_get_idx(st + q * (1 + K_WIDE) + 1); "
                              "if (oi >= 0) k_insert(r_v + q / K_K * K_K, r_i + q / K_K * K_K, st[q * (1 + K_WIDE)], oi);");
  // Columns in KeOps' K-major order: column q * D + k is the q-th smallest of component k.
  std::string body = "const int e = k * K_K + q, col = q * " + d + " + k;";
  if (want_val) body += " vals[r * " + n + " + col] = r_i[e] < 0 ? k_nan() : r_v[e];";
  if (want_idx) body += " idx[r * " + n + " + col] = r_i[e];";
  rc.finish = loop(D, "k", loop(K, "q", body));
  rc.state_width = D * K * (1 + wide_);
  return rc;
}

// G groups, each a running maximum r_m[g] and E sums relative to it: LogSumExp of a vector
// F (G = dim F, E = 1: sum e), with a weight w (G = 1, E = dim w: sum e w_c), or
// SumSoftMaxWeight (G = 1, E = 1 + dim w: sum e, then sum e w_c). e = exp(F - m).
ReducerCode Generator::lse_reducer(bool softmax) {
  ReducerCode rc;
  const bool weighted = p_.root2 >= 0;
  const int wd = weighted ? slot(p_.root2).dim : 0;
  const int G = weighted ? 1 : p_.f->dim, E = !weighted ? 1 : (softmax ? 1 + wd : wd);
  const std::string g = std::to_string(G), e = std::to_string(E), ge = std::to_string(G * E);
  value_cols_ = weighted ? wd : G;
  rc.decl = "T r_m[" + g + "];\ndouble r_tot[" + ge + "];\n";
  rc.part_decl = "T r_part[" + ge + "];\n" + loop(G * E, "q", "r_part[q] = T(0);");
  rc.init = loop(G, "g", "r_m[g] = -k_inf();") + loop(G * E, "q", "r_tot[q] = 0.0;");
  std::string add;  // the terms of one pair, given e
  if (!weighted) add = "r_part[g] += e;";
  else {
    const std::string first = softmax ? "r_part[0] += e; " : "";
    const std::string c0 = softmax ? "1 + " : "";
    add = first + loop(wd, "c", "r_part[" + c0 + "c] += e * " + ref(p_.root2, "c", kIJ) + ";");
  }
  const std::string rescale_to_f =
      "if (r_m[g] > -k_inf()) { const double rr = exp((double)r_m[g] - (double)f); " +
      loop(E, "q", "r_tot[g * " + e + " + q] *= rr; r_part[g * " + e + " + q] *= (T)rr;") + "}";
  rc.fold = loop(G, "g",
                 "const T f = " + ref(p_.root, weighted ? "0" : "g", kIJ) + ";\n"
                 "T e = T(0);\nbool add = true;\n"
                 "if (f != f) { r_m[g] = f; e = f; }  // NaN: the result is NaN\n"
                 "else if (f > r_m[g]) { " + rescale_to_f + " r_m[g] = f; e = T(1); }\n"
                 "else if (f == -k_inf()) add = false;\n"
                 "else e = r_m[g] == k_inf() ? (f == r_m[g] ? T(1) : T(0)) : exp(f - r_m[g]);\n"
                 "if (add) { " + add + " }");
  rc.tile_end = loop(G * E, "q", "r_tot[q] += (double)r_part[q]; r_part[q] = T(0);");
  const std::string gw = "(1 + " + e + " * K_WIDE)";  // state per group
  rc.put = loop(G, "g", "st[g * " + gw + "] = r_m[g]; " +
                            loop(E, "q", "k_put_acc(st + g * " + gw + " + 1 + q * K_WIDE, r_tot[g * " + e + " + q]);"));
  rc.merge = loop(
      G, "g",
      "const T om = st[g * " + gw + "];\n"
      "if (om != -k_inf()) {\n"
      "if (r_m[g] != r_m[g] || om != om) r_m[g] = k_nan();\n"
      "else {\n"
      "const T mm = r_m[g] > om ? r_m[g] : om;\n"
      "if (r_m[g] != mm) { const double rr = r_m[g] == -k_inf() ? 0.0 : exp((double)r_m[g] - (double)mm); " +
          loop(E, "q", "r_tot[g * " + e + " + q] *= rr;") +
          " r_m[g] = mm; }\n"
          "const double ro = om == mm ? 1.0 : exp((double)om - (double)mm);\n" +
          loop(E, "q", "r_tot[g * " + e + " + q] += k_get_acc(st + g * " + gw + " + 1 + q * K_WIDE) * ro;") + "}\n}");
  const std::string vc = std::to_string(value_cols_);
  if (!weighted)
    rc.finish = loop(G, "g", "vals[r * " + vc + " + g] = (T)((double)r_m[g] + log(r_tot[g]));");
  else if (!softmax)
    rc.finish = loop(wd, "c", "vals[r * " + vc + " + c] = (T)((double)r_m[0] + log(r_tot[c]));");
  else
    rc.finish = loop(wd, "c", "vals[r * " + vc + " + c] = r_m[0] != r_m[0] ? k_nan() : (T)(r_tot[1 + c] / r_tot[0]);");
  rc.state_width = G * (1 + E * wide_);
  return rc;
}

}  // namespace

KernelSource generate_cuda(const Plan& plan, Dtype dtype) { return generate_cuda(plan, dtype, CodegenOptions{}); }

KernelSource generate_cuda(const Plan& plan, Dtype dtype, const CodegenOptions& options) {
  return Generator(plan, dtype, options).run();
}

}  // namespace cuda
}  // namespace kernops
