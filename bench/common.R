# bench/common.R -- helpers shared by the benchmark scripts: timing, peak memory, and the
# dated section appended to bench/RESULTS.md (see its header for the conventions).

suppressPackageStartupMessages(library(kernops))

have_bench <- requireNamespace("bench", quietly = TRUE)
now <- if (have_bench) function() as.numeric(bench::hires_time()) else function() proc.time()[["elapsed"]]
invisible(now()); invisible(now())  # the first hires_time() call is slow: keep it out of timings

# Median of `runs` whole calls of f() after one warm-up call.
median_time <- function(f, runs = 3L, warmup = TRUE) {
  if (warmup) f()
  t <- vapply(seq_len(runs), function(i) { t0 <- now(); f(); now() - t0 }, numeric(1))
  stats::median(t)
}

proc_status_kb <- function(key) {
  l <- grep(paste0("^", key, ":"), readLines("/proc/self/status"), value = TRUE)
  if (!length(l)) return(NA_real_)
  as.numeric(sub("^[^:]+:\\s*([0-9]+).*$", "\\1", l[1]))
}

loadavg <- function() paste(strsplit(readLines("/proc/loadavg"), " ")[[1]][1:3], collapse = " ")

bench_arg <- function(argv, name, default = NULL) {
  i <- match(name, argv)
  if (is.na(i)) default else argv[i + 1]
}

# Runs `script --child args...` in a fresh Rscript and parses its "KEY=value" line tagged `tag`.
run_child <- function(script, tag, args) {
  out <- suppressWarnings(system2(file.path(R.home("bin"), "Rscript"), c(shQuote(script), "--child", args),
                                  stdout = TRUE, stderr = TRUE))
  line <- grep(paste0("^", tag, " "), out, value = TRUE)
  if (!length(line)) {
    warning("child failed: ", paste(out, collapse = "\n"))
    return(NULL)
  }
  kv <- strsplit(strsplit(sub(paste0("^", tag, " "), "", line[1]), " ")[[1]], "=")
  stats::setNames(lapply(kv, function(p) as.numeric(p[2])), vapply(kv, `[`, "", 1))
}

md_table <- function(df) {
  fmt <- function(v) if (is.numeric(v)) ifelse(is.na(v), "--", formatC(v, digits = 3, format = "g")) else as.character(v)
  cols <- lapply(df, fmt)
  c(paste0("| ", paste(names(df), collapse = " | "), " |"),
    paste0("|", paste(rep("---", ncol(df)), collapse = "|"), "|"),
    do.call(paste, c(cols, sep = " | ")) |> (\(r) paste0("| ", r, " |"))())
}

# The command line of this run, with the R_LIBS that chose the kernops build and the
# R_PROFILE_USER that may set options such as kernops.cpu_isa (A/B runs).
bench_command <- function(script, argv) {
  env <- Sys.getenv(c("R_LIBS", "R_PROFILE_USER"))
  env <- env[nzchar(env)]
  paste(c(if (length(env)) paste0(names(env), "=", env), "Rscript", script, argv), collapse = " ")
}

# The processor, precisely enough to tell this project's hosts apart: they all call
# themselves "AMD EPYC", but one generation exposes AVX-512 (and runs it at full width)
# and another does not, which changes every timing (bench/RESULTS.md, 2026-12-06).
cpu_description <- function() {
  info <- readLines("/proc/cpuinfo")
  field <- function(name) sub("^[^:]*:\\s*", "", grep(sprintf("^%s\\s*:", name), info, value = TRUE)[1])
  flags <- strsplit(field("flags"), " ")[[1]]
  vector_flags <- intersect(c("avx2", "fma", "avx512f", "avx512dq", "avx512vl"), flags)
  sprintf("%s (family %s, model %s; %s)", field("model name"), field("cpu family"), field("model"),
          paste(vector_flags, collapse = " "))
}

# Prints the table and, if `append`, adds a dated section to bench/RESULTS.md.
report <- function(title, command, df, notes = character(), append = FALSE, load_start = NULL) {
  cpu <- cpu_description()
  commit <- tryCatch(system2("git", c("rev-parse", "--short", "HEAD"), stdout = TRUE), error = function(e) "?")
  lines <- c(sprintf("## %s -- %s UTC", title, format(Sys.time(), tz = "UTC")), "",
             sprintf("- machine: nproc %s, CPU %s, %s", parallel::detectCores(), cpu, R.version.string),
             sprintf("- kernops %s from %s (git of the working tree %s), kernops_threads() = %d, CPU engine instruction set %s",
                     utils::packageVersion("kernops"), dirname(find.package("kernops")), commit, kernops_threads(),
                     backend_info()$cpu$isa),
             sprintf("- load average at start %s, at end %s", load_start %||% "?", loadavg()),
             sprintf("- command: `%s`", command), notes, "", md_table(df), "")
  cat(lines, sep = "\n")
  if (append) cat(lines, sep = "\n", file = file.path("bench", "RESULTS.md"), append = TRUE)
}

`%||%` <- function(a, b) if (is.null(a)) b else a
