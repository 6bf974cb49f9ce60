# scaling.gp: figure 5 of the ptbm benchmark (called by bench/run.sh)
#   gnuplot -e "datafile='...'; outfile='...'" bench/scaling.gp
# datafile: blocks (index 0: backends series, 1: region-size series, 2: figure 1),
# columns: series present_pages pte_tables ptbm_ms kscan_scan_ms kscan_smaps_ms label ptbm_cpu_ms
set terminal pngcairo size 1400,620 font "DejaVu Sans,10"
set output outfile
set multiplot layout 1,2 title "ptbm\\_backends(): one call's time grows with what the page tables hold, not with the region's size" font ",12"
set logscale xy
set grid
set key top left box opaque font ",9"
set format x "%.0s%c"
set ylabel "time of one call (ms): elapsed (filled), CPU (x)"
set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.05

set title "against pages present (summed over processes)"
set xlabel "pages present in the region"
plot datafile index 0 using 2:4 with linespoints lw 2 pt 7 ps 1.3 lc rgb "#1f77b4" title "more backends (1 to 100), same region, same pages each", \
     ''       index 0 using 2:4:(stringcolumn(7)." bk") with labels offset 0,1.1 font ",8" notitle, \
     ''       index 1 using 2:4 with points pt 5 ps 1.5 lc rgb "#d62728" title "10 backends, regions of 1 GB / 64 GB / 1 TB", \
     ''       index 1 using 2:4:7 with labels offset 3,0 font ",8" tc rgb "#d62728" notitle, \
     ''       index 2 using 2:4 with points pt 9 ps 1.8 lc rgb "#2ca02c" title "figure 1: 20 backends x 1%", \
     ''       index 0 using 2:6 with linespoints dt 2 pt 6 lc rgb "#7f7f7f" title "kernel floor (smaps + status) for the same points", \
     ''       index 1 using 2:6 with points pt 4 lc rgb "#7f7f7f" notitle, \
     ''       index 2 using 2:6 with points pt 8 lc rgb "#7f7f7f" notitle, \
     ''       index 0:2 using 2:8 with points pt 2 ps 1.2 lc rgb "#000000" title "ptbm's CPU time, same points (x)"

set title "against page-table pages holding them (512 entries each, read whole by every walk)"
set xlabel "PTE tables (2 MB slices with a present page), summed over processes"
plot datafile index 0 using 3:4 with linespoints lw 2 pt 7 ps 1.3 lc rgb "#1f77b4" title "more backends (1 to 100)", \
     ''       index 0 using 3:4:(stringcolumn(7)." bk") with labels offset 0,1.1 font ",8" notitle, \
     ''       index 1 using 3:4 with points pt 5 ps 1.5 lc rgb "#d62728" title "regions of 1 GB / 64 GB / 1 TB", \
     ''       index 1 using 3:4:7 with labels offset 3,0 font ",8" tc rgb "#d62728" notitle, \
     ''       index 2 using 3:4 with points pt 9 ps 1.8 lc rgb "#2ca02c" title "figure 1", \
     ''       index 0 using 3:6 with linespoints dt 2 pt 6 lc rgb "#7f7f7f" title "kernel floor (smaps + status)", \
     ''       index 1 using 3:6 with points pt 4 lc rgb "#7f7f7f" notitle, \
     ''       index 2 using 3:6 with points pt 8 lc rgb "#7f7f7f" notitle, \
     ''       index 0:2 using 3:8 with points pt 2 ps 1.2 lc rgb "#000000" title "ptbm's CPU time (x)"
unset multiplot
