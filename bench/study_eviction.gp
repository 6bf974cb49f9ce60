# bench/study.sh: time per eviction batch against other busy backends
# data: pg method batch busy_others ms_per_batch evictions_per_s
# (datadir, outprefix and batches, the 4 kB batch sizes run, given with -e)
set terminal pngcairo size 800,500 font ",10" noenhanced
set output outprefix.'-eviction.png'
set title 'Eviction: time per batch (4 kB pages) against other busy backends'
set xlabel 'other busy backends (mappers running on a CPU)'
set ylabel 'ms per batch'
set key top left
set grid
set xtics 1
if (!exists('batches')) batches = '1 8 64 256'
f = datadir.'/study-eviction.dat'
plot for [b in batches] f using ((strcol(1) eq '4k' && strcol(2) eq 'remove' && $3 == b+0) ? $4 : 1/0):5 \
        with linespoints lw 2 title 'remove, batch '.b, \
     for [b in batches] f using ((strcol(1) eq '4k' && strcol(2) eq 'cooperative' && $3 == b+0) ? $4 : 1/0):5 \
        with linespoints lw 2 dt 2 title 'cooperative, batch '.b
