// The CUDA code generator's contract (kernel_abi.h) and its refusals; what the kernels
// compute is checked by the emulation (test_cuda_emu.cpp), that they compile by NVRTC
// (test_cuda_nvrtc.cpp).
#include <gtest/gtest.h>

#include <string>

#include "cuda/codegen.h"
#include "kernops.h"

using namespace kernops;

TEST(CudaCodegen, ShapesMatchTheCpuEngine) {
  const std::vector<std::string> decls = {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)"};
  struct Want {
    const char* formula;
    int value_cols, index_cols, state_width64, state_width32;
  };
  // State per row in T: a double total or an int64 index takes one double or two floats.
  for (const Want& w : {Want{"Sum_Reduction(Exp(-SqDist(x,y))*b,0)", 2, 0, 2, 4},
                        Want{"Min_ArgMin_Reduction(x-y,1)", 3, 3, 6, 9},
                        Want{"ArgKMin_Reduction(SqDist(x,y),4,0)", 0, 4, 8, 12},
                        Want{"LogSumExp_Reduction(-SqDist(x,y),0,b)", 2, 0, 3, 5},
                        Want{"SumSoftMaxWeight_Reduction(-SqDist(x,y),0,b)", 2, 0, 4, 7}}) {
    const auto p = compile(w.formula, decls);
    for (Dtype dt : {Dtype::Float64, Dtype::Float32}) {
      const auto ks = cuda::generate_cuda(*p, dt);
      EXPECT_EQ(ks.value_cols, w.value_cols) << w.formula;
      EXPECT_EQ(ks.index_cols, w.index_cols) << w.formula;
      EXPECT_EQ(ks.state_width, dt == Dtype::Float64 ? w.state_width64 : w.state_width32) << w.formula;
      EXPECT_EQ(ks.block_size, 128);
      EXPECT_EQ(ks.reduce_name, "kernops_reduce");
      EXPECT_EQ(ks.merge_name, "kernops_merge");
      EXPECT_EQ(ks.source.find("#include"), std::string::npos);
      EXPECT_NE(ks.source.find(dt == Dtype::Float64 ? "typedef double T;" : "typedef float T;"), std::string::npos);
    }
  }
}

TEST(CudaCodegen, TileShrinksToFitSharedMemoryAndTooWidePointsAreRefused) {
  // 1000 doubles per j point (z read by pairs): 6 fit in 48 KB, so the tile is 4 (a power of two).
  const auto p = compile("Sum_Reduction(x*z,0)", {"x = Vi(1)", "z = Vj(1000)"});
  EXPECT_NE(cuda::generate_cuda(*p, Dtype::Float64).source.find("constexpr int K_TILE = 4;"), std::string::npos);
  EXPECT_NE(cuda::generate_cuda(*p, Dtype::Float32).source.find("constexpr int K_TILE = 8;"), std::string::npos);
  const auto wide = compile("Sum_Reduction(x*z,0)", {"x = Vi(1)", "z = Vj(7000)"});
  try {
    cuda::generate_cuda(*wide, Dtype::Float64);
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("7000 numbers per point"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(cuda::generate_cuda(*wide, Dtype::Float32));  // 28 KB
}

// Per-thread arrays: reported for the runtime's budget, refused past kMaxThreadArrayBytes
// (Sum(TensorProd) of two 256-vectors: a 516 KB frame, over the hardware's 512 KB).
TEST(CudaCodegen, PerThreadArraysAreReportedAndTooLargeOnesRefused) {
  const auto p = compile("Sum_Reduction(x*z,0)", {"x = Vi(1)", "z = Vj(1000)"});
  // x (1), z (1000), x*z (1000) doubles and 1000 double totals and partials
  EXPECT_EQ(cuda::generate_cuda(*p, Dtype::Float64).thread_bytes, 2001 * 8 + 2 * 1000 * 8);
  const auto big = compile("Sum_Reduction(Sum(TensorProd(x,y)),0)", {"x = Vi(256)", "y = Vj(256)"});
  try {
    cuda::generate_cuda(*big, Dtype::Float64);
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("KB of arrays per thread"), std::string::npos) << e.what();
  }
}

TEST(CudaCodegen, AnInstructionWithoutCudaCodeIsRefusedByName) {
  auto p = *compile("Sum_Reduction(Exp(x-y),0)", {"x = Vi(1)", "y = Vj(1)"});
  ASSERT_FALSE(p.prog[kIJ].empty());
  p.prog[kIJ].back().op = Op::Var;  // an op that is never an instruction
  try {
    cuda::generate_cuda(p, Dtype::Float64);
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("Var"), std::string::npos) << e.what();
  }
}

TEST(CudaCodegen, BlockSizeIsChecked) {
  const auto p = compile("Sum_Reduction(x*y,0)", {"x = Vi(1)", "y = Vj(1)"});
  cuda::CodegenOptions o;
  o.block_size = 0;
  EXPECT_THROW(cuda::generate_cuda(*p, Dtype::Float64, o), InputError);
  o.block_size = 2048;
  EXPECT_THROW(cuda::generate_cuda(*p, Dtype::Float64, o), InputError);
  o.block_size = 32;
  EXPECT_NE(cuda::generate_cuda(*p, Dtype::Float64, o).source.find("constexpr int K_TILE = 32;"), std::string::npos);
}
