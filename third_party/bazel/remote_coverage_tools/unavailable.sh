#!/bin/sh
echo "tfrobust: 'bazel coverage' is unavailable (offline stub @remote_coverage_tools)." >&2
echo "Use 'pytest --cov' from the virtualenv instead." >&2
exit 1
