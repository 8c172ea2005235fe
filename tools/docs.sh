#!/bin/sh
# Rewrites what is generated in the documentation from the built binary:
# the configuration keys between the "BEGIN generated: nodee help config"
# and "END generated: nodee help config" markers of doc/nodee.8, README.md
# and conf/nodee.conf (from `nodee help config --format ...`), and the
# version in the man page's .TH line.  Everything outside the markers is
# left as it is, and a file whose text does not change is not written.
# usage: tools/docs.sh [NODEE_BINARY]
set -eu
bin=${1:-./nodee}
version=$("$bin" --version | sed 's/^nodee //')

# regen FILE FORMAT: replaces the block of FILE with the output of FORMAT.
regen() {
	file=$1
	tmp=$file.docs.$$
	"$bin" help config --format "$2" >"$tmp.block"
	awk -v block="$tmp.block" -v file="$file" -v version="$version" '
		/BEGIN generated: nodee help config/ {
			print
			while ((getline line < block) > 0)
				print line
			skip = 1
			begins++
			next
		}
		/END generated: nodee help config/ { skip = 0; ends++ }
		/^\.TH NODEE 8 / {
			sub(/"nodee [^"]*"/, "\"nodee " version "\"")
		}
		!skip { print }
		END {
			if (begins != 1 || ends != 1 || skip) {
				printf "%s: want one BEGIN and one END marker\n",
				    file > "/dev/stderr"
				exit 1
			}
		}' "$file" >"$tmp" || { rm -f "$tmp" "$tmp.block"; exit 1; }
	if cmp -s "$tmp" "$file"; then
		rm -f "$tmp"
	else
		# cat, not mv: the file keeps its mode and owner.
		cat "$tmp" >"$file"
		rm -f "$tmp"
		echo "docs: $file"
	fi
	rm -f "$tmp.block"
}

regen doc/nodee.8 man
regen README.md markdown
regen conf/nodee.conf conf
