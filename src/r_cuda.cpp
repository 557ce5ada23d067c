// Rcpp glue for the CUDA backend's state: what backend_info() reports, the disk cache's
// directory, and a test hook that makes the device look failed. Runs go through cpp_run
// (r_kernops.cpp) with backend = "cuda". No logic here.
#include <Rcpp.h>

#include <string>

#include "core/cuda/backend.h"
#include "core/cuda/cache.h"
#include "core/cuda/driver.h"
#include "core/cuda/nvrtc.h"

// [[Rcpp::export]]
Rcpp::List cpp_cuda_info() {
  namespace kc = kernops::cuda;
  const kc::ProbeResult p = kc::probe();
  std::string nvrtc_why;
  const bool nvrtc = kc::Nvrtc::available(&nvrtc_why);
  std::string why;
  const bool usable = kc::usable(&why);
  const kc::CacheStats st = kc::KernelCache::global().stats();
  auto na_if = [](bool ok, const std::string& s) {
    return ok ? Rcpp::CharacterVector::create(s) : Rcpp::CharacterVector::create(NA_STRING);
  };
  const bool dev = p.usable;
  return Rcpp::List::create(
      Rcpp::Named("usable") = usable, Rcpp::Named("why") = usable ? std::string() : why,
      Rcpp::Named("driver_loaded") = dev, Rcpp::Named("driver_why") = p.why,
      Rcpp::Named("driver_library") = na_if(!p.library.empty(), p.library),
      Rcpp::Named("driver_version") = na_if(p.driver_version > 0, kc::driver_version_string(p.driver_version)),
      Rcpp::Named("device") = na_if(dev, p.device_name),
      Rcpp::Named("memory") = dev ? static_cast<double>(p.total_memory) : NA_REAL,
      Rcpp::Named("compute_capability") =
          na_if(dev, std::to_string(p.cc_major) + "." + std::to_string(p.cc_minor)),
      Rcpp::Named("multiprocessors") = dev ? p.multiprocessors : NA_INTEGER,
      Rcpp::Named("nvrtc_version") = na_if(nvrtc, nvrtc ? kc::Nvrtc::get().version() : ""),
      Rcpp::Named("nvrtc_library") = na_if(nvrtc, nvrtc ? kc::Nvrtc::get().library() : ""),
      Rcpp::Named("nvrtc_why") = nvrtc_why,
      Rcpp::Named("cache_compiles") = static_cast<double>(st.compiles),
      Rcpp::Named("cache_disk_hits") = static_cast<double>(st.disk_hits),
      Rcpp::Named("cache_memory_hits") = static_cast<double>(st.memory_hits));
}

// [[Rcpp::export]]
void cpp_cuda_set_cache_dir(std::string dir) { kernops::cuda::KernelCache::global().set_dir(dir); }

// Test hook: from now on CUDA reports itself unusable for `why` ("" restores the real state).
// [[Rcpp::export]]
void cpp_cuda_force_failure(std::string why) { kernops::cuda::force_probe_failure(why); }

// "" when a reduction can run on CUDA now, else why not (cheap after the first call).
// [[Rcpp::export]]
std::string cpp_cuda_why() {
  std::string why;
  return kernops::cuda::usable(&why) ? std::string() : why;
}
