// Recursive-descent parser for the KeOps formula syntax. Each parse function opens with
// its EBNF rule. Errors carry the 0-based offset of the offending token (ParseError).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>

#include "diff.h"
#include "errors.h"
#include "reduction.h"

namespace kernops {

namespace {

enum class Tok { Num, Ident, Punct, End };

struct Token {
  Tok type;
  std::string text;
  long pos;
  double num = 0;
};

std::vector<Token> lex(const std::string& s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    if (std::isspace(c)) {
      ++i;
    } else if (std::isdigit(c) || (c == '.' && i + 1 < s.size() && std::isdigit((unsigned char)s[i + 1]))) {
      const char* start = s.c_str() + i;
      char* end = nullptr;
      double v = std::strtod(start, &end);
      size_t len = static_cast<size_t>(end - start);
      // strtod also reads "0x..", "inf", "nan": keep plain decimal numbers only.
      for (size_t k = 0; k < len; ++k) {
        char ch = start[k];
        if (!(std::isdigit((unsigned char)ch) || ch == '.' || ch == 'e' || ch == 'E' || ch == '+' || ch == '-')) {
          len = k;
          v = std::strtod(std::string(start, len).c_str(), nullptr);
          break;
        }
      }
      out.push_back({Tok::Num, s.substr(i, len), static_cast<long>(i), v});
      i += len;
    } else if (std::isalpha(c) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum((unsigned char)s[j]) || s[j] == '_' || s[j] == '.')) ++j;
      out.push_back({Tok::Ident, s.substr(i, j - i), static_cast<long>(i)});
      i = j;
    } else if (std::string("+-*/^(),|=").find(static_cast<char>(c)) != std::string::npos) {
      out.push_back({Tok::Punct, std::string(1, static_cast<char>(c)), static_cast<long>(i)});
      ++i;
    } else {
      throw ParseError(std::string("unexpected character '") + static_cast<char>(c) + "'",
                       static_cast<long>(i), std::string(1, static_cast<char>(c)), s);
    }
  }
  out.push_back({Tok::End, "", static_cast<long>(s.size())});
  return out;
}

bool reserved(const std::string& name) {
  static const char* kWords[] = {"Vi", "Vj", "Pm", "Norm2", "Normalize", "SqDist", "IntCst",
                                 "GaussKernel", "LaplaceKernel", "CauchyKernel",
                                 "InverseMultiquadricKernel", "Matern32Kernel", "Matern52Kernel",
                                 "Grad", "Diff"};
  for (const char* w : kWords)
    if (name == w) return true;
  return op_by_name(name) != nullptr || red_by_name(name) != nullptr;
}

class Parser {
 public:
  Parser(const std::string& src, std::vector<VarDecl>* vars)
      : src_(src), toks_(lex(src)), vars_(vars), stack_base_(stack_address()) {}

  // <formula> = <reduction> | <expr>    (and nothing after it)
  NodeP parse_whole_expr() {
    NodeP e = expr();
    expect_end();
    return e;
  }

  // <reduction> = RedName "(" <expr> ["," int] "," int ["," <expr>] ")"
  Formula parse_reduction() {
    const Token& t = peek();
    const RedInfo* info = t.type == Tok::Ident ? red_by_name(t.text) : nullptr;
    if (!info) {
      std::string what = t.type == Tok::End ? "end of formula" : "'" + t.text + "'";
      throw ParseError("expected a reduction such as Sum_Reduction(F, 0), found " + what, t.pos, t.text, src_);
    }
    next();
    expect("(");
    Formula f;
    f.kind = info->kind;
    f.f = expr();
    if (info->has_k) {
      expect(",");
      f.k = integer("K");
      if (f.k < 1) throw ParseError("K must be >= 1", last_.pos, last_.text, src_);
    }
    expect(",");
    f.axis = integer("axis");
    if (f.axis != 0 && f.axis != 1)
      throw ParseError("axis must be 0 (result indexed by i) or 1 (result indexed by j)", last_.pos, last_.text, src_);
    if (info->extra && peek().text == ",") {
      next();
      f.f2 = expr();
    } else if (info->extra == 2) {
      throw ParseError(std::string(info->name) + " needs a third argument (the values to average)", peek().pos, peek().text, src_);
    }
    expect(")");
    expect_end();
    return f;
  }

