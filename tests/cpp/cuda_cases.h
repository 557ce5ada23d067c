// The formulas whose generated CUDA kernels the tests compile with NVRTC
// (test_cuda_nvrtc.cpp) and execute on the CPU through the emulation (cuda_emu_gen.cpp
// writes them as host C++ at build time, test_cuda_emu.cpp runs them against run_cpu).
// Together they use every op of the formula language and every radial kernel kind
// (test_cuda_nvrtc.cpp checks that), every reduction, both axes and both dtypes.
#pragma once
#include <string>
#include <vector>

#include "kernops.h"

namespace kernops_test {

// Shared by every case: the emulation feeds random data in [-1, 1] to all of them. z is
// wide enough that the float64 kernels of its case get a j-tile shorter than the block
// (codegen.cpp, choose_tile).
inline const std::vector<std::string>& cuda_case_decls() {
  static const std::vector<std::string> d = {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)",
                                             "p = Pm(3)", "u = Vi(1)", "v = Vj(1)", "z = Vj(400)"};
  return d;
}

// A reduction without its axis: head + ",K" (K-min family) + ",<axis>" + ",W" (weight) + ")".
struct CudaBody {
  const char* head;    // "Sum_Reduction(F"
  const char* before;  // before the axis: "" or ",K"
  const char* after;   // after the axis: "" or ",W"
  int block_size;
};

inline const std::vector<CudaBody>& cuda_bodies() {
  static const std::vector<CudaBody> b = {
      // Sums: every op, the fused radial kernels, Sum parts (plan.cpp Note [Sum parts]).
      {"Sum_Reduction(Exp(-s*SqNorm2(x-y))*b", "", "", 16},
      {"Sum_Reduction(Log(1+Square(x))*Sin(y)+Cos(p)-(x*y)", "", "", 16},
      {"Sum_Reduction(Abs(x-y)+Sign(x-y)+Step(x-y)+ReLU(x-y)+(x-y)/(2+SqDist(x,y))", "", "", 8},
      {"Sum_Reduction(IfElse(x-y,x,y)+Clamp(x-y,-0.5,0.5)+Min(x,y)-Max(x,p)+Clamp(y,x,p)", "", "", 16},
      {"Sum_Reduction(Pow(x-y,3)+Pow(y,-2)+Powf(Abs(x-y)+0.5,y)+Sqrt(Abs(x-y))+Rsqrt(1+SqDist(x,y))", "", "", 16},
      {"Sum_Reduction(Inv(4+(x|y))*Elem(b,0)+Log1p(Abs(x-y))+Expm1(x-y)", "", "", 16},
      {"Sum_Reduction(Concat(x,b)+TensorProd(Elem(x,0),Concat(y,Extract(y,0,2)))", "", "", 16},
      {"Sum_Reduction(MatVecMult(TensorProd(x,y),p)+VecMatMult(y,TensorProd(x,p))+Normalize(x-y)", "", "", 16},
      {"Sum_Reduction(Matern32Kernel(s,x,y,b)+Matern52Kernel(s,x,y,b)+LaplaceKernel(s,x,y,b)", "", "", 16},
      {"Sum_Reduction(CauchyKernel(s*s,x,y,b)+InverseMultiquadricKernel(s*s,x,y,b)+GaussKernel(s,x,y,b)", "", "", 16},
      {"Sum_Reduction(SumT(Sum(y),4)+ElemT(Elem(y,0),4,1)+ExtractT(x,1,4)+Max(Zero(4),Concat(y,u))+SqNorm2(x)*Concat(y,u)", "", "", 16},
      {"Sum_Reduction(Grad(Exp(-SqDist(x,y)*s)*(x|y),x,u)", "", "", 16},
      {"Sum_Reduction(Concat(Elem(x,0)*y,Concat(Elem(x,0)*y,b*s))", "", "", 16},
      {"Sum_Reduction(Concat(b,Concat(x,s*Sum(x)))", "", "", 16},
      {"Sum_Reduction(Exp(-SqNorm2(z)*s*0.01)*v+Sum(z*u)", "", "", 16},
      // Min / max with their indices: ties (Step), +-inf and NaN (Log of x - y <= 0).
      {"Min_Reduction(Concat(SqDist(x,y),Step(x-y))", "", "", 16},
      {"Max_Reduction(Concat(SqDist(x,y),Log(x-y))", "", "", 16},
      {"ArgMin_Reduction(Concat(SqDist(x,y),Step(x-y))", "", "", 16},
      {"ArgMax_Reduction(Concat(SqDist(x,y),Step(x-y))", "", "", 8},
      {"Min_ArgMin_Reduction(Concat(SqDist(x,y),Log(x-y))", "", "", 16},
      {"Max_ArgMax_Reduction(Concat(SqDist(x,y),Step(x-y))", "", "", 16},
      // K-min: sorted lists, ties, NaN skipped; K larger than a tile.
      {"KMin_Reduction(Concat(SqDist(x,y),Step(Elem(x-y,0)))", ",3", "", 16},
      {"ArgKMin_Reduction(SqDist(x,y)", ",5", "", 16},
      {"KMin_ArgKMin_Reduction(Concat(SqDist(x,y),Log(Elem(x-y,1)))", ",20", "", 8},
      // Whole rows of NaN (index -1, value NaN) and of +inf (the first index), NaN among values.
      {"Min_ArgMin_Reduction(Concat(Log(-1-SqDist(x,y)),Inv(Step(-1-SqDist(x,y))))", "", "", 16},
      {"KMin_ArgKMin_Reduction(Concat(Log(-1-SqDist(x,y)),Log(Elem(x-y,2)))", ",4", "", 16},
      {"LogSumExp_Reduction(Concat(Log(Step(-1-SqDist(x,y))),Log(Elem(x-y,0)))", "", "", 16},
      {"SumSoftMaxWeight_Reduction(Log(Elem(x-y,0))", "", ",b", 16},
      // LogSumExp, with and without weights, -inf terms; SumSoftMaxWeight.
      {"LogSumExp_Reduction(Concat(-SqDist(x,y)*s,x-y)", "", "", 16},
      {"LogSumExp_Reduction(Log(Step(Elem(x-y,0)))-SqDist(x,y)", "", "", 16},
      {"LogSumExp_Reduction(-SqDist(x,y)", "", ",Exp(b)", 16},
      {"SumSoftMaxWeight_Reduction(-SqDist(x,y)*s", "", ",Concat(b,y)", 16},
      // The production block size (CodegenOptions' default, 128): one partial block and tile.
      {"Sum_Reduction(Exp(-s*SqNorm2(x-y))*b", "", "", 128},
      {"LogSumExp_Reduction(-SqDist(x,y)*s", "", ",b", 128},
  };
  return b;
}

// One generated kernel of the tests: a formula, its dtype, its block size.
struct CudaCase {
  std::string formula;
  kernops::Dtype dtype;
  int block_size;
  int axis;
};

// Every body on both axes in both dtypes, in a fixed order (the emulation's generated
// files are indexed by it).
inline std::vector<CudaCase> cuda_cases() {
  std::vector<CudaCase> out;
  for (const auto& b : cuda_bodies())
    for (int axis = 0; axis < 2; ++axis)
      for (kernops::Dtype dt : {kernops::Dtype::Float64, kernops::Dtype::Float32})
        out.push_back({std::string(b.head) + b.before + "," + std::to_string(axis) + b.after + ")", dt, b.block_size, axis});
  return out;
}

}  // namespace kernops_test
