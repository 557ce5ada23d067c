// The tile loop of the CPU backend, compiled once per instruction set: each
// translation unit cpu/tiles_<isa>.cpp defines KERNOPS_ISA, sets its target, then
// includes this header, so every kernel below lives in its own namespace
// kernops::cpu::<isa> and the copies never collide at link time (Note [ISA dispatch]).
// Include only from those files. No R headers here.
// Note [CPU tiling]
// The pair program runs over tiles of (one i) x (a run of B consecutive j), each node's
// values held in a per-thread buffer of dim x B, so the N x M matrix never exists.
// Values that depend on i only, j only or on parameters only are computed once, before
// the tiles (plan levels kI, kJ, kP), and seen from the tile as broadcast scalars or as
// contiguous slices. A task is a block of i rows times a range of j; within it the j
// runs are the outer loop, so each run of j data stays in L1 while every row of the
// block consumes it. Tasks split the j range too when there are few rows (small N,
// large M), and partial reduction states are merged afterwards. When the program has a
// high-dimensional distance (Note [Blocked distances]), rows go in groups of six, each
// with its own pair buffer: the distances of the group are computed together, then the
// rest of the program runs row by row as usual.
#include "isa.h"
#include "../vmath.h"
#include "../parallel.h"
#include "../scalar_ops.h"
#include "span.h"
#include "eval.h"
#include "make_reducer.h"
#include "sqdist_block.h"

