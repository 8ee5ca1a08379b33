# gnuplot.sh: sourced by the plot_*.sh scripts.
# plot_png OUT TITLE: runs the gnuplot commands read from stdin after the common
# preamble (900x540 PNG, tab-separated data, the title), writing OUT atomically
# (a temporary beside it, renamed when gnuplot succeeds).
plot_png() {
    local out=$1 title=$2 tmp
    command -v gnuplot >/dev/null || { echo "$(basename "$0"): gnuplot not installed (apt-get install gnuplot-nox)" >&2; return 1; }
    tmp=$(mktemp "$out.tmp.XXXXXX")
    if { printf "set terminal pngcairo size 900,540 noenhanced\nset output '%s'\nset datafile separator '\\\\t'\nset title '%s'\n" "$tmp" "$title"; cat; } | gnuplot; then
        mv "$tmp" "$out"
    else
        rm -f "$tmp"
        return 1
    fi
}