 private:
  const Token& peek(int k = 0) const { return toks_[std::min(idx_ + k, toks_.size() - 1)]; }
  const Token& next() {
    last_ = toks_[idx_];
    if (idx_ < toks_.size() - 1) ++idx_;
    return last_;
  }
  [[noreturn]] void unexpected(const std::string& wanted) {
    const Token& t = peek();
    std::string found = t.type == Tok::End ? "end of formula" : "'" + t.text + "'";
    throw ParseError("expected " + wanted + ", found " + found, t.pos, t.text, src_);
  }
  void expect(const char* p) {
    if (peek().type != Tok::Punct || peek().text != p) unexpected(std::string("'") + p + "'");
    next();
  }
  void expect_end() {
    if (peek().type != Tok::End) unexpected("end of formula");
  }
  // A possibly negative integer literal.
  int integer(const std::string& what) {
    bool minus = false;
    if (peek().text == "-") {
      minus = true;
      next();
    }
    const Token& t = peek();
    if (t.type != Tok::Num || t.num != std::floor(t.num) || std::fabs(t.num) > 1e9)
      unexpected("an integer (" + what + ")");
    next();
    return static_cast<int>(minus ? -t.num : t.num);
  }
  [[noreturn]] void too_deep(const std::string& msg, long pos, const std::string& token) {
    throw ParseError(msg, pos, token, src_, kParseNesting);
  }
  // Builds a node, turning a dimension mismatch into an error at `pos`, and a node deeper
  // than kMaxDepth into one too (make() would report it without a position).
  NodeP build(Op op, std::vector<NodeP> args, std::vector<int> params, long pos) {
    for (const auto& a : args)
      if (a->depth >= kMaxDepth)
        too_deep("the formula is nested more than " + std::to_string(kMaxDepth) + " operations deep", pos,
                 src_.substr(static_cast<size_t>(pos), 1));
    return make(op, std::move(args), std::move(params), pos);
  }
  // A flat chain a+b+...+z is a left-deep tree, one level per operator: say so, rather
  // than "nested", when it is what reaches the limit.
  void check_chain(const NodeP& left, const Token& op, const char* what) {
    if (left->depth >= kMaxDepth)
      too_deep(std::string("a ") + what + " of more than " + std::to_string(kMaxDepth) +
                   " terms: each term nests the formula one level deeper, and formulas may be at most " +
                   std::to_string(kMaxDepth) + " operations deep; group the terms in parentheses, e.g. "
                   "(a+b+...)+(c+d+...), or use Sum() of a vector",
               op.pos, op.text);
  }

  // <expr> = <term> {("+" | "-") <term>}
  NodeP expr() {
    NodeP left = term();
    while (peek().type == Tok::Punct && (peek().text == "+" || peek().text == "-")) {
      Token op = next();
      check_chain(left, op, "sum or difference");
      NodeP right = term();
      left = build(op.text == "+" ? Op::Add : Op::Sub, {left, right}, {}, op.pos);
    }
    return left;
  }

  // <term> = <unary> {("*" | "/") <unary>}
  NodeP term() {
    NodeP left = unary_expr();
    while (peek().type == Tok::Punct && (peek().text == "*" || peek().text == "/")) {
      Token op = next();
      check_chain(left, op, "product or quotient");
      NodeP right = unary_expr();
      left = build(op.text == "*" ? Op::Mul : Op::Div, {left, right}, {}, op.pos);
    }
    return left;
  }

  // Where this function's frame is on the C stack (GCC and clang; no R here to ask).
  __attribute__((always_inline)) static std::uintptr_t stack_address() {
    return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  }

