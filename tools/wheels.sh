# Sourced by tools/gpu_book.sh and tools/host_checks.sh: `install_wheels DIR` installs the wheels in DIR whose
# distribution this python lacks (papermill, jupytext, pytest, ... made elsewhere with `pip download`) into /tmp/site,
# puts /tmp/site on PYTHONPATH and PATH, and registers the kernel papermill asks for; torch, numpy and the other
# packages already there stay as they are (an offline GPU machine keeps its own torch).
install_wheels() {
  local have need=() w name
  have=$(python3 -m pip list --format=freeze 2>/dev/null | cut -d= -f1 | tr 'A-Z_.' 'a-z--')
  for w in "$1"/*.whl; do
    name=$(basename "$w" | cut -d- -f1 | tr 'A-Z_.' 'a-z--')
    grep -qx "$name" <<<"$have" || need+=("$w")
  done
  echo "installing ${#need[@]} wheels into /tmp/site"
  if ((${#need[@]})); then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "${need[@]}" || return
  fi
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/site/bin:$PATH
  python3 -m ipykernel install --user --name python3 >/dev/null 2>&1  # the kernel papermill asks for, on this python
}
