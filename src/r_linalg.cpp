// r_linalg.cpp -- the small dense linear algebra of the solvers (R/solve.R), in Eigen.
// The Nystrom preconditioner factors m x m matrices (m up to a few thousand) and pushes
// blocks of K(x, centres) through them. R's own chol()/backsolve() here call the reference
// BLAS/LAPACK (single-threaded, unblocked), several times slower at these sizes (see
// bench/RESULTS.md, "kernel_solve"). Glue only: no statistics logic lives here.
#include <RcppEigen.h>

// [[Rcpp::depends(RcppEigen)]]

using Mat = Eigen::MatrixXd;

// The lower Cholesky factor L of the symmetric positive definite A (A = L L'), or
// list(ok = FALSE) when A is not numerically positive definite (the caller adds jitter).
// [[Rcpp::export]]
Rcpp::List cpp_chol_lower(const Eigen::Map<Eigen::MatrixXd> A) {
  Eigen::LLT<Mat> llt(A);
  if (llt.info() != Eigen::Success) return Rcpp::List::create(Rcpp::Named("ok") = false);
  Mat L = llt.matrixL();
  if (!L.diagonal().allFinite() || (L.diagonal().array() <= 0).any())
    return Rcpp::List::create(Rcpp::Named("ok") = false);
  return Rcpp::List::create(Rcpp::Named("ok") = true, Rcpp::Named("L") = Rcpp::wrap(L));
}

// X with L X = B (transpose = false) or L' X = B (transpose = true), L lower triangular.
// [[Rcpp::export]]
Eigen::MatrixXd cpp_tri_solve(const Eigen::Map<Eigen::MatrixXd> L, const Eigen::Map<Eigen::MatrixXd> B, bool transpose) {
  if (transpose) return L.triangularView<Eigen::Lower>().transpose().solve(B);
  return L.triangularView<Eigen::Lower>().solve(B);
}

// The solution of (L L') X = B.
// [[Rcpp::export]]
Eigen::MatrixXd cpp_chol_solve(const Eigen::Map<Eigen::MatrixXd> L, const Eigen::Map<Eigen::MatrixXd> B) {
  Mat Y = L.triangularView<Eigen::Lower>().solve(B);
  return L.triangularView<Eigen::Lower>().transpose().solve(Y);
}

// S + Q'Q with Q = Kb L^{-T} (Kb: a block of rows of K(x, centres), L: the Cholesky factor
// of K(centres, centres)): the Nystrom feature block and its Gram matrix, accumulated block
// by block so that the n x m matrix of features is never held whole.
// [[Rcpp::export]]
Eigen::MatrixXd cpp_nystrom_accumulate(const Eigen::Map<Eigen::MatrixXd> S, const Eigen::Map<Eigen::MatrixXd> Kb, const Eigen::Map<Eigen::MatrixXd> L) {
  Mat Qt = L.triangularView<Eigen::Lower>().solve(Kb.transpose());  // m x b: L^{-1} Kb'
  Mat out = S;
  out.selfadjointView<Eigen::Lower>().rankUpdate(Qt);
  return out.selfadjointView<Eigen::Lower>();
}

// A'B (R's crossprod(A, B)); A'A when B is A, by a symmetric rank update (half the work).
// [[Rcpp::export]]
Eigen::MatrixXd cpp_crossprod(const Eigen::Map<Eigen::MatrixXd> A, const Eigen::Map<Eigen::MatrixXd> B) {
  if (A.data() == B.data() && A.rows() == B.rows() && A.cols() == B.cols()) {
    Mat out = Mat::Zero(A.cols(), A.cols());
    out.selfadjointView<Eigen::Lower>().rankUpdate(A.transpose());
    return out.selfadjointView<Eigen::Lower>();
  }
  return A.transpose() * B;
}

// A B (R's A %*% B).
// [[Rcpp::export]]
Eigen::MatrixXd cpp_matmul(const Eigen::Map<Eigen::MatrixXd> A, const Eigen::Map<Eigen::MatrixXd> B) {
  return A * B;
}

// V + U diag(w) U'V: a low-rank correction of the identity applied to the columns of V (the
// polyharmonic spline's Nystrom preconditioner, once per CG iteration).
// [[Rcpp::export]]
Eigen::MatrixXd cpp_lowrank_apply(const Eigen::Map<Eigen::MatrixXd> U, const Eigen::Map<Eigen::VectorXd> w,
                                  const Eigen::Map<Eigen::MatrixXd> V) {
  Mat C = U.transpose() * V;
  C.array().colwise() *= w.array();
  Mat out = V;
  out.noalias() += U * C;
  return out;
}
