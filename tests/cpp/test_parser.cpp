// Parser and printer of the formula language: round trips, sugar, positions of errors.
#include <gtest/gtest.h>

#include "kernops.h"

using namespace kernops;

namespace {
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif
const std::vector<std::string> kDecls = {"x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)", "p = Pm(3)"};

Formula parse(const std::string& f) { return parse_formula(f, kDecls); }
std::string nested(const char* fn, int depth, std::string inner) {
  for (int k = 0; k < depth; ++k) inner = std::string(fn) + "(" + inner + ")";
  return inner;
}
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
      "Sum_Reduction(x-(-y)*p+x/(-y)-(-x-y)*(-2)+(-x)*y-(-(x|y))*x,0)",
  };
  for (const char* src : formulas) {
    Formula a = parse(src);
    const std::string printed = a.to_string();
    Formula b = parse(printed);
    EXPECT_TRUE(equal(a.f, b.f)) << src << " printed as " << printed;
    EXPECT_EQ(printed, b.to_string()) << src;
    EXPECT_GE(printed_length_bound(a.f, a.names()), static_cast<std::int64_t>(to_string(a.f, a.names()).size()));
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

// "Vi(3 4)" was read as Vi(3,4); "Vi(3e9)" converted 3e9 to int before the range check
// (undefined behaviour, found by fuzzing: issue 16, items 11 and 12).
TEST(Parser, DeclarationsNeedCommasAndIntegersInRange) {
  try {
    parse_decl("x = Vi(3 4)", 0);
    ADD_FAILURE() << "Vi(3 4) accepted";
  } catch (const ParseError& e) {
    EXPECT_EQ(e.token, "4");
    EXPECT_EQ(e.pos, 9);
    EXPECT_NE(std::string(e.what()).find("found '4'"), std::string::npos) << e.what();
  }
  for (const char* bad : {"x = Vi(3e9)", "x = Vi(0,3e9)", "x = Vi(3e9,1)", "x = Vi(-1)", "x = Vi(1,2,3)",
                          "x = Vi(1,)", "x = Vi(,1)", "x = Vi(1.5)", "x = Vi()"})
    EXPECT_THROW(parse_decl(bad, 0), ParseError) << bad;
  EXPECT_EQ(parse_decl("x = Vi(4, 3)", 0).pos, 4);
}

namespace {
// The ParseError `source` throws, or one with an empty message if it parses.
ParseError parse_error(const std::string& source) {
  try {
    parse(source);
  } catch (const ParseError& e) {
    return e;
  }
  return ParseError("", -1);
}
}  // namespace

// Too deep is a ParseError of subtype "nesting" (the R side tells a gradient's limit from a
// user's mistake by it, not by the message), at the token where the limit is reached.
TEST(Parser, RejectsFormulasNestedBeyondTheLimit) {
  const std::string deep = "Sum_Reduction(" + std::string(100000, '(') + "x" + std::string(100000, ')') + ",0)";
  ParseError e = parse_error(deep);
  EXPECT_EQ(e.subtype, kParseNesting) << e.what();
  EXPECT_GT(e.pos, 14);
  // A flat sum is a left-deep tree: the message says that a sum has too many terms.
  std::string chain = "Sum_Reduction(x";
  for (int k = 0; k < 5000; ++k) chain += "+x";
  e = parse_error(chain + ",0)");
  EXPECT_EQ(e.subtype, kParseNesting);
  EXPECT_NE(std::string(e.what()).find("sum or difference of more than 2000 terms"), std::string::npos) << e.what();
  EXPECT_EQ(e.token, "+");
  EXPECT_EQ(e.pos, 14 + 1 + 2 * (kMaxDepth - 1));
  std::string product = "Sum_Reduction(x";
  for (int k = 0; k < 5000; ++k) product += "*x";
  EXPECT_NE(std::string(parse_error(product + ",0)").what()).find("product or quotient"), std::string::npos);
  // Up to the limit, flat chains parse; grouped in parentheses, longer ones do too.
  std::string ok = "Sum_Reduction(x";
  for (int k = 1; k < kMaxDepth - 1; ++k) ok += "+x";
  EXPECT_NO_THROW(parse(ok + ",0)"));
  const std::string half = ok.substr(std::string("Sum_Reduction(").size());
  EXPECT_NO_THROW(parse("Sum_Reduction((" + half + ")+(" + half + "),0)"));
  // Nested calls up to about the limit parse (the R gradient tests use 1990 of them), except
  // under ASan, where a level takes 8-11 KB of stack and the 4 MB budget stops at ~400.
  if (!kSanitized) {
    EXPECT_NO_THROW(parse("Sum_Reduction(" + nested("Exp", 1990, "x-y") + ",0)"));
  }
  EXPECT_NO_THROW(parse("Sum_Reduction(" + nested("Exp", 300, "x-y") + ",0)"));
  EXPECT_EQ(parse_error("Sum_Reduction(" + nested("Exp", 2100, "x-y") + ",0)").subtype, kParseNesting);
  // Grad of a formula near the limit: the derivative is too deep, reported as nesting.
  EXPECT_EQ(parse_error("Sum_Reduction(Grad(" + nested("Exp", 1990, "Sum(x-y)") + ",x,s),0)").subtype,
            kParseNesting);
}

// K x dim(F) was computed in int: K = dim = 65536 gave a result of 0 columns, and the
// engine then wrote past its buffers (issue 16, item 2).
TEST(Parser, KMinWidthBeyondTheLimitIsAMemoryError) {
  const std::vector<std::string> d = {"x = Vi(1)", "y = Vj(1)"};
  for (const char* red : {"KMin_Reduction", "ArgKMin_Reduction", "KMin_ArgKMin_Reduction"}) {
    const std::string r = red;
    EXPECT_THROW(parse_formula(r + "(SumT(SqDist(x,y),65536),65536,0)", d), MemoryError) << red;
    EXPECT_THROW(parse_formula(r + "(SumT(SqDist(x,y),2),1000000000,0)", d), MemoryError) << red;
    const Formula ok = parse_formula(r + "(SumT(SqDist(x,y),65536),4096,0)", d);  // 2^28: the limit
    EXPECT_EQ(static_cast<std::int64_t>(ok.k) * ok.f->dim, kMaxKMinWidth);
    EXPECT_GT(ok.out_dim(), 0);
  }
}

// Normalize(v) uses v twice: 26 nested ones are an 81-node DAG whose text would take
// gigabytes (149 s, then std::bad_alloc, from R). Compiling never needs the text; printing
// it is refused up front, in time linear in the DAG (issue 16, item 3).
TEST(Parser, FormulasTooLargeToPrintAreRefusedBeforePrinting) {
  const std::vector<std::string> d = {"x = Vi(3)", "y = Vj(3)"};
  const Formula f = parse_formula("Sum_Reduction(" + nested("Normalize", 26, "x") + "*y,0)", d);
  EXPECT_LT(count_nodes(f.f), 100u);
  const Plan p = make_plan(f);
  EXPECT_LT(p.slots.size(), 200u);
  EXPECT_GT(printed_length_bound(f.f, f.names()), kMaxPrintedLength);
  EXPECT_THROW(f.to_string(), UnsupportedError);
  // Below the limit, the text is written out in full and parses back to the same DAG.
  const Formula g = parse_formula("Sum_Reduction(" + nested("Normalize", 12, "x") + "*y,0)", d);
  const std::string text = g.to_string();
  EXPECT_GT(text.size(), 50000u);
  EXPECT_TRUE(equal(parse_formula(text, d).f, g.f));
}
