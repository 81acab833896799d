"""The benchmarks, run as files by ``make bench``; a package so that tests import ``benchmarks.pipeline``."""
