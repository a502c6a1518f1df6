#!/usr/bin/env bash
# Set up the project's virtual environment (.venv) on a fresh Debian machine, or bring an
# existing one up to date. Safe to run again: work already done is skipped.
#
#   scripts/setup.sh          the app alone (what scripts/serve.sh needs)
#   scripts/setup.sh --dev    plus the test, lint and export tools, Chromium for the browser
#                             tests, and the open_clip_torch wheel the tests read CLIP's BPE
#                             vocabulary from
#
# PYTHON names the interpreter to build .venv from (default: python3; 3.11 or newer).
set -euo pipefail

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }

dev=0
for arg in "$@"; do
    case $arg in
        --dev) dev=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${PYTHON:-python3}
venv=.venv

# Root installs directly; anyone else goes through sudo where there is one.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "setup.sh: '$*' needs root, and sudo is not installed" >&2
        return 1
    fi
}

apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- interpreter and virtual environment --------------------------------------------------
if ! command -v "$python" >/dev/null; then
    echo "setup.sh: $python not found; install Python 3.11 or newer (or set PYTHON)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup.sh: imagefind needs Python >= 3.11, but $python is $("$python" --version 2>&1)" >&2
    exit 1
fi

# A venv whose interpreter is gone (Python upgraded or removed under it) is rebuilt.
if [[ -d $venv ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
    echo "setup.sh: $venv is broken; recreating it" >&2
    rm -rf "$venv"
fi
if [[ ! -d $venv ]]; then
    # Debian's own python3 ships venv's ensurepip in a separate package.
    if ! "$python" -c 'import ensurepip' 2>/dev/null; then
        if [[ $("$python" -c 'import sys; print(sys.executable)') == /usr/bin/* ]]; then
            ver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            apt_install "python$ver-venv"
        else
            echo "setup.sh: $python has no venv support (ensurepip is missing)" >&2
            exit 1
        fi
    fi
    echo "setup.sh: creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
fi
# -qq: errors only; pip's warnings would bury them in CI logs.
pip=("$venv/bin/python" -m pip -qq --disable-pip-version-check)

# --- the project and its dependencies ------------------------------------------------------
# A stamp in the venv records what was installed and from which pyproject.toml, so that a
# second run costs nothing. A dev install also covers the plain one.
stamp=$venv/.imagefind-setup
want="$([[ $dev -eq 1 ]] && echo dev || echo app) $(sha256sum pyproject.toml | cut -d' ' -f1)"
have=$(cat "$stamp" 2>/dev/null || true)
if [[ $have != "$want" && $have != "dev ${want#* }" ]]; then
    echo "setup.sh: installing imagefind$([[ $dev -eq 1 ]] && echo ' with dev tools') into $venv"
    "${pip[@]}" install --upgrade pip
    if [[ $dev -eq 1 ]]; then
        # torch is pinned on this same command line: the CPU build of exactly this version lies
        # in the machine's local wheel directory, and any other spec pulls a multi-GB CUDA build.
        "${pip[@]}" install -e '.[dev]' 'torch==2.13.0'
    else
        "${pip[@]}" install -e .
    fi
    echo "$want" >"$stamp"
fi

if [[ $dev -eq 1 ]]; then
    # The tests read CLIP's BPE vocabulary out of this wheel; open_clip itself is never
    # installed (its dependencies include torchvision).
    wheels=.cache/wheels
    if ! compgen -G "$wheels/open_clip_torch-*.whl" >/dev/null; then
        echo "setup.sh: downloading the open_clip_torch wheel into $wheels"
        mkdir -p "$wheels"
        "${pip[@]}" download --no-deps --only-binary=:all: -d "$wheels" open_clip_torch
    fi

    # Playwright drives Debian's Chromium: its own browser downloads are not reachable here.
    if [[ ! -x /usr/bin/chromium ]]; then
        echo "setup.sh: installing Debian's chromium and chromium-driver"
        apt_install chromium chromium-driver
    fi

    # Text in images: the tests compare Tesseract with PP-OCRv4 (the default engine, whose
    # models come in the rapidocr-onnxruntime wheel) and render Chinese with a CJK font.
    if [[ ! -x /usr/bin/tesseract ]] || ! fc-list :lang=zh | grep -q .; then
        echo "setup.sh: installing Debian's tesseract-ocr, tesseract-ocr-eng and a CJK font"
        apt_install tesseract-ocr tesseract-ocr-eng fonts-wqy-microhei fontconfig
    fi
fi
