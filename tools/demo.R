# tools/demo.R -- the main job in one minute: the seed's Gaussian convolution
#   gamma_i = sum_j exp(-s |x_i - y_j|^2) b_j
# checked against dense base R where that fits, then at a size dense R cannot hold.
library(kernops)
cat(format(Sys.time()), "-", kernops_threads(), "threads,", backend_info()$cpu$isa, "\n\n")

op <- kernel_op("Sum_Reduction(Exp(-s*SqNorm2(x-y))*b, 0)",
                c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)", "s = Pm(1)"))
print(op)

set.seed(1)
n <- 5000
x <- matrix(runif(3 * n), n, 3); y <- matrix(runif(3 * n), n, 3); b <- matrix(rnorm(6 * n), n, 6)
t_k <- system.time(gamma <- op(x = x, y = y, b = b, s = 10))[["elapsed"]]
t_d <- system.time({
  D2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
  dense <- exp(-10 * D2) %*% b
})[["elapsed"]]
cat(sprintf("\nN = M = %d: kernops %.3f s, dense base R %.3f s; max relative difference %.1e\n",
            n, t_k, t_d, max(abs(gamma - dense)) / max(abs(dense))))

n <- 1e5
x <- matrix(runif(3 * n), n, 3); y <- matrix(runif(3 * n), n, 3); b <- matrix(rnorm(6 * n), n, 6)
t_big <- system.time(gamma <- op(x = x, y = y, b = b, s = 10))[["elapsed"]]
cat(sprintf("N = M = %g: kernops %.2f s (dense R would need %.0f GB for the kernel matrix)\n",
            n, t_big, 8 * n^2 / 1e9))
cat("first rows of the result:\n")
print(round(gamma[1:3, ], 4))
