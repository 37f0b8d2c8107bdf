#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run the CLI tests (test_cli.py) and end with one summary line.

Environment: TAKT_BIN (the takt binary), TAKT_CLI_HELPER (cli_helper).
Arguments are passed to unittest (e.g. -k stale, or test names).
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    for var in ("TAKT_BIN", "TAKT_CLI_HELPER"):
        if not os.environ.get(var):
            print(f"run_tests.py: set {var}", file=sys.stderr)
            return 2
    program = unittest.main(module="test_cli", argv=[sys.argv[0], "-v", *sys.argv[1:]],
                            exit=False)
    r = program.result
    failed, errors, skipped = len(r.failures), len(r.errors), len(r.skipped)
    unexpected = len(getattr(r, "unexpectedSuccesses", []))
    passed = r.testsRun - failed - errors - skipped - unexpected
    print(f"cli tests: Tested: {r.testsRun} | Passing: {passed} | Failing: {failed} | "
          f"Errors: {errors} | Skipped: {skipped}", flush=True)
    return 0 if r.wasSuccessful() and r.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
