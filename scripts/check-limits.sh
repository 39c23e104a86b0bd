#!/usr/bin/env bash
# The limits of docs/ARCHITECTURE.md (Conventions): no function in src/ over 100 lines, no .c
# file in src/ over 900 lines (function extents from Universal Ctags, --fields=+ne), and the
# seams kept: the detector includes no sink's header, sinks and their headers do not include
# the detector's; comments cite only files of the repository.
# Prints each offender on one line and exits 1 if there is any; prints a summary line otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
max_fn=${MAX_FUNCTION_LINES:-100}
max_file=${MAX_FILE_LINES:-900}
command -v ctags >/dev/null || { echo "check-limits: ctags (universal-ctags) is not installed" >&2; exit 2; }
bad=0
while IFS= read -r f; do
	n=$(wc -l <"$f")
	if [ "$n" -gt "$max_file" ]; then
		echo "check-limits: $f: $n lines (at most $max_file)"
		bad=1
	fi
done < <(find src -name '*.c' | sort)
while IFS=$'\t' read -r name file line end; do
	len=$((end - line + 1))
	if [ "$len" -gt "$max_fn" ]; then
		echo "check-limits: $file:$line: $name is $len lines (at most $max_fn)"
		bad=1
	fi
done < <(find src -name '*.c' | sort | xargs ctags -x --_xformat='%N	%F	%n	%e' --kinds-C=f --fields=+ne -o - 2>/dev/null)
sink_headers='svcsensor/(console|report|anomaly_log|flow_csv|sink_[a-z_]+)\.h'
if grep -EHn "#include \"$sink_headers\"" src/detect/*.c include/svcsensor/detector.h; then
	echo "check-limits: the detector must reach outputs through the sink list (sink.h) only"
	bad=1
fi
if grep -EHn '#include "svcsensor/detector\.h"' src/sink/*.c include/svcsensor/{console,report,anomaly_log,flow_csv,sink}.h; then
	echo "check-limits: a sink must not include the detector's header"
	bad=1
fi
# Comments cite files of this repository only (README.md, docs/, other sources).
if grep -rEn '\bSPEC\.md\b|\.\./shared/' src include tests bench scripts --include='*.[ch]' --include='*.py' --include='*.sh' | grep -v '^scripts/check-limits.sh'; then
	echo "check-limits: cite files of the repository (README.md, docs/...), not SPEC.md or ../shared"
	bad=1
fi
[ "$bad" = 0 ] && echo "check-limits: every function in src/ is at most $max_fn lines, every file at most $max_file"
exit $bad
