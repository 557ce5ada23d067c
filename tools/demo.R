# tools/demo.R -- placeholder; the main engineer fills it with a short end-to-end demo
# (run by `bash tools/run.sh demo` after installing the package).