namespace kernops {
namespace cpu {
inline namespace KERNOPS_ISA {


template <class T>
class Runner {
 public:
  Runner(const Plan& p, const std::vector<ArgData>& args, const OutShape& shape)
      : p_(p), N_(shape.rows), M_(shape.reduced), reducer_(make_reducer<T>(p)) {
    const size_t ns = p.slots.size();
    base_.assign(ns, nullptr);
    cs_.assign(ns, 0);
    // Inputs: aliased (float64) or converted once (float32), each component of a converted
    // argument starting on a cache line (Note [Aligned buffers]).
    std::vector<const T*> arg_ptr(args.size());
    std::vector<std::int64_t> arg_stride(args.size());
    for (size_t a = 0; a < args.size(); ++a) {
      const std::int64_t rows = args[a].rows, cols = args[a].cols;
      if (std::is_same<T, double>::value) {
        arg_ptr[a] = reinterpret_cast<const T*>(args[a].data);
        arg_stride[a] = rows;
      } else {
        const std::int64_t stride = rows == 1 ? 1 : padded(rows);
        converted_.emplace_back(static_cast<size_t>(stride * cols), T(0));
        for (std::int64_t c = 0; c < cols; ++c)
          std::copy(args[a].data + c * rows, args[a].data + (c + 1) * rows, converted_.back().data() + c * stride);
        arg_ptr[a] = converted_.back().data();
        arg_stride[a] = stride;
      }
    }
    const std::int64_t rows_of[4] = {1, padded(N_), padded(M_), 0};
    for (int l = kP; l <= kJ; ++l) buf_[l].assign(static_cast<size_t>(p.level_width[l] * rows_of[l]), T(0));
    for (size_t s = 0; s < ns; ++s) {
      const Slot& sl = p.slots[s];
      if (sl.level == kIJ) continue;
      if (sl.arg >= 0) {
        base_[s] = arg_ptr[sl.arg];
        cs_[s] = sl.level == kP ? 1 : arg_stride[sl.arg];
      } else {
        base_[s] = buf_[sl.level].data() + sl.offset * rows_of[sl.level];
        cs_[s] = rows_of[sl.level];
      }
    }
    // High-dimensional distances between an i-only and a j-only value are computed for
    // groups of rows at once (Note [Blocked distances]); each row of a group then needs its
    // own pair buffer.
    const auto& prog = p.prog[kIJ];
    for (size_t k = 0; k < prog.size(); ++k) {
      const Instr& ins = prog[k];
      if (!is_blocked_sqdist(p, ins)) continue;
      const bool i_first = p.slots[ins.in[0]].level == kI;
      blocked_.push_back({k, ins.in[i_first ? 0 : 1], ins.in[i_first ? 1 : 0]});
    }
    // Otherwise rows go in fours or pairs when the reducer folds them at once more cheaply
    // (Note [Row quads], Note [Row pairs] in reducers.h), unless the extra pair buffers would
    // shorten the tiles: shorter runs cost more per pair.
    group_ = !blocked_.empty() ? kBlockRows : 1;
    B_ = run_length(group_);
    for (int g = reducer_->rows_per_fold(); group_ == 1 && g > 1; g /= 2)
      if (run_length(g) == B_) group_ = g;
  }

  // Tile length for `group` rows: up to 8192 points while their pair buffers and the
  // scratch fit in 48 KB (about L1), so that a program's passes over them and the
  // reducer's stay in L1. A pair program that is one fused radial kernel streams through
  // its buffers instead, and there the costs paid once per run of each row (dispatch, the
  // reducer's horizontal sums, the start of each stream of j data) weigh more: it gets
  // 192 KB (L2). bench/reductions.R, one thread: a 192 KB budget for every program made the
  // Gaussian sums 5-7% faster than 48 KB, but Min_ArgMin 27% and ArgKMin 9% slower
  // (bench/RESULTS.md, 2026-11-28 00:48-00:54). The budget counts one row's pair buffer
  // there, whatever the group: the group's other buffers stream through L2 too (counting
  // them gave W1 runs of 2048 and lost the gain of folding rows in fours, bench/RESULTS.md
  // 2026-11-28 05:40-06:30).
  int run_length(int group) const {
    const auto& prog = p_.prog[kIJ];
    const bool streaming = prog.size() == 1 && prog[0].op == Op::RadialKernel;
    const std::int64_t w = std::max<std::int64_t>(1, (streaming ? 1 : group) * p_.level_width[kIJ] + 3);
    const std::int64_t budget = (streaming ? 192 : 48) * 1024;
    int b = 8192;
    while (b > 16 && static_cast<std::int64_t>(b) * w * static_cast<std::int64_t>(sizeof(T)) > budget) b /= 2;
    return b;
  }

  void run(double* values, double* indices, const RunConfig& cfg) {
    precompute();
    const int T_ = std::max(1, cfg.n_threads);
    // Note [CPU tiling]: rows per task so that a task is ~32M pairs, at least 4 tasks per
    // thread. Each task reads every j run from L3 (or memory) once, for all its rows: with
    // tasks of 4M pairs, W1 at N = M = 1e5 (44 rows per task) ran 2.5% slower per pair
    // than at 3e4 (bench/RESULTS.md, 2026-11-28 06:30-07:10). A task of 32M W1 pairs takes
    // ~45 ms, which bounds how long an interrupt waits (Control). With few j, the rows'
    // reduction states (K-min's 2K values per row) cap a task at ~8 MB of them.
    const int S = reducer_->state_size;
    std::int64_t ti = std::min<std::int64_t>((N_ + 4 * T_ - 1) / (4 * T_), kTaskPairs / M_);
    ti = std::max<std::int64_t>(1, std::min<std::int64_t>(ti, kTaskStates / std::max(1, S)));
    ti = (ti + group_ - 1) / group_ * group_;  // whole groups of rows (Note [Blocked distances])
    const std::int64_t ni = (N_ + ti - 1) / ti;
    // Few row blocks: shorter runs (not below 512), so that the j range splits into enough
    // tasks for every thread.
    // (Neither with cfg.split_reduced false: RunConfig.)
    const bool split = cfg.split_reduced && T_ > 1;
    while (B_ > 512 && split && ni < 4 * T_ && (M_ + B_ - 1) / B_ < 4 * T_) B_ /= 2;
    std::int64_t nj = 1;
    const std::int64_t j_runs = (M_ + B_ - 1) / B_;
    if (ni < 4 * T_ && split) nj = std::min<std::int64_t>((4 * T_ + ni - 1) / ni, j_runs);
    const std::int64_t j_per_task = ((j_runs + nj - 1) / nj) * B_;
    nj = (M_ + j_per_task - 1) / j_per_task;
    std::vector<double> partial;
    if (nj > 1) partial.assign(static_cast<size_t>(N_ * nj * S), 0.0);

    const int threads = N_ * M_ < (1 << 15) ? 1 : T_;
    std::vector<std::vector<T, CacheLineAllocator<T>>> work(static_cast<size_t>(threads));
    std::vector<std::vector<double>> states(static_cast<size_t>(threads));
    const std::vector<std::uintptr_t> streams = j_stream_residues();
    const std::vector<std::int64_t> starts = row_blocks(ti, nj == 1 ? threads : 1);
    const std::int64_t nb = static_cast<std::int64_t>(starts.size()) - 1;
    parallel_for(nb * nj, threads, cfg.control, [&](std::int64_t task, int worker, const StopCheck& stop) {
      FlushSubnormals flush;  // on whichever thread runs the task (Note [Subnormals])
      const std::int64_t bi = task / nj, bj = task % nj;
      const std::int64_t i0 = starts[bi], i1 = starts[bi + 1];
      const std::int64_t j0 = bj * j_per_task, j1 = std::min(M_, j0 + j_per_task);
      auto& wk = work[static_cast<size_t>(worker)];
      auto& st = states[static_cast<size_t>(worker)];
      wk.resize(static_cast<size_t>((group_ * p_.level_width[kIJ] + 3) * B_ + kPage / sizeof(T)));
      st.resize(static_cast<size_t>((i1 - i0) * S));
      if (!tile_block(i0, i1, j0, j1, wk.data() + work_offset(wk.data(), streams), st.data(), stop)) return;
      for (std::int64_t i = i0; i < i1; ++i) {
        const double* row = st.data() + (i - i0) * S;
        if (nj > 1)
          std::copy(row, row + S, partial.data() + (i * nj + bj) * S);
        else
          reducer_->finish(row, OutRow{values, indices, N_, i});
      }
    });
    if (nj > 1)
      for (std::int64_t i = 0; i < N_; ++i) {
        double* first = partial.data() + i * nj * S;
        for (std::int64_t bj = 1; bj < nj; ++bj) reducer_->merge(first, first + bj * S);
        reducer_->finish(first, OutRow{values, indices, N_, i});
      }
  }

 private:
  // View of slot s from a context of level `ctx` at row i / run start j0.
  Span<T> view(int s, Level ctx, std::int64_t i, std::int64_t j0, T* ij) const {
    const Slot& sl = p_.slots[static_cast<size_t>(s)];
    Span<T> v;
    v.dim = sl.dim;
    switch (sl.level) {
      case kP:
        v.p = base_[s];
        v.cs = cs_[s];
        v.bc = true;
        break;
      case kI:
        v.p = base_[s] + i;
        v.cs = cs_[s];
        v.bc = ctx != kI;
        break;
      case kJ:
        v.p = base_[s] + j0;
        v.cs = cs_[s];
        v.bc = false;
        break;
      case kIJ:
        v.p = ij + sl.offset * B_;
        v.cs = B_;
        v.bc = false;
        break;
    }
    return v;
  }

  Scratch<T> scratch(T* wk) const {
    T* s = wk + group_ * p_.level_width[kIJ] * B_;
    return {s, s + B_, s + 2 * B_};
  }

  void exec(const Instr& ins, Level ctx, std::int64_t i, std::int64_t j0, T* ij, int n, const Scratch<T>& sc) {
    Span<T> in[4];  // the most inputs of any op (RadialKernel)
    for (size_t a = 0; a < ins.in.size(); ++a) in[a] = view(ins.in[a], ctx, i, j0, ij);
    Span<T> o = view(ins.out, ctx, i, j0, ij);
    OutSpan<T> out{const_cast<T*>(o.p), o.cs, o.dim};
    eval_instr(ins, out, in, n, sc);
  }

  // Parameter-, i- and j-level programs, computed once per call.
  void precompute() {
    std::vector<T> wk(static_cast<size_t>(3 * B_ + 3));
    T* s = wk.data();
    Scratch<T> sc{s, s + B_, s + 2 * B_};
    for (const auto& ins : p_.prog[kP]) exec(ins, kP, 0, 0, nullptr, 1, sc);
    for (std::int64_t i0 = 0; i0 < N_ && !p_.prog[kI].empty(); i0 += B_)
      for (const auto& ins : p_.prog[kI]) exec(ins, kI, i0, 0, nullptr, static_cast<int>(std::min<std::int64_t>(B_, N_ - i0)), sc);
    for (std::int64_t j0 = 0; j0 < M_ && !p_.prog[kJ].empty(); j0 += B_)
      for (const auto& ins : p_.prog[kJ]) exec(ins, kJ, 0, j0, nullptr, static_cast<int>(std::min<std::int64_t>(B_, M_ - j0)), sc);
  }

  // Folds the pairs of rows [i0, i1) and points [j0, j1) into the rows' states st; false
  // when stop() asked to end early (checked after each group of rows and run).
  bool tile_block(std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1, T* wk, double* st,
                  const StopCheck& stop) {
    const int S = reducer_->state_size;
    const Scratch<T> sc = scratch(wk);
    for (std::int64_t i = i0; i < i1; ++i) reducer_->init(st + (i - i0) * S);
    const auto& prog = p_.prog[kIJ];
    const auto& parts = p_.parts;
    const std::int64_t row_stride = p_.level_width[kIJ] * B_;  // one row's pair values
    std::vector<bool> skip(prog.size(), false);
    for (const auto& bl : blocked_) skip[bl.instr] = true;
    std::vector<T> packed;
    std::vector<Span<T>> f(parts.size() * group_), g(parts.size() * group_);  // by row, then part
    std::vector<Span<T>> fc(f.size()), gc(g.size());                          // the same, per chunk
    double* rows_st[kBlockRows];
    for (std::int64_t jr = j0; jr < j1; jr += B_) {
      const int n = static_cast<int>(std::min<std::int64_t>(B_, j1 - jr));
      for (std::int64_t g0 = i0; g0 < i1; g0 += group_) {
        const int rows = static_cast<int>(std::min<std::int64_t>(group_, i1 - g0));
        for (const auto& bl : blocked_) blocked_sqdist(bl, g0, rows, jr, n, wk, row_stride, packed);
        for (int r = 0; r < rows; ++r) {
          const std::int64_t i = g0 + r;
          T* ij = wk + r * row_stride;
          for (size_t k = 0; k < prog.size(); ++k)
            if (!skip[k]) exec(prog[k], kIJ, i, jr, ij, n, sc);
          for (size_t q = 0; q < parts.size(); ++q) {
            f[r * parts.size() + q] = view(parts[q].a, kIJ, i, jr, ij);
            g[r * parts.size() + q] = parts[q].b >= 0 ? view(parts[q].b, kIJ, i, jr, ij) : Span<T>{};
          }
          rows_st[r] = st + (i - i0) * S;
        }
        fold_in_chunks(rows_st, f, g, fc, gc, rows, n, jr, sc);
        if (stop()) return false;
      }
    }
    return true;
  }

  // Folds a run into the rows' states. float32 runs go in chunks of kFloatSumChunk points:
  // the reducers sum each call's points in T before adding to the double state, and
  // float32 sums of 8192 terms lost about twice the digits of sums of 2048 (W1's max
  // relative error vs the float64 reference went from 5.6e-7 to 1.2e-6).
  static constexpr int kFloatSumChunk = 2048;
  // fc, gc: room for the chunks' views.
  void fold_in_chunks(double* const* rows_st, const std::vector<Span<T>>& f, const std::vector<Span<T>>& g,
                      std::vector<Span<T>>& fc, std::vector<Span<T>>& gc, int rows, int n, std::int64_t jr,
                      const Scratch<T>& sc) const {
    const int chunk = std::is_same<T, float>::value ? kFloatSumChunk : n;
    if (n <= chunk) {
      reducer_->fold_rows(rows_st, f.data(), g.data(), rows, n, jr, sc);
      return;
    }
    fc = f;
    gc = g;
    for (int c0 = 0; c0 < n; c0 += chunk) {
      for (size_t q = 0; q < f.size(); ++q) {
        if (!f[q].bc && f[q].p) fc[q].p = f[q].p + c0;
        if (!g[q].bc && g[q].p) gc[q].p = g[q].p + c0;
      }
      reducer_->fold_rows(rows_st, fc.data(), gc.data(), rows, std::min(chunk, n - c0), jr + c0, sc);
    }
  }

  // A blocked SqDistFused (Note [Blocked distances]) for rows g0 .. g0+rows-1 and the run
  // at jr, written into each row's pair buffer.
  struct Blocked {
    size_t instr;
    int x, y;  // the i-only and the j-only operand
  };
  void blocked_sqdist(const Blocked& bl, std::int64_t g0, int rows, std::int64_t jr, int n, T* wk,
                      std::int64_t row_stride, std::vector<T>& packed) const {
    const Instr& ins = p_.prog[kIJ][bl.instr];
    const int D = p_.slots[bl.x].dim;
    const std::int64_t out_off = p_.slots[ins.out].offset * B_;
    // A last, partial group repeats its last row: the kernel always runs six rows (a
    // one-row kernel would be latency-bound) and the copies write that row's buffer again.
    packed.resize(static_cast<size_t>(D * kBlockRows));
    for (int d = 0; d < D; ++d)
      for (int r = 0; r < kBlockRows; ++r) packed[d * kBlockRows + r] = base_[bl.x][g0 + std::min(r, rows - 1) + d * cs_[bl.x]];
    T* out[kBlockRows];
    for (int r = 0; r < kBlockRows; ++r) out[r] = wk + std::min(r, rows - 1) * row_stride + out_off;
    sqdist_block<T, kBlockRows>(out, packed.data(), base_[bl.y] + jr, cs_[bl.y], D, n);
  }

  // Where each block of rows starts, then N_. Blocks have ti rows; with several threads
  // taking them (a row block per task), the last ones shrink to ~1/(2 threads) of the rows
  // left, down to ~1M pairs, so that the threads finish together: with equal blocks one
  // thread could wait for the other's last block, a whole task. W1 at N = M = 17378 has
  // nine such tasks: two threads took 0.227 s with equal blocks, 0.208 s with shrinking
  // ones (driver, median of 9; bench/RESULTS.md, 2026-11-28 08:45).
  std::vector<std::int64_t> row_blocks(std::int64_t ti, int threads) const {
    const auto whole_groups = [this](std::int64_t rows) { return (rows + group_ - 1) / group_ * group_; };
    const std::int64_t smallest = std::min(ti, whole_groups(std::max<std::int64_t>(1, kMinTaskPairs / M_)));
    std::vector<std::int64_t> starts{0};
    for (std::int64_t i = 0; i < N_;) {
      std::int64_t rows = ti;
      if (threads > 1) rows = std::min(ti, std::max(smallest, whole_groups((N_ - i + 2 * threads - 1) / (2 * threads))));
      i = std::min(N_, i + rows);
      starts.push_back(i);
    }
    return starts;
  }

  // Note [4K aliasing]
  // A load waits for an earlier store whose address has the same low 12 bits (a false
  // dependence in the store buffer). The pair loops store into the work buffers while they
  // stream the j-level inputs at the same point index, so where the work buffers start a
  // little past an input stream on the 4 KB page, that stream's loads wait: on the driver's
  // W1 (float64, one thread) the work buffers' offset alone moved the time between 1.26 and
  // 1.49 s (bench/RESULTS.md, 2026-11-28 05:15). The buffers' runs are B values, a multiple
  // of 4 KB once B * sizeof(T) >= 4096, so one offset serves them all: the one farthest past
  // every j-level input stream, in cache lines.
  static constexpr std::uintptr_t kPage = 4096;
  static constexpr std::int64_t kTaskPairs = std::int64_t(1) << 25;
  static constexpr std::int64_t kMinTaskPairs = std::int64_t(1) << 20;  // the last, shrinking blocks
  static constexpr std::int64_t kTaskStates = std::int64_t(1) << 20;  // doubles
  // Where each component of each j-level value starts on its page (fixed for the call).
  std::vector<std::uintptr_t> j_stream_residues() const {
    std::vector<std::uintptr_t> streams;
    for (size_t s = 0; s < p_.slots.size(); ++s)
      if (p_.slots[s].level == kJ && base_[s])
        for (int k = 0; k < p_.slots[s].dim; ++k)
          streams.push_back(reinterpret_cast<std::uintptr_t>(base_[s] + k * cs_[s]) % kPage);
    return streams;
  }
  // The offset, in values from `wk` (which has a page to spare), given j_stream_residues().
  static std::size_t work_offset(const T* wk, const std::vector<std::uintptr_t>& streams) {
    constexpr std::uintptr_t kLine = 64;
    const std::uintptr_t w = reinterpret_cast<std::uintptr_t>(wk) % kPage;
    std::uintptr_t best = 0, best_gap = 0;
    for (std::uintptr_t o = 0; o < kPage; o += kLine) {
      std::uintptr_t gap = kPage;
      for (std::uintptr_t st : streams) gap = std::min(gap, (w + o + kPage - st) % kPage);
      if (gap > best_gap) {
        best_gap = gap;
        best = o;
      }
    }
    return best / sizeof(T);
  }

  // Note [Aligned buffers]
  // The engine's own buffers (pair buffers and scratch, i- and j-level values, float32
  // copies of the inputs) start on 64-byte boundaries and their components on multiples of
  // 16 values, so vector loads of a run never straddle two cache lines. With the heap's
  // 16-byte alignment the same build ran LogSumExp and SumSoftMaxWeight 5-13% faster or
  // slower depending on where earlier calls had left the heap; aligned, they run at the
  // faster speed, and W1 2-6% faster (bench/RESULTS.md, 2026-11-28 04:45-05:05). float64
  // inputs are read where R keeps them: copying them gained nothing.
  static std::int64_t padded(std::int64_t rows) { return (rows + 15) / 16 * 16; }

  const Plan& p_;
  std::int64_t N_, M_;
  std::unique_ptr<Reducer<T>> reducer_;
  std::vector<std::vector<T, CacheLineAllocator<T>>> converted_;
  std::vector<T, CacheLineAllocator<T>> buf_[3];
  std::vector<const T*> base_;
  std::vector<std::int64_t> cs_;
  std::vector<Blocked> blocked_;
  int group_ = 1;  // rows evaluated together: kBlockRows when some distance is blocked
  int B_ = 256;
};


// Entry point of this instruction set's copy of the engine.
void run_tiles(const Plan& plan, const std::vector<ArgData>& args, const OutShape& shape, double* values,
               double* indices, const RunConfig& config) {
  if (config.dtype == Dtype::Float32) {
    Runner<float> r(plan, args, shape);
    r.run(values, indices, config);
  } else {
    Runner<double> r(plan, args, shape);
    r.run(values, indices, config);
  }
}

}  // namespace KERNOPS_ISA
}  // namespace cpu
}  // namespace kernops
