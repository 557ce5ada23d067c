// The generated CUDA kernels compile with NVRTC for sm_80 and sm_90 (skipped where the CUDA
// toolkit is absent), and the cases of cuda_cases.h use every op, radial kernel kind and
// reduction, so that "every case compiles" (here) and "every case runs right" (the
// emulation, test_cuda_emu.cpp) cover the whole formula language.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <vector>
#include <set>
#include <string>

#include "cuda/codegen.h"
#include "cuda_cases.h"
#include "fuse.h"
#include "cuda/nvrtc.h"

using namespace kernops;

TEST(CudaCases, UseEveryOpRadialKindAndReduction) {
  std::set<int> ops, kinds, reductions;
  for (const auto& c : kernops_test::cuda_cases()) {
    const auto p = compile(c.formula, kernops_test::cuda_case_decls());
    reductions.insert(static_cast<int>(p->kind));
    for (const auto& prog : p->prog)
      for (const auto& ins : prog) {
        ops.insert(static_cast<int>(ins.op));
        if (ins.op == Op::RadialKernel) kinds.insert(ins.params[0]);
      }
  }
  for (int o = static_cast<int>(Op::Const); o <= static_cast<int>(Op::RadialKernel); ++o)
    EXPECT_TRUE(ops.count(o)) << "no case's plan has the op " << op_info(static_cast<Op>(o)).name;
  EXPECT_EQ(static_cast<int>(kinds.size()), kRadialKinds);
  EXPECT_EQ(static_cast<int>(reductions.size()), static_cast<int>(RedKind::SumSoftMaxWeight) + 1);
}

// The kernels in four NVRTC programs (not one per kernel: NVRTC's start costs more than a
// small kernel), each source in a namespace so that names do not clash (KERNOPS_EXTERN_C
// empty), the same text otherwise. Each architecture compiles every case body in both
// dtypes and on both axes, each (body, axis, dtype) once: sm_80 axis 0 in float64 and axis
// 1 in float32, sm_90 the others. Compiling everything for both took twice the time (20 s
// of CPU) for what only ptxas does differently. The four run at once.
TEST(CudaNvrtc, EveryGeneratedKernelCompilesForSm80AndSm90) {
  std::string why;
  if (!cuda::Nvrtc::available(&why)) GTEST_SKIP() << why;
  const auto& nvrtc = cuda::Nvrtc::get();
  const auto cases = kernops_test::cuda_cases();
  struct Job {
    std::string what, program;
    int cc;
    std::future<cuda::CompiledImage> result;
  };
  std::vector<Job> jobs;
  for (Dtype dt : {Dtype::Float64, Dtype::Float32})
    for (int axis = 0; axis < 2; ++axis) {
      std::string program = "#define KERNOPS_EXTERN_C\n";
      int count = 0;
      for (size_t c = 0; c < cases.size(); ++c) {
        if (cases[c].dtype != dt || cases[c].axis != axis) continue;
        const auto p = compile(cases[c].formula, kernops_test::cuda_case_decls());
        const auto ks = cuda::generate_cuda(*p, dt);
        EXPECT_EQ(ks.source.find("#include"), std::string::npos);
        program += "namespace case" + std::to_string(c) + " {\n" + ks.source + "}\n";
        ++count;
      }
      const int cc = (axis == 0) == (dt == Dtype::Float64) ? 80 : 90;
      jobs.push_back({std::to_string(count) + (dt == Dtype::Float32 ? " float32" : " float64") + " kernels of axis " +
                          std::to_string(axis) + " for sm_" + std::to_string(cc),
                      program, cc, {}});
    }
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& j : jobs)
    j.result = std::async(std::launch::async, [&nvrtc, &j] {
      return nvrtc.compile(j.program, j.cc);
    });
  for (auto& j : jobs) {
    try {
      const auto r = j.result.get();
      EXPECT_FALSE(r.is_ptx) << j.what;
      EXPECT_GT(r.image.size(), 0u) << j.what;
    } catch (const cuda::CompileError& e) {
      ADD_FAILURE() << j.what << ":\n" << e.log;
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ nvrtc    ] %s, ...: %.1f s for the four (%s)\n", jobs[0].what.c_str(), s, nvrtc.library().c_str());
}

// One source exactly as the runtime compiles it (extern "C" kernels, default block size).
TEST(CudaNvrtc, AStandaloneSourceCompilesAsIs) {
  std::string why;
  if (!cuda::Nvrtc::available(&why)) GTEST_SKIP() << why;
  const auto& nvrtc = cuda::Nvrtc::get();
  const auto p = compile("ArgKMin_Reduction(SqDist(x,y),10,0)", {"x = Vi(3)", "y = Vj(3)"});
  for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
    const auto ks = cuda::generate_cuda(*p, dt);
    EXPECT_NE(ks.source.find("extern \"C\""), std::string::npos);
    try {
      const auto r = nvrtc.compile(ks.source, 90);
      EXPECT_EQ(r.log.find("warning"), std::string::npos) << r.log;
    } catch (const cuda::CompileError& e) {
      ADD_FAILURE() << e.log;
    }
  }
}
