#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run the Python peer tests and end with one summary line:
    peers-python: N passed, M failed, K skipped (T s)
Arguments are passed to unittest's test name selection (-k PATTERN works)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    argv = sys.argv[1:]
    patterns = []
    while argv:
        a = argv.pop(0)
        if a == "-k" and argv:
            patterns.append(argv.pop(0))
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = ["*%s*" % p for p in patterns]
    suite = loader.loadTestsFromNames(["test_peers", "test_state", "test_contracts"])
    t0 = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("peers-python: %d passed, %d failed, %d skipped (%.1f s)"
          % (passed, failed, skipped, time.monotonic() - t0), flush=True)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
