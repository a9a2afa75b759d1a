#!/usr/bin/env bash
# Whole-process benchmark (issue 12: a 100-task flow mixing Switch, Subflow and ForEach end to
# end): `kestrel run` of a generated flow of N top-level tasks cycling through a Switch (one
# Return chosen by an input), a Subflow (a 2-task child flow found in the same folder, waited
# for, its output read back) and a ForEach over three values (a Return each), with a Log
# between them. hyperfine with warm-up, median reported. Never run in CI.
# Usage: bench/mixed.sh [PATH/TO/kestrel] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bin=${1:-target/release/kestrel}
n=${2:-100}
bench_setup "$bin"

cat >"$work/child.yml" <<'YAML'
id: child
namespace: bench
inputs:
  - id: n
    type: INT
tasks:
  - id: double
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.n * 2 }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "child {{ outputs.double.value }}"
outputs:
  - id: doubled
    type: STRING
    value: "{{ outputs.double.value }}"
YAML

python3 - "$n" >"$work/mixed.yml" <<'PY'
import sys
n = int(sys.argv[1])
print("id: mixed\nnamespace: bench\ninputs:\n  - id: pick\n    type: STRING\n    defaults: b\ntasks:")
for i in range(n):
    kind = i % 4
    if kind == 0:
        print(f"""  - id: switch{i}
    type: io.kestra.plugin.core.flow.Switch
    value: "{{{{ inputs.pick }}}}"
    cases:
      a:
        - id: a{i}
          type: io.kestra.plugin.core.debug.Return
          format: a
      b:
        - id: b{i}
          type: io.kestra.plugin.core.debug.Return
          format: b""")
    elif kind == 1:
        print(f"""  - id: sub{i}
    type: io.kestra.plugin.core.flow.Subflow
    namespace: bench
    flowId: child
    inputs:
      n: {i}""")
    elif kind == 2:
        print(f"""  - id: each{i}
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2, 3]
    tasks:
      - id: item{i}
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}\"""")
    else:
        print(f"""  - id: log{i}
    type: io.kestra.plugin.core.log.Log
    message: "after {{{{ outputs.sub{i - 2}.outputs.doubled }}}}\"""")
PY

"$bin" run "$work/mixed.yml" >/dev/null
echo "kestrel run, $n tasks mixing Switch, Subflow and ForEach:"
bench_median 10 "$bin run $work/mixed.yml"
