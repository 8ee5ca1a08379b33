#!/bin/sh
# cfgflags.sh CFG: turns a configuration name such as lr1e-3_reg1e-4_a1_g1e-3 into
# til-train flags (--lr 1e-3 --reg 1e-4 --alpha 1 --gamma 1e-3).
set -eu
cfg=$1
out=""
old_ifs=$IFS
IFS=_
for part in $cfg; do
    case "$part" in
        lr*) out="$out --lr ${part#lr}" ;;
        reg*) out="$out --reg ${part#reg}" ;;
        a*) out="$out --alpha ${part#a}" ;;
        g*) out="$out --gamma ${part#g}" ;;
        k*) out="$out --clusters ${part#k}" ;;
        *) echo "cfgflags.sh: unknown part '$part' in '$cfg'" >&2; exit 2 ;;
    esac
done
IFS=$old_ifs
echo "$out"
