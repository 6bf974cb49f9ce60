# metrics.gp: ptbm's metrics over a pgbench run (called by prometheus/sample.sh)
#   gnuplot -e "datafile='...'; outfile='...'; nseries=N; plottitle='...'; before=S; secs=S; after=S" prometheus/metrics.gp
# datafile: nseries blocks, one per pgbench backend (first line its name;
# columns: seconds, page_table_bytes, shared_buffers_mapped_bytes,
# segment_page_table_bytes), then one block of the cluster's sums (first
# line "cluster"; columns: seconds, page_table_bytes,
# shared_buffers_mapped_bytes, processes).
set terminal pngcairo size 1500,560 font "DejaVu Sans,10"
set output outfile
set multiplot layout 1,3 title plottitle font ",12"
set grid
set xrange [0:before + secs + after]
set yrange [0:*]
set y2range [0:*]
set offsets 0, 0, graph 0.05, 0
set xlabel "seconds (pgbench runs in the shaded span)"
set key top left box opaque font ",8"
set object 1 rectangle from before, graph 0 to before + secs, graph 1 behind fillcolor rgb "#eeeeee" fillstyle solid noborder
kB = 1024.0
MB = 1048576.0

set title "page tables of each pgbench backend\nptbm\\_backend\\_page\\_table\\_bytes (VmPTE, solid); its shared-memory part,\nptbm\\_backend\\_segment\\_page\\_table\\_bytes (dashed)"
set ylabel "kB"
plot for [i=0:nseries-1] datafile index i using 1:($2/kB) with lines lw 2 lc i+1 title columnheader(1), \
     for [i=0:nseries-1] datafile index i using 1:($4/kB) with lines lw 1 dt 2 lc i+1 notitle

set title "shared\\_buffers present in each pgbench backend's page table\nptbm\\_backend\\_shared\\_buffers\\_mapped\\_bytes"
set ylabel "MB"
plot for [i=0:nseries-1] datafile index i using 1:($3/MB) with lines lw 2 lc i+1 title columnheader(1)

set title "sums over the cluster's processes\nptbm\\_cluster\\_page\\_table\\_bytes (red, left axis)\nptbm\\_cluster\\_shared\\_buffers\\_mapped\\_bytes (blue, right axis)"
set key bottom center
set ylabel "page tables (kB)"
set y2label "shared\\_buffers mapped, summed (MB)"
set y2tics
set ytics nomirror
plot datafile index nseries using 1:($2/kB) with lines lw 2 lc rgb "#d62728" title "page tables, all processes", \
     ''       index nseries using 1:($3/MB) axes x1y2 with lines lw 2 lc rgb "#1f77b4" title "shared\\_buffers mapped, all processes"
unset multiplot
