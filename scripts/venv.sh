# shellcheck shell=bash
# make_venv DIR [PYTHON]: create a virtualenv at DIR unless one is there, and print its absolute path.
# A Debian/Ubuntu Python ships venv's ensurepip separately: python3.X-venv is installed with apt-get
# when it is missing (as root; otherwise it says what to install). Sourced by scripts/test and scripts/run.
make_venv() {
  local dir=$1 python=${2:-python3} pyver
  if [ ! -x "$dir/bin/python" ]; then
    if ! "$python" -m venv "$dir" >/dev/null 2>&1; then
      rm -rf "$dir"
      pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing python${pyver}-venv with apt-get" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${pyver}-venv" >/dev/null \
          || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      elif command -v apt-get >/dev/null 2>&1; then
        echo "please install Python's venv module first: sudo apt-get install python${pyver}-venv" >&2
        return 1
      fi
      "$python" -m venv "$dir" || return 1
    fi
  fi
  (cd "$dir" && pwd)
}
