#!/usr/bin/env bash
# Writes queries/helix/highlights.scm: queries/highlights.scm with the
# capture names Helix's themes use where they differ from nvim-treesitter's.
# tests/tree_sitter.rs checks that the file is what this script writes.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p queries/helix
# A name is renamed only whole: `@number` but not `@number_x` or `@numbers`.
end='([^A-Za-z0-9_.-]|$)'
{
  echo "; Highlighting of svc programs, with the capture names of Helix's themes."
  echo ";"
  echo "; Written by helix-queries.sh from queries/highlights.scm: edit that file and"
  echo "; run the script. No node is captured by two patterns."
  echo
  # Without the header of queries/highlights.scm (up to its first blank line).
  sed -E \
    -e '1,/^$/d' \
    -e "s/@keyword\.conditional$end/@keyword.control.conditional\1/g" \
    -e "s/@keyword\.repeat$end/@keyword.control.repeat\1/g" \
    -e "s/@keyword\.exception$end/@keyword.control.exception\1/g" \
    -e "s/@number$end/@constant.numeric\1/g" \
    -e "s/@boolean$end/@constant.builtin.boolean\1/g" \
    -e "s/@string\.escape$end/@constant.character.escape\1/g" \
    -e "s/@module$end/@namespace\1/g" \
    -e "s/@variable\.member$end/@variable.other.member\1/g" \
    -e "s/@property$end/@variable.other.member\1/g" \
    -e "s/@function\.call$end/@function\1/g" \
    queries/highlights.scm
} > queries/helix/highlights.scm
