#!/bin/sh
# Installs the given Debian packages that are not installed yet.  Quiet and
# quick when everything is there; runs apt-get (with sudo when not root)
# only for what is missing.
set -eu
missing=
for p in "$@"; do
	case $p in
	nodejs)
		# Any node >= 18 will do, Debian's or another.
		command -v node >/dev/null 2>&1 && continue ;;
	npm)
		# Debian's nodejs comes without npm; other builds bring it.
		command -v npm >/dev/null 2>&1 && continue ;;
	esac
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $s in
	*"ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