  // <unary> = "-" <unary> | <power>
  // Every nesting (parentheses, calls, unary minus) passes through here. The guard bounds
  // the C stack this recursion uses, not only its depth: a level costs ~1.8 KB at -O2 but
  // 7-11 KB under ASan, where 2000 levels overflowed an 8 MB stack.
  NodeP unary_expr() {
    struct Guard {
      int& d;
      ~Guard() { --d; }
    } guard{++depth_};
    const std::uintptr_t here = stack_address();
    const std::uintptr_t used = here < stack_base_ ? stack_base_ - here : here - stack_base_;
    if (depth_ > kMaxDepth || used > kParserStackBudget)
      too_deep(depth_ > kMaxDepth
                   ? "the formula nests parentheses and function calls more than " + std::to_string(kMaxDepth) +
                         " levels deep"
                   : "the formula nests parentheses and function calls too deeply: " + std::to_string(depth_ - 1) +
                         " levels used all the C stack the parser may take",
               peek().pos, peek().text);
    if (peek().type == Tok::Punct && peek().text == "-") {
      Token op = next();
      return build(Op::Neg, {unary_expr()}, {}, op.pos);
    }
    return power();
  }

  // <power> = <primary> ["^" ["-"] number]      x^n: Pow(x,n) for integer n, else Powf
  NodeP power() {
    NodeP base = primary();
    if (peek().type == Tok::Punct && peek().text == "^") {
      Token op = next();
      bool minus = false;
      if (peek().text == "-") {
        minus = true;
        next();
      }
      if (peek().type != Tok::Num) unexpected("a number after '^'");
      double e = next().num * (minus ? -1 : 1);
      if (e == std::floor(e) && std::fabs(e) <= 1e6) return build(Op::Pow, {base}, {static_cast<int>(e)}, op.pos);
      return build(Op::Powf, {base, constant(e)}, {}, op.pos);
    }
    return base;
  }

  // <primary> = number | "(" <expr> ["|" <expr>] ")" | name | name "(" <args> ")"
  NodeP primary() {
    const Token& t = peek();
    if (t.type == Tok::Num) {
      next();
      return constant(t.num);
    }
    if (t.type == Tok::Punct && t.text == "(") {
      Token open = next();
      NodeP a = expr();
      if (peek().text == "|") {
        Token bar = next();
        NodeP b = expr();
        expect(")");
        return build(Op::Scalprod, {a, b}, {}, bar.pos);
      }
      expect(")");
      return a;
    }
    if (t.type == Tok::Ident) {
      Token name = next();
      if (peek().text == "(") return call(name);
      for (const auto& v : *vars_)
        if (v.name == name.text) return var(v.cat, v.pos, v.dim);
      throw ParseError("unknown variable '" + name.text + "' (declare it, e.g. \"" + name.text + " = Vi(3)\")",
                       name.pos, name.text, src_);
    }
    unexpected("a number, a variable, a function or '('");
  }

  // Inline variable Vi(pos, dim) / Vj(pos, dim) / Pm(pos, dim).
  NodeP inline_var(const Token& name, Cat cat) {
    int pos = integer("position");
    expect(",");
    int dim = integer("dimension");
    expect(")");
    if (pos < 0 || dim < 1 || dim > kMaxDim)
      throw ParseError("position must be >= 0 and dimension between 1 and " + std::to_string(kMaxDim), name.pos,
                       name.text, src_);
    for (const auto& v : *vars_) {
      if (v.pos != pos) continue;
      if (v.cat != cat || v.dim != dim)
        throw DimensionError(name.text + "(" + std::to_string(pos) + "," + std::to_string(dim) +
                                 ") does not match the declaration of argument " + std::to_string(pos) +
                                 " ('" + v.name + "', dimension " + std::to_string(v.dim) + ")",
                             name.pos);
      return var(cat, pos, dim);
    }
    // Named V<pos>, or V<pos>_... when a declared variable has that name (the two would
    // become arguments of one name, and one would silently take the other's data).
    std::string auto_name = "V" + std::to_string(pos);
    for (bool taken = true; taken;) {
      taken = false;
      for (const auto& v : *vars_) taken = taken || v.name == auto_name;
      if (taken) auto_name += "_";
    }
    vars_->push_back({auto_name, cat, pos, dim});
    return var(cat, pos, dim);
  }

