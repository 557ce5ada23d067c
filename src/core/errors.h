// Typed errors of the core. The R glue maps each type to a classed R condition
// (kernops_error_parse, kernops_error_dimension, ...). No R headers here.
#pragma once
#include <stdexcept>
#include <string>

namespace kernops {

// Base class: every error the core throws on purpose derives from it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
  // Short tag used by the glue to pick the R condition class.
  virtual const char* kind() const noexcept { return "internal"; }
};

// A malformed formula. `pos` is the 0-based offset of the offending token in the
// source string, `token` its text (may be empty at end of input). `subtype` names a kind
// of parse error callers react to without matching the message: "nesting" (deeper than
// the formula language allows, kParseNesting), else empty.
class ParseError : public Error {
 public:
  ParseError(const std::string& msg, long pos, std::string token = "", std::string source = "",
             std::string subtype = "")
      : Error(msg), pos(pos), token(std::move(token)), source(std::move(source)), subtype(std::move(subtype)) {}
  const char* kind() const noexcept override { return "parse"; }
  long pos;
  std::string token;
  std::string source;  // the text `pos` refers to (the formula or one declaration)
  std::string subtype;
};
constexpr const char* kParseNesting = "nesting";

// Shapes that do not fit: inside a formula (Add of dims 3 and 2) or between a
// declaration and the data given for it. `pos` is -1 when no source position applies.
class DimensionError : public Error {
 public:
  explicit DimensionError(const std::string& msg, long pos = -1) : Error(msg), pos(pos) {}
  const char* kind() const noexcept override { return "dimension"; }
  long pos;
};

// Bad data: NaN/Inf, zero rows, inconsistent row counts, missing arguments.
class InputError : public Error {
 public:
  explicit InputError(const std::string& msg) : Error(msg) {}
  const char* kind() const noexcept override { return "input"; }
};

// An output or working buffer too large to allocate.
class MemoryError : public Error {
 public:
  explicit MemoryError(const std::string& msg) : Error(msg) {}
  const char* kind() const noexcept override { return "memory"; }
};

// A request the core does not implement: a formula too large to print (ast.h), ...
class UnsupportedError : public Error {
 public:
  explicit UnsupportedError(const std::string& msg) : Error(msg) {}
  const char* kind() const noexcept override { return "unsupported"; }
};

// A backend that is absent or failed (CUDA not available, ...).
class BackendError : public Error {
 public:
  explicit BackendError(const std::string& msg) : Error(msg) {}
  const char* kind() const noexcept override { return "backend"; }
};

// The user asked to stop (Ctrl-C seen by the glue's interrupt checker).
class Interrupted : public Error {
 public:
  Interrupted() : Error("computation interrupted by the user") {}
  const char* kind() const noexcept override { return "interrupt"; }
};

// A bug in kernops itself, not a user mistake.
class InternalError : public Error {
 public:
  explicit InternalError(const std::string& msg)
      : Error("internal error in kernops: " + msg + " (please report this)") {}
};

}  // namespace kernops
