# bash completion for bsattn. Options are read from the command's own --help at completion time, so
# they always match the binary being completed; pattern names come from `gen-mask --list-patterns`.
# Installed by `cmake --install` as share/bash-completion/completions/bsattn; or: source this file.

_bsattn_options() {  # the long and short options a (sub)command's --help lists
  "$@" --help 2>/dev/null | grep -oE -- '(^|[ ,])--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' ,' | sort -u
}

_bsattn() {
  local cur prev bin sub kind i w
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  bin="${COMP_WORDS[0]}"
  sub="" kind=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    if [ -z "$sub" ]; then
      case "$w" in gen-mask|visualize|analyze|run|bench) sub="$w" ;; esac
    elif [ "$sub" = visualize ] && [ -z "$kind" ]; then
      case "$w" in mask|attention|curve|frontier|bench) kind="$w" ;; esac
    fi
  done
  if [ -z "$sub" ]; then
    COMPREPLY=($(compgen -W "gen-mask visualize analyze run bench --help --version" -- "$cur"))
    return
  fi
  if [ "$sub" = visualize ] && [ -z "$kind" ]; then
    COMPREPLY=($(compgen -W "mask attention curve frontier bench --help" -- "$cur"))
    return
  fi
  case "$prev" in
    -p|--pattern|--patterns)
      local names
      names=$("$bin" gen-mask --list-patterns 2>/dev/null | grep -oE '^  [a-z][a-z0-9-]*' | tr -d ' ')
      COMPREPLY=($(compgen -W "$names" -- "$cur"))
      return ;;
    --backend) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return ;;
    --layout) COMPREPLY=($(compgen -W "bshd bhsd" -- "$cur")); return ;;
    --dtype) COMPREPLY=($(compgen -W "auto f32 f16 bf16" -- "$cur")); return ;;
    --synthetic) COMPREPLY=($(compgen -W "decay sinks clustered spatial random" -- "$cur")); return ;;
    --order) COMPREPLY=($(compgen -W "raster snake morton hilbert gilbert tiles residue" -- "$cur")); return ;;
    --ring-layout) COMPREPLY=($(compgen -W "contiguous zigzag" -- "$cur")); return ;;
    --transport) COMPREPLY=($(compgen -W "loopback nccl" -- "$cur")); return ;;
    --scaling) COMPREPLY=($(compgen -W "strong weak both" -- "$cur")); return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_bsattn_options "$bin" $sub $kind)" -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _bsattn bsattn