  // <args> = <expr> {"," <expr>} {"," int}      (formula arguments, then integer parameters)
  NodeP call(const Token& name) {
    expect("(");
    const std::string& f = name.text;
    if (f == "Vi" || f == "Vj" || f == "Pm") return inline_var(name, f == "Vi" ? Cat::I : f == "Vj" ? Cat::J : Cat::P);
    if (f == "IntCst") {
      int v = integer("constant");
      expect(")");
      return constant(v);
    }
    if (f == "Zero") {
      int d = integer("dimension");
      expect(")");
      if (d < 1 || d > kMaxDim)
        throw ParseError("Zero(d) needs 1 <= d <= " + std::to_string(kMaxDim), name.pos, name.text, src_);
      return zero(d);
    }
    if (f == "Grad" || f == "Diff") return grad_call(name);
    if (const OpInfo* info = op_by_name(f)) {
      std::vector<NodeP> args;
      std::vector<int> params;
      for (int k = 0; k < info->nargs; ++k) {
        if (k) expect(",");
        args.push_back(expr());
      }
      for (int k = 0; k < info->nparams; ++k) {
        if (k || info->nargs) expect(",");
        params.push_back(integer("integer argument of " + f));
      }
      if (peek().text != ")")
        throw ParseError(f + " takes " + std::to_string(info->nargs) + " formula argument(s)" +
                             (info->nparams ? " and " + std::to_string(info->nparams) + " integer(s)" : "") +
                             ", found '" + peek().text + "' instead of ')'",
                         peek().pos, peek().text, src_);
      expect(")");
      return build(info->op, std::move(args), std::move(params), name.pos);
    }
    return sugar(name);
  }

  // Grad(F, v, e): gradient of <e, F> with respect to variable v (see diff.h).
  // Diff(F, v, u): directional derivative of F along u.
  NodeP grad_call(const Token& name) {
    NodeP f = expr();
    expect(",");
    long vpos = peek().pos;
    NodeP v = expr();
    expect(",");
    long epos = peek().pos;
    NodeP e = expr();
    expect(")");
    if (v->op != Op::Var)
      throw ParseError(name.text + ": the second argument must be a variable", vpos, "", src_);
    if (name.text == "Grad") {
      if (e->dim != f->dim)
        throw DimensionError("Grad: the direction has dimension " + std::to_string(e->dim) +
                                 " but the formula has dimension " + std::to_string(f->dim), epos);
      return grad(f, v, e);
    }
    if (e->dim != v->dim)
      throw DimensionError("Diff: the direction has dimension " + std::to_string(e->dim) +
                               " but the variable has dimension " + std::to_string(v->dim), epos);
    return diff_forward(f, v, e);
  }

