#!/usr/bin/env bash
# Whole-process benchmark (issue 13: validation time of a 1,000-task flow): `kestrel validate`
# of a generated flow of N tasks, every one templated (Log and Return alternating, filters,
# `??`, outputs of the task before), so that the check compiles N templates besides reading
# the model. hyperfine with warm-up, median reported. Never run in CI.
# Usage: bench/validate.sh [PATH/TO/kestrel] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin=${1:-target/release/kestrel}
n=${2:-1000}
bench_setup "$bin"

python3 - "$n" >"$work/flow.yml" <<'PY'
import sys
n = int(sys.argv[1])
print("id: big\nnamespace: bench\ninputs:\n  - id: who\n    type: STRING\n    defaults: world\ntasks:")
for i in range(n):
    if i % 2 == 0:
        print(f"  - id: t{i}\n    type: io.kestra.plugin.core.log.Log")
        print(f"    message: \"task {i} says {{{{ inputs.who | upper }}}} at {{{{ taskrun.startDate }}}}\"")
    else:
        print(f"  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return")
        print(f"    format: \"{{{{ outputs.t{i - 1} ?? 'none' }}}} {i}\"")
PY

"$bin" validate "$work/flow.yml" >/dev/null
echo "kestrel validate, $n templated tasks:"
bench_median 20 "$bin validate $work/flow.yml"
