#!/bin/sh
# update-golden.sh - regenerate tests/golden/*.flows.csv from the current build.
#
#   scripts/update-golden.sh              (from anywhere; works in the repository root)
#   TESTBIN=... SVCSENSOR_BIN=... scripts/update-golden.sh
#
# The golden tests of the e2e suite write their normalised flow export (id column dropped, rows
# sorted) instead of comparing when SVCSENSOR_UPDATE_GOLDEN=1, so the files are made by exactly
# the code that later reads them. Then tests/golden/verify.py checks every column again without
# svcsensor's code (own pcap parser, ndpiReader, the generator's flow list). A golden file is
# svcsensor's own output: a change is only right once it is explained.
set -eu

cd "$(dirname "$0")/.."
TESTBIN=${TESTBIN:-build/svcsensor-tests}
SVCSENSOR_BIN=${SVCSENSOR_BIN:-$PWD/build/svcsensor}
export SVCSENSOR_BIN

if [ ! -x "$TESTBIN" ] || [ ! -x "$SVCSENSOR_BIN" ]; then
	make "$TESTBIN" build/svcsensor
fi
mkdir -p tests/golden

echo "update-golden: writing tests/golden/*.flows.csv with $SVCSENSOR_BIN"
SVCSENSOR_UPDATE_GOLDEN=1 "$TESTBIN" --filter 'e2e/golden_*' --jobs 2

status=0
if [ -x /usr/bin/python3 ] && command -v ndpiReader >/dev/null 2>&1; then
	echo "update-golden: independent check (tests/golden/verify.py) ..."
	/usr/bin/python3 tests/golden/verify.py tests/golden || status=$?
else
	echo "update-golden: /usr/bin/python3 or ndpiReader missing: tests/golden/verify.py NOT run" >&2
	status=1
fi

git --no-pager diff --stat -- tests/golden 2>/dev/null || true
cat <<'EOF'

REMINDER: a changed golden file is the product's own output, not a truth. Before committing it,
review the diff (git diff tests/golden) against what the generator planted and what nDPI says:
  /usr/bin/python3 pcaps/check.py pcaps          (the captures vs ndpiReader + the manifest)
  /usr/bin/python3 tests/golden/verify.py        (every golden column vs an independent parser
                                                  and ndpiReader)
and explain every changed line in the commit message.
EOF
exit "$status"