  // Functions that expand into other operations (they do not survive printing).
  NodeP sugar(const Token& name) {
    const std::string& f = name.text;
    std::vector<NodeP> a;
    if (peek().text != ")") {
      a.push_back(expr());
      while (peek().text == ",") {
        next();
        a.push_back(expr());
      }
    }
    expect(")");
    auto need = [&](size_t n) {
      if (a.size() != n)
        throw ParseError(f + " takes " + std::to_string(n) + " arguments, got " + std::to_string(a.size()),
                         name.pos, name.text, src_);
    };
    long p = name.pos;
    auto sqdist = [&](const NodeP& x, const NodeP& y) {
      return build(Op::SqNorm2, {build(Op::Sub, {x, y}, {}, p)}, {}, p);
    };
    if (f == "Norm2") {  // |x| = Sqrt(SqNorm2(x))
      need(1);
      return build(Op::Sqrt, {build(Op::SqNorm2, {a[0]}, {}, p)}, {}, p);
    }
    if (f == "Normalize") {  // x/|x| = x*Rsqrt(SqNorm2(x))
      need(1);
      return build(Op::Mul, {a[0], build(Op::Rsqrt, {build(Op::SqNorm2, {a[0]}, {}, p)}, {}, p)}, {}, p);
    }
    if (f == "SqDist") {  // |x-y|^2
      need(2);
      return sqdist(a[0], a[1]);
    }
    // Radial kernels K(g, x, y, b) = k(g*|x-y|^2) * b, with g = 1/sigma^2 (KeOps' GaussKernel).
    if (f == "GaussKernel" || f == "LaplaceKernel" || f == "CauchyKernel" ||
        f == "InverseMultiquadricKernel" || f == "Matern32Kernel" || f == "Matern52Kernel") {
      need(4);
      NodeP r2 = build(Op::Mul, {a[0], sqdist(a[1], a[2])}, {}, p);  // g*|x-y|^2
      NodeP k;
      if (f == "GaussKernel") {  // exp(-g r^2)
        k = build(Op::Exp, {build(Op::Neg, {r2}, {}, p)}, {}, p);
      } else if (f == "LaplaceKernel") {  // exp(-sqrt(g r^2))
        k = build(Op::Exp, {build(Op::Neg, {build(Op::Sqrt, {r2}, {}, p)}, {}, p)}, {}, p);
      } else if (f == "CauchyKernel") {  // 1/(1 + g r^2)
        k = build(Op::Inv, {build(Op::Add, {constant(1), r2}, {}, p)}, {}, p);
      } else if (f == "InverseMultiquadricKernel") {  // 1/sqrt(1 + g r^2)
        k = build(Op::Rsqrt, {build(Op::Add, {constant(1), r2}, {}, p)}, {}, p);
      } else {
        // Matern nu = 3/2: (1+u) exp(-u), u = sqrt(3 g r^2); nu = 5/2: (1+u+u^2/3) exp(-u), u = sqrt(5 g r^2)
        const bool m32 = f == "Matern32Kernel";
        NodeP u = build(Op::Sqrt, {build(Op::Mul, {constant(m32 ? 3 : 5), r2}, {}, p)}, {}, p);
        NodeP poly = build(Op::Add, {constant(1), u}, {}, p);
        if (!m32)
          poly = build(Op::Add, {poly, build(Op::Div, {build(Op::Square, {u}, {}, p), constant(3)}, {}, p)}, {}, p);
        k = build(Op::Mul, {poly, build(Op::Exp, {build(Op::Neg, {u}, {}, p)}, {}, p)}, {}, p);
      }
      return build(Op::Mul, {k, a[3]}, {}, p);
    }
    throw ParseError("unknown function '" + f + "'", name.pos, name.text, src_);
  }

  const std::string& src_;
  std::vector<Token> toks_;
  size_t idx_ = 0;
  Token last_{Tok::End, "", 0};
  std::vector<VarDecl>* vars_;
  int depth_ = 0;
  std::uintptr_t stack_base_;  // address of a local where parsing started
  // At most this much C stack for the parser's recursion: 2000 levels at -O2, ~500 under
  // ASan, leaving half of an 8 MB stack (R's usual) to the caller and the tree walks.
  static constexpr std::uintptr_t kParserStackBudget = 4u << 20;
};

}  // namespace

VarDecl parse_decl(const std::string& decl, int default_pos) {
  auto toks = lex(decl);
  size_t i = 0;
  auto fail = [&](const std::string& msg) -> void {
    const Token& t = toks[std::min(i, toks.size() - 1)];
    throw ParseError(msg + " in declaration \"" + decl + "\" (expected the form \"x = Vi(3)\", \"y = Vj(3)\" or \"s = Pm(1)\")",
                     t.pos, t.text, decl);
  };
  auto want = [&](Tok type, const char* text) {
    if (toks[i].type != type || (text && toks[i].text != text))
      fail(std::string(text ? "expected '" + std::string(text) + "'" : "expected a name") + ", found " +
           (toks[i].type == Tok::End ? "the end" : "'" + toks[i].text + "'"));
    return toks[i++];
  };
  VarDecl d;
  d.name = want(Tok::Ident, nullptr).text;
  if (reserved(d.name)) {
    i = 0;
    fail("the name '" + d.name + "' is reserved for a function");
  }
  want(Tok::Punct, "=");
  std::string kind = want(Tok::Ident, nullptr).text;
  if (kind != "Vi" && kind != "Vj" && kind != "Pm") {
    --i;
    fail("unknown variable type '" + kind + "' (use Vi, Vj or Pm)");
  }
  d.cat = kind == "Vi" ? Cat::I : kind == "Vj" ? Cat::J : Cat::P;
  want(Tok::Punct, "(");
  // One number (the dimension) or two separated by a comma (position, dimension): "Vi(3 4)"
  // fails at the '4'.
  std::vector<double> nums;
  while (toks[i].type == Tok::Num && nums.size() < 2) {
    nums.push_back(toks[i++].num);
    if (toks[i].text != "," || nums.size() == 2) break;
    ++i;
    if (toks[i].type != Tok::Num) fail("expected a number after ','");
  }
  if (nums.empty()) fail("expected the dimension");
  // Range first: converting a double beyond int's range (Vi(3e9)) is undefined behaviour.
  for (double v : nums)
    if (v != std::floor(v) || v < 0 || v > 1e9) fail("positions and dimensions must be non-negative integers");
  d.pos = nums.size() == 2 ? static_cast<int>(nums[0]) : default_pos;
  d.dim = static_cast<int>(nums.back());
  if (d.dim < 1 || d.dim > kMaxDim) fail("the dimension must be between 1 and " + std::to_string(kMaxDim));
  want(Tok::Punct, ")");
  if (toks[i].type != Tok::End) fail("unexpected text after the declaration");
  return d;
}

