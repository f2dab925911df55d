#!/bin/bash
# Keeps the include graph of user/ as ARCHITECTURE.md draws it (ctest: layers.include_graph,
# label unit). Layers, lowest first:
#   common < discover < drain < attach < output < config < agent < top < main.cpp
# A file includes only its own layer or lower ones, and no chain of includes leads back to
# where it started. A component is a header and its source (x.h + x.cpp): config.cpp
# including top_model.h, which includes engine.h, which includes config.h, is a cycle.
# Includes that are not files under user/ (bpf/ contract headers, generated skeletons,
# system headers) are not part of the graph.
# Usage: scripts/check-layers.sh [ROOT]   (default: the checkout holding this script)
# Prints every upward include and every cycle found; exits 1 if there is any.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

order=(common discover drain attach output config agent top main)
declare -A rank
for i in "${!order[@]}"; do rank[${order[$i]}]=$i; done
# user/<layer>/...: that layer; user/main.cpp: main.
layer_of() {
  local f=${1#user/}
  if [[ $f == */* ]]; then echo "${f%%/*}"; else echo main; fi
}

bad=0
edges=$(mktemp)
loops=$(mktemp)
trap 'rm -f "$edges" "$loops"' EXIT
while IFS= read -r f; do
  from=$(layer_of "$f")
  if [[ -z ${rank[$from]:-} ]]; then
    echo "no layer: $f is in user/$from/, which is not in the order (add it here and to ARCHITECTURE.md)"
    bad=1
    continue
  fi
  node=${f%.*}
  echo "$node $node" >>"$edges"  # a node, also when it includes nothing
  while IFS= read -r inc; do
    if [[ -f user/$inc ]]; then
      to=user/$inc
    elif [[ -f $(dirname "$f")/$inc ]]; then
      to=$(dirname "$f")/$inc
    else
      continue
    fi
    to_layer=$(layer_of "$to")
    if ((${rank[$to_layer]:-99} > ${rank[$from]})); then
      echo "upward include: $f includes $inc ($from is below $to_layer)"
      bad=1
    fi
    [[ ${to%.*} == "$node" ]] || echo "$node ${to%.*}" >>"$edges"
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done < <(find user -type f \( -name '*.h' -o -name '*.cpp' \) | sort)

# tsort orders the graph, or names the files of a loop in it.
if ! tsort "$edges" >/dev/null 2>"$loops"; then
  echo "include cycle:"
  sed -n 's/^tsort: \(user\/.*\)$/  \1/p' "$loops"
  bad=1
fi

components=$(awk '{print $1}' "$edges" | sort -u | wc -l)
uses=$(awk '$1 != $2' "$edges" | sort -u | wc -l)
if ((bad)); then
  echo "layer check failed ($components components, $uses uses between them)"
else
  echo "layers ok: $components components, $uses uses between them, none upward, no cycle"
fi
exit $bad
