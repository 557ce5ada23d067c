// Parser and printer of the formula language: round trips, sugar, positions of errors.
#include <gtest/gtest.h>

#include "kernops.h"

using namespace kernops;

namespace {
const std::vector<std::string> kDecls = {"x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)", "p = Pm(3)"};

Formula parse(const std::string& f) { return parse_formula(f, kDecls); }
}  // namespace

TEST(Parser, OpTableIsInEnumOrder) {
  for (int k = 0; k <= static_cast<int>(Op::TensorProd); ++k)
    EXPECT_EQ(static_cast<int>(op_info(static_cast<Op>(k)).op), k);
}

TEST(Parser, RoundTripsThroughThePrinter) {
  const char* formulas[] = {
      "Sum_Reduction(Exp(-s*SqNorm2(x-y))*b,0)",
      "Sum_Reduction(x-(y-p),1)",
      "Sum_Reduction(x/(y*p)-x*-2,0)",
      "Sum_Reduction(-(x*y)+Pow(x,-3)+Square(y)^2,0)",
      "Min_ArgMin_Reduction((x|y)+Elem(x,2)-Extract(y,1,1),0)",
      "KMin_ArgKMin_Reduction(SqDist(x,y),5,0)",
      "LogSumExp_Reduction(-SqDist(x,y)/s,1,b)",
      "SumSoftMaxWeight_Reduction(-SqDist(x,y),0,b)",
      "Sum_Reduction(Concat(x,y)+TensorProd(x,Concat(Sum(y),Sum(x))),0)",
      "Sum_Reduction(MatVecMult(TensorProd(x,y),p)+VecMatMult(p,TensorProd(y,x)),0)",
      "Sum_Reduction(IfElse(x-y,Clamp(x,-1,1),Min(x,Max(y,p))),0)",
      "Sum_Reduction(x^0.5+Powf(y,1.5)+1e-05*x+(1/0)*0+Vi(0,3)*Vj(1,3),0)",
      "Sum_Reduction(GaussKernel(s,x,y,b)+Matern52Kernel(s,x,y,b),0)",
      "Sum_Reduction(Normalize(x)*Norm2(y),0)",
      "Sum_Reduction(SumT(Sum(x),4)+ElemT(Elem(y,0),4,1)+ExtractT(x,1,4)+Zero(4),0)",
  };
  for (const char* src : formulas) {
    Formula a = parse(src);
    const std::string printed = a.to_string();
    Formula b = parse(printed);
    EXPECT_TRUE(equal(a.f, b.f)) << src << " printed as " << printed;
    EXPECT_EQ(printed, b.to_string()) << src;
    if (a.f2) {
      EXPECT_TRUE(equal(a.f2, b.f2)) << src;
    }
  }
}

TEST(Parser, CanonicalFormOfTheSeedFormula) {
  EXPECT_EQ(parse("Sum_Reduction( Exp(-s * SqNorm2(x - y)) * b , 0)").to_string(),
            "Sum_Reduction(Exp(-s*SqNorm2(x-y))*b,0)");
}

TEST(Parser, SimplifiesAsItBuilds) {
  EXPECT_EQ(parse("Sum_Reduction(1*x+0*y-0+x/1,0)").to_string(), "Sum_Reduction(x+x,0)");
  EXPECT_EQ(parse("Sum_Reduction(--x+2*3,0)").to_string(), "Sum_Reduction(x+6,0)");
}

TEST(Parser, ReportsTheOffendingTokenAndPosition) {
  struct Case {
    std::string src;
    long pos;
  } cases[] = {
      {"Sum_Reduction(Exp(-x, 0)", 20},   // Exp takes one argument: error at ','
      {"Sum_Reduction(Foo(x), 0)", 14},   // unknown function
      {"Sum_Reduction(z*x, 0)", 14},      // unknown variable
      {"Sum_Reduction(x, 2)", 17},        // bad axis
      {"Exp(x)", 0},                      // no reduction
      {"Sum_Reduction(x $ y, 0)", 16},    // bad character
      {"Sum_Reduction(x, 0) x", 20},      // trailing text
  };
  for (const auto& c : cases) {
    try {
      parse(c.src);
      ADD_FAILURE() << "no error for " << c.src;
    } catch (const ParseError& e) {
      EXPECT_EQ(e.pos, c.pos) << c.src << ": " << e.what();
      EXPECT_EQ(e.source, c.src);
    }
  }
}

