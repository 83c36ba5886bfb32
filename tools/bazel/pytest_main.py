"""Entry point for every tfrobust py_test target (see //:BUILD).

Bazel runs this file (``main = "tools/bazel/pytest_main.py"``) with the test
file's workspace-relative path as argument, from the runfiles root of the main
repository, so the path resolves the same way ``pytest tests/...`` does in a
checkout; ``pyproject.toml`` (markers, ``-m 'not slow'`` addopts) and the
conftest.py files are in the test's runfiles, so the pytest configuration is
identical to ``make test``.

Usage: pytest_main.py TEST_FILE [TEST_FILE ...] [extra pytest args]
Extra pytest arguments can also be given with ``bazel test --test_arg=-k
--test_arg=name //:tests_...``.
"""

import os
import sys

# Do not write __pycache__ directories into Bazel's runfiles trees (this also
# disables pytest's on-disk assertion-rewrite cache).
sys.dont_write_bytecode = True

import pytest  # after setting dont_write_bytecode (E402 allowed in pyproject)

# pytest exit code for "no tests were collected", e.g. a file whose tests are
# all marked `slow` (deselected by the default addopts). A Bazel target for
# such a file should pass, not fail.
_NO_TESTS_COLLECTED = 5


def main(argv):
    if not argv:
        sys.stderr.write("usage: pytest_main.py TEST_FILE [pytest args...]\n")
        return 2
    for path in argv:
        if path.endswith(".py") and not os.path.exists(path):
            sys.stderr.write(f"pytest_main.py: test file not found: {path} (cwd {os.getcwd()})\n")
            return 2

    args = list(argv) + ["-q", "-p", "no:cacheprovider"]
    # Let Bazel show per-test results (bazel-testlogs/.../test.xml).
    xml_output = os.environ.get("XML_OUTPUT_FILE")
    if xml_output:
        args.append(f"--junitxml={xml_output}")

    code = int(pytest.main(args))
    if code == _NO_TESTS_COLLECTED:
        print("pytest_main.py: no tests collected (all deselected?); treating as success")
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