namespace {

std::vector<VarDecl> parse_decls(const std::vector<std::string>& decls) {
  std::vector<VarDecl> vars;
  for (size_t k = 0; k < decls.size(); ++k) {
    VarDecl d = parse_decl(decls[k], static_cast<int>(k));
    for (const auto& v : vars) {
      if (v.name == d.name)
        throw ParseError("variable '" + d.name + "' is declared twice", 0, d.name, decls[k]);
      if (v.pos == d.pos)
        throw ParseError("position " + std::to_string(d.pos) + " is used by '" + v.name + "' and '" + d.name + "'",
                         0, d.name, decls[k]);
    }
    vars.push_back(d);
  }
  return vars;
}

void check_positions(std::vector<VarDecl>& vars) {
  std::sort(vars.begin(), vars.end(), [](const VarDecl& a, const VarDecl& b) { return a.pos < b.pos; });
  for (size_t k = 0; k < vars.size(); ++k)
    if (vars[k].pos != static_cast<int>(k))
      throw InputError("argument position " + std::to_string(k) +
                       " is neither declared nor used (positions must be 0, 1, 2, ... without gaps)");
}

}  // namespace

NodeP parse_expression(const std::string& source, std::vector<VarDecl>& vars) {
  Parser p(source, &vars);
  return p.parse_whole_expr();
}

Formula parse_formula(const std::string& source, const std::vector<std::string>& decls) {
  std::vector<VarDecl> vars = parse_decls(decls);
  Parser p(source, &vars);
  Formula f = p.parse_reduction();
  const RedKind k = f.kind;
  if ((k == RedKind::SumSoftMaxWeight || (k == RedKind::LogSumExp && f.f2)) && f.f->dim != 1)
    throw DimensionError(std::string(red_info(k).name) + ": F must have dimension 1 when a second formula is given, got " +
                         std::to_string(f.f->dim));
  if (red_info(k).has_k) {
    // Sizes are counted in 64 bits here (K <= 1e9 and dim <= 2^24), so that the engine's
    // int sizes derived from K x dim (output columns, the per-row state of at most
    // 4 K x dim + 2 dim values) cannot wrap around; K = dim = 65536 once gave 0 columns.
    const std::int64_t width = static_cast<std::int64_t>(f.k) * f.f->dim;
    if (width > kMaxKMinWidth)
      throw MemoryError(std::string(red_info(k).name) + ": K x dim(F) = " + std::to_string(f.k) + " x " +
                        std::to_string(f.f->dim) + " = " + std::to_string(width) +
                        " values per output row, more than the " + std::to_string(kMaxKMinWidth) +
                        " a K-min reduction can hold (its working state alone would need " +
                        std::to_string(width * 32 / 1000000000) + " GB per row)");
  }
  check_positions(vars);
  f.vars = vars;
  return f;
}

}  // namespace kernops