TEST(Parser, DimensionMismatchIsADimensionError) {
  EXPECT_THROW(parse("Sum_Reduction(x-b,0)"), DimensionError);
  EXPECT_THROW(parse("Sum_Reduction(Elem(x,3),0)"), DimensionError);
  EXPECT_THROW(parse("Sum_Reduction(MatVecMult(b,p)+x,0)"), DimensionError);
  EXPECT_THROW(parse("Sum_Reduction(Vi(0,2),0)"), DimensionError);  // x is declared dim 3
}

// An inline variable is named V<pos>, unless a declared variable already has that name:
// the two then became two arguments named V1, and one silently took the other's data.
TEST(Parser, InlineVariablesGetNamesNoDeclarationHas) {
  const Formula f = parse_formula("Sum_Reduction(V1*Vj(1,1)+V1_*Vj(3,1),0)", {"V1 = Vi(0,1)", "V1_ = Vi(2,1)"});
  ASSERT_EQ(f.vars.size(), 4u);
  EXPECT_EQ(f.vars[0].name, "V1");
  EXPECT_EQ(f.vars[1].name, "V1__");
  EXPECT_EQ(f.vars[2].name, "V1_");
  EXPECT_EQ(f.vars[3].name, "V3");
}

// Dimensions past kMaxDim are refused where they arise; TensorProd of two 65536-vectors
// (2^32) used to wrap around to 0 and 65537-vectors to a small width that overran buffers.
TEST(Parser, DimensionsBeyondTheLimitAreRefused) {
  const std::vector<std::string> big = {"x = Vi(1)", "a = Pm(65537)", "c = Pm(65536)", "d = Pm(16777216)"};
  EXPECT_THROW(parse_formula("Sum_Reduction(Sum(TensorProd(a,a))*x,0)", big), DimensionError);
  EXPECT_THROW(parse_formula("Sum_Reduction(TensorProd(c,c)*x,0)", big), DimensionError);
  EXPECT_THROW(parse_formula("Sum_Reduction(Concat(d,x),0)", big), DimensionError);
  EXPECT_EQ(parse_formula("Sum_Reduction(Concat(d,d)*0+Sum(d)*x,0)", {"x = Vi(1)", "d = Pm(8388608)"}).f->dim,
            1 << 24);
  EXPECT_THROW(parse_formula("Sum_Reduction(SumT(x,16777217),0)", big), DimensionError);
  EXPECT_THROW(parse_formula("Sum_Reduction(Zero(16777217)+x,0)", big), ParseError);
  EXPECT_THROW(parse_formula("Sum_Reduction(Vi(1,16777217),0)", big), ParseError);
  EXPECT_THROW(parse_decl("x = Vi(16777217)", 0), ParseError);
  EXPECT_EQ(parse_decl("x = Vi(16777216)", 0).dim, 16777216);
}

TEST(Parser, Declarations) {
  VarDecl d = parse_decl("x=Vi(2,5)", 0);
  EXPECT_EQ(d.name, "x");
  EXPECT_EQ(d.pos, 2);
  EXPECT_EQ(d.dim, 5);
  EXPECT_EQ(parse_decl("s = Pm(1)", 3).pos, 3);
  EXPECT_THROW(parse_decl("x = Vk(3)", 0), ParseError);
  EXPECT_THROW(parse_decl("x Vi(3)", 0), ParseError);
  EXPECT_THROW(parse_decl("x = Vi(0)", 0), ParseError);
  EXPECT_THROW(parse_decl("Exp = Vi(3)", 0), ParseError);
  EXPECT_THROW(parse_formula("Sum_Reduction(x,0)", {"x = Vi(1)", "x = Vj(1)"}), ParseError);
  EXPECT_THROW(parse_formula("Sum_Reduction(x,0)", {"x = Vi(2,1)"}), InputError);  // gap at 0, 1
}

TEST(Parser, RejectsFormulasNestedBeyondTheLimit) {
  const std::string deep = "Sum_Reduction(" + std::string(100000, '(') + "x" + std::string(100000, ')') + ",0)";
  EXPECT_THROW(parse(deep), ParseError);
  std::string chain = "Sum_Reduction(x";
  for (int k = 0; k < 5000; ++k) chain += "+x";
  EXPECT_THROW(parse(chain + ",0)"), ParseError);
}
